"""``GET /v1/inventory`` per role: regulators, auditors and admins see every holder's
stock by facility, material and element; operators their own only; analysts stock by
country and material, with no company named and no filter that names one; stock at a
past moment by event time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import PROBLEM, World, ore, sale

MARCH, APRIL, MAY = "2026-03-02T08:00:00Z", "2026-04-02T08:00:00Z", "2026-05-02T08:00:00Z"
NAMES = ("MINECO", "Bayan Mining Co", "MAGCO", "Ningbo Magnets", "MINE-1", "MAG-1")


@pytest.fixture
def world(fresh_world: World) -> World:
    """MINECO mines ORE-1 (10,000 kg) in March and ORE-2 (2,000 kg) in April, and sells
    ORE-2 to MAGCO, delivered to MAG-1, in May."""
    fresh_world.report("ore-extracted", ore("ORE-1", "10000", occurred_at=MARCH))
    fresh_world.report("ore-extracted", ore("ORE-2", "2000", occurred_at=APRIL))
    fresh_world.report(
        "custody-transferred", sale("ORE-2", "MAGCO", to_facility="MAG-1", occurred_at=MAY)
    )
    return fresh_world


def inventory(world: World, who: str, query: str = "") -> Any:
    response = world.get(f"/v1/inventory{query}", who)
    assert response.status_code == 200, response.text
    return response.json()


def where(answer: Any) -> list[tuple[str, str, str, str]]:
    return [
        (line["actor"]["code"], line["facility"]["code"], line["material"], line["kg"])
        for line in answer["lines"]
    ]


@pytest.mark.parametrize("who", ["regulator", "auditor", "admin"])
def test_overseers_see_every_holder_s_stock_by_facility(world: World, who: str) -> None:
    answer = inventory(world, who)

    assert (answer["grouping"], answer["at"], answer["clock"]) == ("holder", None, "occurred")
    assert where(answer) == [
        ("MAGCO", "MAG-1", "ore", "2000"),
        ("MINECO", "MINE-1", "ore", "10000"),
    ]
    assert answer["totals"]["by_material"] == {"ore": "12000"}


def test_each_line_carries_the_mass_of_each_element(world: World) -> None:
    [_, mine] = inventory(world, "regulator")["lines"]

    # 10,000 kg of 0.030 Nd, 0.010 Pr, 0.002 Dy, 0.0005 Tb, 0.20 Fe.
    assert mine["elements"] == {"Dy": "20", "Fe": "2000", "Nd": "300", "Pr": "100", "Tb": "5"}
    assert (mine["batches"], mine["country"], mine["in_transit"]) == (1, "CN", False)


def test_an_operator_sees_only_its_own_stock(world: World) -> None:
    assert where(inventory(world, "magnets")) == [("MAGCO", "MAG-1", "ore", "2000")]
    assert where(inventory(world, "mine")) == [("MINECO", "MINE-1", "ore", "10000")]
    assert inventory(world, "other")["lines"] == []


def test_an_operator_asking_for_another_actor_s_stock_is_refused(world: World) -> None:
    response = world.get("/v1/inventory?actor=MINECO", "magnets")

    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("actor", "ownership")


def test_an_operator_may_name_itself(world: World) -> None:
    assert where(inventory(world, "magnets", "?actor=MAGCO")) == [("MAGCO", "MAG-1", "ore", "2000")]


def test_an_analyst_sees_stock_by_country_and_material_without_names(world: World) -> None:
    response = world.get("/v1/inventory", "analyst")

    answer = response.json()
    assert answer["grouping"] == "country"
    assert [(x["country"], x["material"], x["kg"], x["batches"]) for x in answer["lines"]] == [
        ("CN", "ore", "12000", 2)
    ]
    assert "actor" not in answer["lines"][0] and "facility" not in answer["lines"][0]
    assert [name for name in NAMES if name in response.text] == []


@pytest.mark.parametrize(("field", "value"), [("actor", "MINECO"), ("facility", "MINE-1")])
def test_an_analyst_naming_an_actor_or_a_facility_is_refused(
    world: World, field: str, value: str
) -> None:
    response = world.get(f"/v1/inventory?{field}={value}", "analyst")

    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == (field, "aggregate-only")


def test_a_facility_filter_gives_the_stock_there(world: World) -> None:
    assert where(inventory(world, "regulator", "?facility=MAG-1")) == [
        ("MAGCO", "MAG-1", "ore", "2000")
    ]


def test_stock_at_a_past_moment_is_where_the_material_was_then(world: World) -> None:
    before_the_sale = inventory(world, "regulator", "?at=2026-04-30T00:00:00%2B08:00")
    before_ore_2 = inventory(world, "regulator", "?at=2026-04-02T07:59:59Z")

    assert where(before_the_sale) == [("MINECO", "MINE-1", "ore", "12000")]
    assert before_the_sale["lines"][0]["batches"] == 2
    assert where(before_ore_2) == [("MINECO", "MINE-1", "ore", "10000")]
    assert before_the_sale["at"] == "2026-04-30T00:00:00+08:00"


def test_an_operator_s_past_stock_is_its_own_too(world: World) -> None:
    assert inventory(world, "magnets", "?at=2026-04-30T00:00:00Z")["lines"] == []


def test_a_moment_without_a_time_zone_is_refused(world: World) -> None:
    response = world.get("/v1/inventory?at=2026-04-30T00:00:00", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("at", "timezone")


def test_an_unknown_actor_is_refused_naming_the_field(world: World) -> None:
    response = world.get("/v1/inventory?actor=NOBODY", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("actor", "exists")


def test_a_malformed_facility_code_is_refused_naming_the_field(world: World) -> None:
    response = world.get("/v1/inventory?facility=no%20such%20code", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("facility", "code")


def test_an_export_in_transit_is_its_exporter_s_at_no_facility(world: World) -> None:
    world.report(
        "shipment-exported",
        {
            "batch": "ORE-1",
            "licence": "EX-1",
            "shipment": "BL-2026-0001",
            "consignee": "AUTOCO",
            "destination_country": "DE",
            "end_user": "Auto Motors GmbH",
            "customs_code": "2530.90",
        },
    )

    lines = inventory(world, "regulator", "?actor=MINECO")["lines"]
    by_country = inventory(world, "analyst")["lines"]

    assert [(x["facility"], x["in_transit"], x["kg"]) for x in lines] == [(None, True, "10000")]
    assert [(x["country"], x["in_transit"], x["kg"]) for x in by_country] == [
        (None, True, "10000"),
        ("CN", False, "2000"),
    ]
