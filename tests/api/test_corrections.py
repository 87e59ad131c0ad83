"""Corrections through HTTP (POST /v1/events/corrections), on both stores.

History is never edited: a wrong report is corrected by a new ``Batch.Corrected`` event
naming the version it corrects and why. These tests prove that every view then shows the
corrected facts and marks the correction, that the history keeps both events, that the
quota follows a corrected extraction, and that a correction breaking mass, custody,
chronology or quota, or made by someone who may not, is refused with nothing stored.

The chain: MINECO extracts ORE-1 (10,000 kg, 499.575 kg REO under MQ-1) on 2 February
2026 and, in most tests, beneficiates 6,000 kg of it into 480 kg of CON-1 on 3 February.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import CONCENTRATE, World, beneficiation, export, hold, ore, sale

#: REO per kg of ORE: 499.575 kg REO in 10,000 kg.
REO_PER_KG = Decimal("0.0499575")
CORRECTIONS = "/v1/events/corrections"


@pytest.fixture
def world(fresh_world: World) -> World:
    """Each test gets its own copy of the registered world (own data, own runtime)."""
    return fresh_world


def day(n: int) -> str:
    return f"2026-02-{n:02d}T08:00:00Z"


def correction(
    batch: str = "MINECO/ORE-1",
    version: int = 1,
    reason: str = "incorrect-data",
    note: str = "weighbridge misread",
    **facts: Any,
) -> dict[str, Any]:
    return {"batch": batch, "version": version, "reason": reason, "facts": facts, "note": note}


def mined(world: World) -> None:
    """ORE-1: 10,000 kg extracted on 2 February."""
    world.report("ore-extracted", ore("ORE-1", "10000", occurred_at=day(2)))


def beneficiated(world: World) -> None:
    """ORE-1, then 6,000 kg of it beneficiated into 480 kg of CON-1 on 3 February."""
    mined(world)
    world.report("batch-transformed", beneficiation(take="6000", kg="480", occurred_at=day(3)))


def corrected(world: World, body: dict[str, Any], who: str = "mine", **headers: str) -> Any:
    response = world.post(CORRECTIONS, body, who, **headers)
    assert response.status_code == 201, response.text
    return response.json()


def drawn(world: World) -> Decimal:
    return Decimal(world.get("/v1/licences/MQ-1", "regulator").json()["drawn_kg"])


def history(world: World, batch: str = "MINECO/ORE-1") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = world.get(f"/v1/batches/{batch}/history", "auditor").json()[
        "events"
    ]
    return events


def recorded_state(world: World, batch: str) -> tuple[Any, ...]:
    """What a refused correction must leave alone: the batch (version and all), its
    history and the quota's draw."""
    return world.get(f"/v1/batches/{batch}", "auditor").json(), history(world, batch), drawn(world)


def refusal(world: World, body: dict[str, Any], who: str = "mine") -> tuple[int, str | None, str]:
    """A correction that must be refused: problem+json, nothing stored (no new position,
    the batch, its history and the quota as they were); its status, field and rule."""
    before = recorded_state(world, body["batch"])
    response = world.refused(CORRECTIONS, body, who)
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["type"] == f"urn:lodestone:problem:{problem['rule']}"
    assert recorded_state(world, body["batch"]) == before
    return response.status_code, problem.get("field"), problem["rule"]


def node(lineage: dict[str, Any], batch: str) -> dict[str, Any]:
    return next(n for n in lineage["nodes"] if n["batch"] == batch)


# --- a mass correction by the reporting actor ---------------------------------------------


def test_a_mass_correction_answers_the_new_event(world: World) -> None:
    beneficiated(world)

    answer = corrected(world, correction(mass_kg="12000"))

    assert (answer["event"], answer["batch"], str(answer["corrects_version"])) == (
        "Corrected",
        "MINECO/ORE-1",
        "1",
    )


