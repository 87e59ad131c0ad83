"""``GET /v1/licences`` and ``GET /v1/licences/{number}/draws`` per role, and refused
attempts: every refused write that named a licence or quota is counted per rule beside
the read models, while nothing of it reaches the ledger."""

from __future__ import annotations

from typing import Any

import pytest

from lodestone.domain import ids
from tests.api.conftest import PROBLEM, World, export, ore

MARCH, APRIL = "2026-03-02T08:00:00Z", "2026-04-02T08:00:00Z"
ORE_1_REO = "499.575"  # 10,000 kg x (0.030 Nd x 1.1664 + 0.010 Pr x 1.2082 + ...)
COMMERCIAL = ("holder", "consignee", "end_user", "end_use", "contract")
REDACTED = {"redacted": True}


@pytest.fixture
def world(fresh_world: World) -> World:
    """The registered world (MQ-1, SQ-1 and export licence EX-1, all MINECO's)."""
    return fresh_world


def everything(world: World, who: str = "regulator", query: str = "") -> list[Any]:
    response = world.get(f"/v1/licences{query}", who)
    assert response.status_code == 200, response.text
    licences: list[Any] = response.json()["licences"]
    return licences


def listed(world: World, who: str = "regulator", query: str = "") -> dict[str, Any]:
    """The licences listed with their numbers, by number."""
    return {
        licence["number"]: licence
        for licence in everything(world, who, query)
        if licence["number"] != REDACTED
    }


def unnamed(world: World, who: str, kind: str) -> Any:
    """The one licence of ``kind`` listed without its number."""
    [licence] = [x for x in everything(world, who) if x["number"] == REDACTED and x["kind"] == kind]
    return licence


def draws(world: World, number: str, who: str = "regulator") -> Any:
    response = world.get(f"/v1/licences/{number}/draws", who)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_list_shows_issued_drawn_remaining_and_expiry(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)

    quota = listed(world)["MQ-1"]

    assert (quota["kind"], quota["unit"], quota["holder"]) == ("mining_quota", "kg REO", "MINECO")
    assert (quota["max_kg"], quota["drawn_kg"], quota["draws"]) == ("100000", ORE_1_REO, 1)
    assert quota["remaining_kg"] == "99500.425"
    assert (quota["valid_until"], quota["expired"]) == ("2027-12-31T00:00:00+00:00", False)
    assert quota["refused_attempts"] == {}


@pytest.mark.parametrize("who", ["mine", "auto", "auditor", "regulator", "admin"])
def test_an_export_licence_s_terms_are_shown_to_its_parties_and_overseers(
    world: World, who: str
) -> None:
    licence = listed(world, who)["EX-1"]

    assert [licence[k] for k in COMMERCIAL] == [
        "MINECO",
        "AUTOCO",
        "Auto Motors GmbH",
        "EV traction motors",
        "C-2026-01",
    ]


@pytest.mark.parametrize("who", ["magnets", "other", "analyst"])
def test_an_export_licence_s_terms_are_hidden_from_everyone_else(world: World, who: str) -> None:
    licence = unnamed(world, who, "export_licence")

    assert [licence[k] for k in COMMERCIAL] == [REDACTED] * len(COMMERCIAL)
    assert (licence["destination_country"], licence["max_kg"]) == ("DE", "50000")


@pytest.mark.parametrize("who", ["magnets", "other", "analyst"])
def test_only_a_mining_quota_is_listed_by_number_to_everyone_else(world: World, who: str) -> None:
    response = world.get("/v1/licences", who)

    assert list(listed(world, who)) == ["MQ-1"]
    assert listed(world, who)["MQ-1"]["holder"] == "MINECO"  # a mine: provenance
    assert unnamed(world, who, "separation_quota")["id"] is None
    assert "EX-1" not in response.text and "SQ-1" not in response.text


@pytest.mark.parametrize("who", ["mine", "regulator"])
def test_every_licence_is_listed_by_number_to_its_parties_and_overseers(
    world: World, who: str
) -> None:
    assert list(listed(world, who)) == ["EX-1", "MQ-1", "SQ-1"]


def test_the_list_is_filtered_by_kind(world: World) -> None:
    assert list(listed(world, query="?kind=separation_quota")) == ["SQ-1"]


