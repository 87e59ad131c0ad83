"""The page's files and the drawn genealogy, through HTTP.

The page, its script, its stylesheet and the charting library are public files served
by the gateway itself; the genealogy drawing is data, drawn from the caller's own
traces, so it hides what they hide. (The page in a browser: tests/system/test_page.py.)"""

from __future__ import annotations

import html
import re
from importlib import metadata
from pathlib import Path

import pytest

from tests.api.conftest import PROBLEM, World, sale

#: After MINECO sells ORE-1 to MAGCO (Ningbo Magnets): who may see the buyer.
SALE_VIEWERS = [
    ("admin", True),
    ("mine", True),
    ("magnets", True),
    ("auditor", True),
    ("regulator", True),
    ("other", False),
    ("auto", False),
    ("analyst", False),
]
REFERENCED = re.compile(r'(?:src|href)="([^"]+)"')


def _sold(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))


def _drawing(world: World, who: str) -> str:
    response = world.get("/v1/batches/MINECO/ORE-1/graph.svg", who)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return html.unescape(response.text)


# --- the page's files ---------------------------------------------------------------------


def test_the_root_sends_a_browser_to_the_page(world: World) -> None:
    response = world.client.get("/", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (307, "/page")


def test_the_page_is_served_without_a_key_under_a_same_origin_content_policy(
    world: World,
) -> None:
    response = world.client.get("/page")

    policy = response.headers["content-security-policy"]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy


def test_every_script_and_style_the_page_names_is_served_by_the_gateway(world: World) -> None:
    page = world.client.get("/page").text
    referenced = [r for r in REFERENCED.findall(page) if not r.startswith(("#", "data:"))]

    answers = {path: world.client.get(path) for path in referenced}

    assert sorted(referenced) == [
        "/page/assets/page.css",
        "/page/assets/page.js",
        "/page/vendor/plotly.min.js",
    ]
    assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(referenced, 200)


def test_the_charting_library_is_the_file_the_installed_plotly_package_ships(
    world: World,
) -> None:
    shipped = Path(
        str(metadata.distribution("plotly").locate_file("plotly/package_data/plotly.min.js"))
    )

    response = world.client.get("/page/vendor/plotly.min.js")

    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == shipped.read_bytes()


def test_an_unknown_page_asset_is_not_found(world: World) -> None:
    response = world.client.get("/page/assets/..%2Fapp.py")

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


# --- the drawn genealogy ------------------------------------------------------------------


def test_the_genealogy_is_drawn_from_the_mine_to_the_client(world: World) -> None:
    _sold(world)

    drawing = _drawing(world, "regulator")

    assert drawing.lstrip().startswith("<svg")
    assert "MINECO/ORE-1" in drawing and "mined at MINE-1, CN" in drawing
    assert "Ningbo Magnets" in drawing and "10,000 kg" in drawing


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_the_drawn_genealogy_names_the_client_to_the_sales_parties_and_overseers_only(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)

    drawing = _drawing(world, who)

    assert ("MAGCO" in drawing) is sees
    assert ("Ningbo Magnets" in drawing) is sees
    assert ("clients not shown" in drawing) is not sees


def test_the_drawing_of_an_unknown_batch_is_not_found(world: World) -> None:
    response = world.get("/v1/batches/MINECO/NO-SUCH-LOT/graph.svg", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


def test_without_graphviz_the_drawing_is_a_503_problem(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    world.extract("ORE-1", "10000")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found

    response = world.get("/v1/batches/MINECO/ORE-1/graph.svg", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (503, PROBLEM)
    assert response.json()["rule"] == "renderer"