def test_a_corrected_batch_shows_its_corrected_mass_and_the_correction(world: World) -> None:
    beneficiated(world)
    corrected(world, correction(mass_kg="12000", note="weighbridge misread"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    # 6,000 kg were taken into CON-1: of 12,000 kg, 6,000 remain.
    assert (state["initial_kg"], state["remaining_kg"], state["status"]) == (
        "12000",
        "6000",
        "active",
    )
    assert state["corrected"] is True
    assert [
        (c["corrects_version"], c["corrects_type"], c["reason"], c["note"], c["facts"])
        for c in state["corrections"]
    ] == [(1, "OreExtracted", "incorrect-data", "weighbridge misread", {"mass_kg": "12000"})]


def test_an_uncorrected_batch_says_so(world: World) -> None:
    mined(world)

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["corrected"] is False
    assert "corrections" not in state


def test_the_history_keeps_the_original_event_unchanged_beside_the_correction(
    world: World,
) -> None:
    beneficiated(world)
    original = history(world)[0]

    corrected(world, correction(mass_kg="12000"))
    events = history(world)

    first, last = events[0], events[-1]
    assert {k: v for k, v in first.items() if k != "corrected_by_versions"} == original
    assert original["facts"]["mass_kg"] == "10000"
    assert first["corrected_by_versions"] == [last["version"]]
    assert (last["type"], last["facts"]["corrects_version"], last["facts"]["facts"]) == (
        "Batch.Corrected",
        1,
        {"mass_kg": "12000"},
    )
    assert [e["version"] for e in events if "corrected_by_versions" in e] == [1]
    assert [e["intact"] for e in events] == [True] * len(events)
    assert last["prev"] == events[-2]["hash"]


def test_an_upstream_trace_shows_the_corrected_mass_and_the_corrections_count(
    world: World,
) -> None:
    beneficiated(world)
    corrected(world, correction(mass_kg="12000"))

    upstream = world.get("/v1/batches/MINECO/CON-1/upstream").json()

    ore_node = node(upstream, "MINECO/ORE-1")
    assert (ore_node["initial_kg"], ore_node["remaining_kg"], ore_node["corrections"]) == (
        "12000",
        "6000",
        1,
    )
    assert "corrections" not in node(upstream, "MINECO/CON-1")


def test_a_downstream_trace_shows_the_corrected_mass_and_the_corrections_count(
    world: World,
) -> None:
    beneficiated(world)
    corrected(world, correction(mass_kg="12000"))
    corrected(world, correction(occurred_at="2026-02-01T06:00:00Z", note="shift log"))

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    ore_node = node(downstream, "MINECO/ORE-1")
    assert (ore_node["initial_kg"], ore_node["remaining_kg"], ore_node["corrections"]) == (
        "12000",
        "6000",
        2,
    )
    assert {n["batch"] for n in downstream["nodes"]} == {"MINECO/ORE-1", "MINECO/CON-1"}


def test_provenance_still_sums_to_one_after_a_correction(world: World) -> None:
    beneficiated(world)
    corrected(world, correction(mass_kg="12000"))

    for batch, basis in (("MINECO/ORE-1", "6000"), ("MINECO/CON-1", "480")):
        provenance = world.get(f"/v1/batches/{batch}/provenance").json()
        assert provenance["basis_kg"] == basis
        for element, found in provenance["elements"].items():
            assert sum(Decimal(o["share"]) for o in found["origins"]) == 1, (batch, element)


def test_a_mass_correction_changes_the_quota_draw_by_the_reo_difference(world: World) -> None:
    beneficiated(world)
    before = world.get("/v1/licences/MQ-1").json()

    corrected(world, correction(mass_kg="12000"))
    after = world.get("/v1/licences/MQ-1").json()

    assert Decimal(before["drawn_kg"]) == Decimal("499.575")
    assert Decimal(after["drawn_kg"]) - Decimal(before["drawn_kg"]) == 2000 * REO_PER_KG
    assert Decimal(after["remaining_kg"]) == Decimal("100000") - Decimal(after["drawn_kg"])


def test_a_composition_correction_of_an_unused_lot_changes_its_state_and_quota_draw(
    world: World,
) -> None:
    mined(world)
    richer = {"Nd": "0.040", "Pr": "0.010", "Dy": "0.002", "Tb": "0.0005", "Fe": "0.20"}

    corrected(world, correction(composition=richer, note="second assay"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert {e: Decimal(s) for e, s in state["composition"].items()} == {
        e: Decimal(s) for e, s in richer.items()
    }
    # 100 kg more Nd is 116.64 kg more Nd2O3.
    assert drawn(world) == Decimal("499.575") + Decimal("116.64")


def test_an_analyst_sees_what_was_corrected_and_why_but_not_who_corrected_it(
    world: World,
) -> None:
    mined(world)
    corrected(world, correction(mass_kg="9000"))

    (seen,) = world.get("/v1/batches/MINECO/ORE-1", "analyst").json()["corrections"]

    assert (seen["facts"], seen["note"], seen["reason"]) == (
        {"mass_kg": "9000"},
        "weighbridge misread",
        "incorrect-data",
    )
    assert "reported_by" not in seen


def test_another_key_of_the_reporting_company_may_correct(world: World) -> None:
    mined(world)
    world.keys["mine-2"] = world.register(
        "/v1/credentials", {"role": "operator", "actor": "MINECO", "label": "mine-2"}
    )["key"]

    corrected(world, correction(mass_kg="9000"), "mine-2")

    assert world.get("/v1/batches/MINECO/ORE-1").json()["initial_kg"] == "9000"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("custody-transferred", sale(occurred_at=day(5), actor="MINECO")),
        ("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1", "occurred_at": day(5)}),
    ],
)
def test_the_company_a_step_was_reported_for_by_an_admin_may_correct_it(
    world: World, kind: str, body: dict[str, Any]
) -> None:
    mined(world)
    world.report(kind, body | {"actor": "MINECO"}, "admin")

    corrected(world, correction(version=2, occurred_at=day(4), note="contract date"))

    assert world.get("/v1/batches/MINECO/ORE-1").json()["corrected"] is True


@pytest.mark.parametrize("who", ["regulator", "admin"])
def test_a_regulator_or_an_admin_may_correct(world: World, who: str) -> None:
    mined(world)

    corrected(world, correction(mass_kg="9000", note="inspection"), who)

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert state["initial_kg"] == "9000"
    assert [c["by_role"] for c in state["corrections"]] == [who]


def test_a_holds_reason_may_be_corrected(world: World) -> None:
    mined(world)
    world.report("batch-quarantined", hold(reason="assay disputd", occurred_at=day(4)))

    body = correction(version=2, note="typo") | {"facts": {"reason": "assay disputed"}}
    corrected(world, body)

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert state["corrections"][0]["facts"] == {"reason": "assay disputed"}
    assert state["status"] == "quarantined"


def test_a_held_lot_corrected_down_to_what_was_taken_is_consumed_once_released(
    world: World,
) -> None:
    beneficiated(world)
    world.report("batch-quarantined", hold(occurred_at=day(4)))
    corrected(world, correction(mass_kg="6000", note="re-weighed"))

    world.report("batch-released", hold(reason="assay confirmed", occurred_at=day(5)))

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert (state["status"], state["remaining_kg"]) == ("consumed", "0")


def test_a_sales_time_may_be_corrected_within_the_batchs_chronology(world: World) -> None:
    mined(world)
    world.report("custody-transferred", sale(occurred_at=day(5)))

    corrected(world, correction(version=2, occurred_at=day(4), note="contract date"))

    (entry,) = world.get("/v1/batches/MINECO/ORE-1").json()["corrections"]
    assert (entry["corrects_type"], entry["facts"]) == (
        "CustodyTransferred",
        {"occurred_at": "2026-02-04T08:00:00+00:00"},
    )


# --- did-not-occur --------------------------------------------------------------------------


def test_an_unused_ore_lot_that_did_not_occur_is_void_with_nothing_left(world: World) -> None:
    mined(world)

    corrected(world, correction(reason="did-not-occur", note="duplicate report"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert (state["status"], state["remaining_kg"]) == ("void", "0")
    trace = world.get("/v1/batches/MINECO/ORE-1/downstream").json()
    assert (node(trace, "MINECO/ORE-1")["status"], drawn(world)) == ("void", 0)


def test_an_ore_lot_that_did_not_occur_gives_its_reo_back_to_the_quota(world: World) -> None:
    world.report("ore-extracted", ore("ORE-2", "2000", occurred_at=day(1)))
    mined(world)

    corrected(world, correction(reason="did-not-occur", note="duplicate report"))

    assert drawn(world) == 2000 * REO_PER_KG


@pytest.mark.parametrize(
    ("kind", "body", "who"),
    [
        ("custody-transferred", sale(), "mine"),
        ("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1"}, "mine"),
        (
            "batch-split",
            {"batch": "ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "1"}]},
            "mine",
        ),
        ("batch-transformed", beneficiation(take="1", kg="0.05"), "mine"),
        ("shipment-exported", export(), "mine"),
        ("batch-quarantined", hold(), "mine"),
        ("batch-quarantined", hold("MINECO/ORE-1"), "regulator"),
    ],
)
def test_a_void_lot_refuses_any_later_step(
    world: World, kind: str, body: dict[str, Any], who: str
) -> None:
    mined(world)
    corrected(world, correction(reason="did-not-occur", note="duplicate report"))

    response = world.refused(f"/v1/events/{kind}", body, who)

    assert (response.status_code, response.json()["rule"]) == (409, "batch-void")


def test_a_void_lot_refuses_a_further_correction(world: World) -> None:
    mined(world)
    corrected(world, correction(reason="did-not-occur", note="duplicate report"))

    assert refusal(world, correction(mass_kg="9000")) == (409, "version", "batch-void")


def test_an_ore_lot_only_moved_and_held_since_may_be_said_not_to_have_occurred(
    world: World,
) -> None:
    mined(world)
    world.report("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1", "occurred_at": day(3)})
    world.report("batch-quarantined", hold(occurred_at=day(4)))

    corrected(world, correction(reason="did-not-occur", note="duplicate report"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()
    assert (state["status"], state["remaining_kg"]) == ("void", "0")
    assert drawn(world) == 0


def test_a_move_that_did_not_occur_puts_the_batch_back_at_its_previous_facility(
    world: World,
) -> None:
    mined(world)
    world.report("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1", "occurred_at": day(3)})

    corrected(world, correction(version=2, reason="did-not-occur", note="never left the pit"))

    assert world.get("/v1/batches/MINECO/ORE-1").json()["facility"]["code"] == "MINE-1"
    trace = world.get("/v1/batches/MINECO/ORE-1/downstream").json()
    assert node(trace, "MINECO/ORE-1")["facility"]["code"] == "MINE-1"


# --- refusals -----------------------------------------------------------------------------


def test_a_mass_below_what_was_already_taken_is_refused(world: World) -> None:
    beneficiated(world)

    assert refusal(world, correction(mass_kg="5999")) == (422, "facts.mass_kg", "mass-available")


def test_a_composition_correction_after_a_beneficiation_is_refused(world: World) -> None:
    beneficiated(world)

    assert refusal(world, correction(composition=CONCENTRATE)) == (
        422,
        "facts.composition",
        "correction-breaks-balance",
    )


def test_a_time_after_a_later_step_is_refused(world: World) -> None:
    beneficiated(world)

    assert refusal(world, correction(occurred_at=day(4))) == (
        422,
        "facts.occurred_at",
        "chronology",
    )


def test_a_time_before_an_earlier_step_is_refused(world: World) -> None:
    mined(world)
    world.report("custody-transferred", sale(occurred_at=day(5)))

    assert refusal(world, correction(version=2, occurred_at=day(1))) == (
        422,
        "facts.occurred_at",
        "chronology",
    )


def test_a_time_in_the_future_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(occurred_at="2999-01-01T00:00:00Z")) == (
        422,
        "facts.occurred_at",
        "not-in-future",
    )


def test_a_time_outside_the_quotas_validity_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(occurred_at="2025-12-31T00:00:00Z")) == (
        422,
        "facts.occurred_at",
        "licence-validity",
    )


def test_a_transformation_outputs_event_is_not_correctable(world: World) -> None:
    beneficiated(world)

    assert refusal(world, correction("MINECO/CON-1", mass_kg="400")) == (
        422,
        "version",
        "not-correctable",
    )


def test_an_inputs_consumption_is_not_correctable(world: World) -> None:
    beneficiated(world)

    assert refusal(world, correction(version=2, occurred_at=day(3))) == (
        422,
        "version",
        "not-correctable",
    )


def test_an_ore_lot_already_sold_cannot_be_said_not_to_have_occurred(world: World) -> None:
    mined(world)
    world.report("custody-transferred", sale(occurred_at=day(5)))

    assert refusal(world, correction(reason="did-not-occur")) == (
        422,
        "version",
        "correction-breaks-history",
    )


def test_a_correction_of_a_correction_is_refused(world: World) -> None:
    mined(world)
    corrected(world, correction(mass_kg="9000"))

    assert refusal(world, correction(version=2, mass_kg="9500")) == (
        422,
        "version",
        "not-a-correction",
    )


def test_a_version_that_does_not_exist_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(version=7, mass_kg="9000")) == (422, "version", "exists")


