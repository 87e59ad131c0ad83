"""The drawn genealogy, through HTTP: data, drawn from the caller's own traces, so it
hides what they hide."""

from __future__ import annotations

import html
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


def _sold(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))


def _drawing(world: World, who: str) -> str:
    response = world.get("/v1/batches/MINECO/ORE-1/graph.svg", who)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return html.unescape(response.text)


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
