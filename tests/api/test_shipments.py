"""Exports are numbered shipments, and only controlled goods need a licence (issue 12).

MOFCOM's 2025 controls: the metals, alloys, oxides and compounds of Sm, Gd, Tb, Dy, Lu,
Sc and Y, SmCo magnets, and NdFeB magnets containing Tb or Dy. A batch carrying none of
them above the threshold ships without a licence and is recorded as uncontrolled."""

from __future__ import annotations

from tests.api.conftest import World, export, receipt

#: Rock ore with light rare earths only (La, Ce, Nd, Pr): nothing controlled.
LIGHT_ORE = {"La": "0.02", "Ce": "0.03", "Nd": "0.01", "Pr": "0.003", "Fe": "0.2"}


def _uncontrolled_export(world: World) -> dict:
    world.extract("ORE-L", "5000", composition=LIGHT_ORE)
    body = {k: v for k, v in export("ORE-L").items() if k != "licence"}
    return world.report("shipment-exported", body)


def test_uncontrolled_goods_ship_without_a_licence_and_are_recorded_as_uncontrolled(
    world: World,
) -> None:
    answer = _uncontrolled_export(world)

    state = world.get("/v1/batches/MINECO/ORE-L").json()
    assert (answer["controlled"], answer["licence"]) == ("false", None)
    assert (state["status"], state["export"]["licence"], state["export"]["controlled"]) == (
        "in_transit",
        None,
        False,
    )


def test_an_uncontrolled_export_draws_no_licence(world: World) -> None:
    before = world.get("/v1/licences/EX-1", "admin").json()["drawn_kg"]

    _uncontrolled_export(world)

    assert world.get("/v1/licences/EX-1", "admin").json()["drawn_kg"] == before


def test_controlled_goods_without_a_licence_are_refused_and_nothing_is_stored(
    world: World,
) -> None:
    world.extract("ORE-1", "10000")  # carries Dy and Tb
    body = {k: v for k, v in export("ORE-1").items() if k != "licence"}

    response = world.refused("/v1/events/shipment-exported", body)

    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("licence", "licence-required")
    assert "Dy, Tb" in problem["detail"]


def test_an_uncontrolled_batch_shipped_under_a_licence_is_still_checked_against_it(
    world: World,
) -> None:
    world.extract("ORE-L", "5000", composition=LIGHT_ORE)

    response = world.refused(
        "/v1/events/shipment-exported", export("ORE-L", destination_country="FR")
    )

    assert response.status_code == 422


def test_an_export_names_its_shipment(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report("shipment-exported", export("ORE-1", shipment="BL-77"))

    history = world.get("/v1/batches/MINECO/ORE-1/history", "auditor").json()["events"]
    assert answer["shipment"] == "BL-77"
    assert (history[-1]["facts"]["shipment"], history[-1]["facts"]["controlled"]) == (
        "BL-77",
        True,
    )


def test_an_export_without_a_shipment_number_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {k: v for k, v in export("ORE-1").items() if k != "shipment"}

    response = world.refused("/v1/events/shipment-exported", body)

    assert (response.json()["field"], response.json()["rule"]) == ("shipment", "missing")


def test_a_shipment_number_with_a_trailing_newline_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    response = world.refused("/v1/events/shipment-exported", export("ORE-1", shipment="BL-1\n"))

    assert (response.json()["field"], response.json()["rule"]) == ("shipment", "shipment")


def test_a_receipt_names_the_shipment_it_received(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1", shipment="BL-77"))

    answer = world.report("shipment-received", receipt(shipment="BL-77"), "auto")

    assert answer["shipment"] == "BL-77"


def test_a_receipt_that_names_no_shipment_is_recorded_with_the_batchs_shipment(
    world: World,
) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1", shipment="BL-77"))

    world.report("shipment-received", receipt(), "auto")

    history = world.get("/v1/batches/MINECO/ORE-1/history", "auditor").json()["events"]
    assert history[-1]["facts"]["shipment"] == "BL-77"


def test_a_receipt_of_another_shipment_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1", shipment="BL-77"))

    response = world.refused("/v1/events/shipment-received", receipt(shipment="BL-78"), "auto")

    assert (response.json()["field"], response.json()["rule"]) == ("shipment", "shipment-mismatch")


def test_the_trade_ledger_reports_controlled_and_uncontrolled_exports(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1", shipment="BL-77"))
    _uncontrolled_export(world)

    lines = world.get("/v1/trades?kind=export", "regulator").json()["lines"]

    assert sorted((line["shipment"], line["controlled"]) for line in lines) == [
        ("BL-2026-0001", False),
        ("BL-77", True),
    ]


def test_a_non_party_sees_no_shipment_number(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1", shipment="BL-77"))

    state = world.get("/v1/batches/MINECO/ORE-1", "analyst").json()

    assert (state["export"]["shipment"], state["export"]["controlled"]) == (
        {"redacted": True},
        True,
    )