def test_an_unknown_kind_is_refused(world: World) -> None:
    response = world.get("/v1/licences?kind=fishing_licence", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert response.json()["field"] == "kind"


def test_the_list_is_filtered_by_holder(world: World) -> None:
    world.register(
        "/v1/licences",
        {
            "number": "MQ-OTHER",
            "kind": "mining_quota",
            "holder": "OTHER",
            "max_kg": "10",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2026-06-30T00:00:00Z",
        },
    )

    assert list(listed(world, query="?holder=OTHER")) == ["MQ-OTHER"]
    assert list(listed(world, query="?holder=MINECO")) == ["EX-1", "MQ-1", "SQ-1"]


def test_a_holder_filter_matches_only_licences_listed_with_their_holder(world: World) -> None:
    assert [x["number"] for x in everything(world, "analyst", "?holder=MINECO")] == ["MQ-1"]
    assert list(listed(world, "mine", "?holder=MINECO")) == ["EX-1", "MQ-1", "SQ-1"]


def test_an_unknown_holder_is_refused_naming_the_field(world: World) -> None:
    response = world.get("/v1/licences?holder=NOBODY", "regulator")

    assert (response.status_code, response.json()["field"]) == (422, "holder")


def test_the_list_is_filtered_by_expiry(world: World) -> None:
    world.register(
        "/v1/licences",
        {
            "number": "MQ-SHORT",
            "kind": "mining_quota",
            "holder": "MINECO",
            "max_kg": "10",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2026-06-30T00:00:00Z",
        },
    )

    assert list(listed(world, query="?expiring_before=2027-01-01T00:00:00Z")) == ["MQ-SHORT"]
    assert listed(world)["MQ-SHORT"]["expired"] is True


def test_an_expiry_filter_without_a_time_zone_is_refused(world: World) -> None:
    response = world.get("/v1/licences?expiring_before=2027-01-01T00:00:00", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("expiring_before", "timezone")


# --- draws ---------------------------------------------------------------------------------


def test_each_draw_comes_with_its_event(world: World) -> None:
    before = world.recorded()
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    after = world.recorded()

    [draw] = draws(world, "MQ-1")["draws"]

    assert (draw["kind"], draw["cause"], draw["batch"], draw["kg"]) == (
        "draw",
        "extraction",
        "MINECO/ORE-1",
        ORE_1_REO,
    )
    assert (draw["version"], draw["occurred_at"], draw["month"]) == (
        2,
        "2026-03-02T08:00:00+00:00",
        "2026-03",
    )
    assert before < draw["position"] <= after


def test_quota_use_is_given_by_month(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    world.extract("ORE-2", "10000", occurred_at=APRIL)

    assert draws(world, "MQ-1")["by_month"] == {"2026-03": ORE_1_REO, "2026-04": ORE_1_REO}


def test_a_corrected_draw_counts_in_the_month_of_its_draw(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    body = {"batch": "MINECO/ORE-1", "version": 1, "reason": "did-not-occur", "note": "twice"}
    assert world.post("/v1/events/corrections", body).status_code == 201

    answer = draws(world, "MQ-1")

    [_, correction] = answer["draws"]
    assert (correction["kind"], correction["kg"], correction["corrects_version"]) == (
        "correction",
        f"-{ORE_1_REO}",
        2,
    )
    assert answer["by_month"] == {"2026-03": "0"}
    assert answer["licence"]["drawn_kg"] == "0"


def test_a_shipment_s_batch_is_named_to_its_parties_and_overseers_only(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    world.report("shipment-exported", export("ORE-1"))

    [for_the_regulator] = draws(world, "EX-1")["draws"]
    [for_the_analyst] = draws(world, "EX-1", "analyst")["draws"]

    assert (for_the_regulator["batch"], for_the_regulator["kg"]) == ("MINECO/ORE-1", "10000")
    assert (for_the_analyst["batch"], for_the_analyst["kg"]) == (REDACTED, "10000")


@pytest.mark.parametrize("who", ["magnets", "other"])
def test_an_operator_not_party_to_an_export_licence_may_not_list_its_shipments(
    world: World, who: str
) -> None:
    response = world.get("/v1/licences/EX-1/draws", who)

    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == ("number", "ownership")


def test_a_licence_named_by_its_number_shows_its_quota_holder_as_the_registry_does(
    world: World,
) -> None:
    answer = draws(world, "SQ-1", "analyst")["licence"]

    assert (answer["number"], answer["holder"]) == ("SQ-1", "MINECO")
    assert answer["holder"] == world.get("/v1/licences/SQ-1", "analyst").json()["holder"]


def test_the_draws_of_an_unknown_licence_are_not_found(world: World) -> None:
    response = world.get("/v1/licences/NOPE-1/draws", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


# --- refused attempts ----------------------------------------------------------------------


def overdraw(world: World, lot: str = "ORE-BIG") -> Any:
    """An extraction whose REO is more than MQ-1 has left: refused, nothing stored."""
    response = world.refused("/v1/events/ore-extracted", ore(lot, "99000000"))
    assert response.json()["rule"] == "licence-remaining", response.text
    return response


def test_a_refused_overdraw_is_counted_and_the_ledger_did_not_grow(world: World) -> None:
    before = world.recorded()

    overdraw(world)  # also checks that nothing was stored

    assert listed(world)["MQ-1"]["refused_attempts"] == {"licence-remaining": 1}
    assert draws(world, "MQ-1")["licence"]["refused_attempts"] == {"licence-remaining": 1}
    assert world.recorded() == before


def test_refused_attempts_are_counted_per_rule(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    overdraw(world, "ORE-A")
    overdraw(world, "ORE-B")
    world.refused("/v1/events/ore-extracted", ore("ORE-C", occurred_at="2025-12-31T00:00:00Z"))
    world.refused("/v1/events/shipment-exported", export("ORE-1", licence="MQ-1"))

    assert listed(world)["MQ-1"]["refused_attempts"] == {
        "licence-kind": 1,
        "licence-remaining": 2,
        "licence-validity": 1,
    }


def test_a_refusal_in_a_bulk_submission_counts_against_the_licence_its_event_named(
    world: World,
) -> None:
    bulk = {
        "events": [
            {"type": "OreExtracted", **ore("ORE-1", "1000")},
            {"type": "OreExtracted", **ore("ORE-2", "1000", quota="SQ-1")},
        ]
    }

    world.refused("/v1/events/bulk", bulk)

    licences = listed(world)
    assert licences["SQ-1"]["refused_attempts"] == {"licence-kind": 1}
    assert licences["MQ-1"]["refused_attempts"] == {}


def test_a_refused_export_is_counted_against_its_export_licence(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)

    world.refused("/v1/events/shipment-exported", export("ORE-1", consignee="MAGCO"))

    assert listed(world)["EX-1"]["refused_attempts"] == {"consignee-country": 1}


@pytest.mark.parametrize("who", ["magnets", "other"])
def test_an_export_licence_s_refused_attempts_are_hidden_from_other_operators(
    world: World, who: str
) -> None:
    assert unnamed(world, who, "export_licence")["refused_attempts"] == REDACTED


def test_an_analyst_sees_the_refused_attempts(world: World) -> None:
    overdraw(world)

    assert listed(world, "analyst")["MQ-1"]["refused_attempts"] == {"licence-remaining": 1}


def test_a_refused_attempt_records_who_where_and_why_but_nothing_of_the_body(
    world: World,
) -> None:
    world.extract("ORE-1", "10000", occurred_at=MARCH)
    world.refused("/v1/events/shipment-exported", export("ORE-1", end_user="Secret Buyer Holdings"))

    [attempt] = world.client.app.state.runtime.refusals.attempts()  # type: ignore[attr-defined]

    assert (attempt.method, attempt.route, attempt.status) == (
        "POST",
        "/v1/events/shipment-exported",
        422,
    )
    assert (attempt.rule, attempt.field, attempt.licence) == (
        "licence-end-user",
        "end_user",
        "EX-1",
    )
    assert (attempt.role, attempt.actor_id) == ("operator", ids.actor_id("MINECO"))
    assert "Secret" not in repr(attempt)


def test_a_field_named_by_the_caller_is_masked_in_the_record(world: World) -> None:
    # Element keys are at most 3 characters (the schema), but still the caller's words.
    composition = {"Nd": "0.03", "A;B": "0.01"}
    world.refused("/v1/events/ore-extracted", ore("ORE-1", composition=composition))

    [attempt] = world.client.app.state.runtime.refusals.attempts()  # type: ignore[attr-defined]

    assert (attempt.field, attempt.licence) == ("composition.*", "MQ-1")


def test_reads_and_requests_without_a_valid_key_are_not_recorded(world: World) -> None:
    world.get("/v1/licences/NOPE-1", "mine")
    world.client.post("/v1/events/ore-extracted", json=ore("ORE-1"))

    assert world.client.app.state.runtime.refusals.attempts() == []  # type: ignore[attr-defined]


def test_a_refusal_that_cannot_be_recorded_is_still_answered_as_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(attempt: object) -> None:
        raise OSError("the read-model database is gone")

    monkeypatch.setattr(world.client.app.state.runtime.refusals, "record", broken)  # type: ignore[attr-defined]

    response = overdraw(world)

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert "a refused attempt on /v1/events/ore-extracted was not recorded" in caplog.text