def test_an_unknown_fact_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(grade="N52")) == (422, "facts.grade", "correctable-fact")


def test_a_fact_the_event_type_does_not_carry_is_refused(world: World) -> None:
    mined(world)
    world.report("custody-transferred", sale(occurred_at=day(5)))

    assert refusal(world, correction(version=2, mass_kg="9000")) == (
        422,
        "facts.mass_kg",
        "correctable-fact",
    )


def test_a_mass_correction_beyond_the_quota_is_refused(world: World) -> None:
    mined(world)

    # 2,100 t of this ore is about 104.9 t REO; MQ-1 allows 100 t.
    assert refusal(world, correction(mass_kg="2100000")) == (422, "facts.mass_kg", "quota")


def test_a_correction_by_another_operator_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(mass_kg="9000"), "magnets") == (
        403,
        "version",
        "reporting-actor",
    )


def test_the_buyer_may_not_correct_the_sellers_sale(world: World) -> None:
    mined(world)
    world.report("custody-transferred", sale(occurred_at=day(5)))

    assert refusal(world, correction(version=2, occurred_at=day(4)), "magnets") == (
        403,
        "version",
        "reporting-actor",
    )


@pytest.mark.parametrize("who", ["auditor", "analyst"])
def test_readers_may_not_correct(world: World, who: str) -> None:
    mined(world)

    status, _, rule = refusal(world, correction(mass_kg="9000"), who)

    assert (status, rule) == (403, "role")


def test_a_did_not_occur_correction_with_facts_is_refused(world: World) -> None:
    mined(world)

    assert refusal(world, correction(reason="did-not-occur", mass_kg="9000")) == (
        422,
        "facts",
        "empty",
    )


# --- integrity and retries ----------------------------------------------------------------


def test_the_ledger_verifies_after_corrections(world: World) -> None:
    beneficiated(world)
    corrected(world, correction(mass_kg="12000"))
    corrected(world, correction(occurred_at="2026-02-01T06:00:00Z", note="shift log"))

    report = world.get("/v1/audit/verify", "auditor").json()

    assert (report["ok"], report["problems"]) == (True, [])


def test_a_retried_correction_answers_the_first_answer_and_stores_nothing(world: World) -> None:
    mined(world)
    key = {"Idempotency-Key": "mine-correction-0001"}
    first = corrected(world, correction(mass_kg="9000"), **key)
    recorded = world.recorded()

    retry = world.post(CORRECTIONS, correction(mass_kg="9000"), "mine", **key)

    assert (retry.status_code, retry.json()) == (201, first)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert world.recorded() == recorded
    assert len(world.get("/v1/batches/MINECO/ORE-1").json()["corrections"]) == 1
