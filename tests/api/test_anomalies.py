"""Anomalies through HTTP, on both stores: what each role sees of them, the filters and
paging, the evidence, and their review (an event of the ledger with who and why) with
each refusal storing nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from lodestone.gateway import create_app
from lodestone.streaming import codec
from tests.api.conftest import (
    CONCENTRATE,
    PROBLEM,
    World,
    _settings,
    beneficiation,
    export,
)

MISSPELT = "AUTO MOTORS GMBH"  # EX-1 names "Auto Motors GmbH"
COMPANY_WORDS = ("MINECO", "Bayan Mining", "AUTOCO", "Auto Motors", "MAGCO", "MINE-1")


@pytest.fixture
def world(fresh_world: World) -> World:
    """MINECO's ORE-1, beneficiated at 99.93 % of its Nd (mass-balance stress), and a
    second ore lot exported to AUTOCO naming the end user in capitals (licence mismatch)."""
    fresh_world.extract("ORE-1", "10000")
    stressed = dict(CONCENTRATE, Nd="0.37475")  # 299.8 kg of the ore's 300 kg Nd
    body = beneficiation()
    body["outputs"][0]["composition"] = stressed
    fresh_world.report("batch-transformed", body)
    fresh_world.extract("ORE-2", "2000")
    fresh_world.report("shipment-exported", export("ORE-2", end_user=MISSPELT))
    return fresh_world


def anomalies(world: World, who: str, query: str = "") -> dict[str, Any]:
    response = world.get(f"/v1/anomalies{query}", who)
    assert response.status_code == 200, response.text
    return dict(response.json())


def by_rule(world: World, who: str) -> dict[str, dict[str, Any]]:
    return {a["rule"]: a for a in anomalies(world, who)["anomalies"]}


def detail(world: World, who: str, rule: str) -> dict[str, Any]:
    anomaly_id = by_rule(world, "admin")[rule]["id"]
    response = world.get(f"/v1/anomalies/{anomaly_id}", who)
    assert response.status_code == 200, response.text
    return dict(response.json())


def review(world: World, rule: str, body: dict[str, Any], who: str = "analyst", **headers: str):
    anomaly_id = by_rule(world, "admin")[rule]["id"]
    return world.post(f"/v1/anomalies/{anomaly_id}/review", body, who, **headers)


ACK = {"status": "acknowledged", "note": "asked the exporter for the shipping papers"}


# --- who sees what ------------------------------------------------------------------------------


def test_a_regulator_sees_each_anomaly_with_companies_and_references(world: World) -> None:
    found = by_rule(world, "regulator")

    assert set(found) == {"mass-balance-stress", "licence-mismatch"}
    mismatch = found["licence-mismatch"]
    assert mismatch["companies"] == ["MINECO", "AUTOCO"]
    assert "MINECO/ORE-2" in mismatch["reason"] and MISSPELT in mismatch["reason"]
    assert (mismatch["severity"], mismatch["status"]) == ("warning", "open")


def test_an_analyst_sees_every_anomaly_with_companies_pseudonymised(world: World) -> None:
    page = anomalies(world, "analyst")

    assert page["total"] == 2
    for anomaly in page["anomalies"]:
        assert all(c.startswith("company-") for c in anomaly["companies"])
        assert not any(word in anomaly["reason"] for word in COMPANY_WORDS), anomaly["reason"]
    # The same company has the same pseudonym in every anomaly about it.
    companies = [a["companies"][0] for a in page["anomalies"]]
    assert companies[0] == companies[1]


def test_an_analyst_sees_no_reference_end_user_or_event_of_the_evidence(world: World) -> None:
    found = detail(world, "analyst", "licence-mismatch")

    evidence = found["evidence"]
    assert evidence["batches"] == [{"redacted": True}]
    assert evidence["licences"] == [{"redacted": True}]
    assert evidence["events"] == [
        {
            "type": "Batch.ShipmentExported",
            "occurred_at": evidence["events"][0]["occurred_at"],
            "redacted": True,
        }
    ]
    assert evidence["figures"]["shipment_end_user"] == {"redacted": True}
    assert evidence["figures"]["destination_country"] == "DE"
    assert not any(word in str(found) for word in COMPANY_WORDS)


def test_an_operator_sees_the_anomalies_about_its_own_company(world: World) -> None:
    assert set(by_rule(world, "mine")) == {"mass-balance-stress", "licence-mismatch"}
    assert set(by_rule(world, "auto")) == {"licence-mismatch"}
    assert anomalies(world, "other") == {"total": 0, "offset": 0, "limit": 100, "anomalies": []}


def test_an_operator_sees_its_counterparty_in_a_step_both_were_party_to(world: World) -> None:
    mismatch = by_rule(world, "auto")["licence-mismatch"]

    assert mismatch["companies"] == ["MINECO", "AUTOCO"]
    assert "MINECO/ORE-2" in mismatch["reason"]


def test_an_operator_asking_for_an_anomaly_about_another_company_finds_none(
    world: World,
) -> None:
    anomaly_id = by_rule(world, "admin")["mass-balance-stress"]["id"]

    response = world.get(f"/v1/anomalies/{anomaly_id}", "auto")

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


def test_the_evidence_names_events_by_store_position_and_cloudevents_id(world: World) -> None:
    (event,) = detail(world, "auditor", "licence-mismatch")["evidence"]["events"]

    history = world.get("/v1/batches/MINECO/ORE-2/history", "auditor").json()["events"]
    exported = next(e for e in history if e["type"] == "Batch.ShipmentExported")
    assert event["position"] == exported["position"]
    assert event["event_id"] == codec.event_id(UUID(event["aggregate_id"]), event["version"])
    assert event["batch"] == "MINECO/ORE-2"


def test_the_evidence_gives_the_figures_the_rule_compared(world: World) -> None:
    figures = detail(world, "regulator", "mass-balance-stress")["evidence"]["figures"]

    assert figures["elements"]["Nd"] == {"in_kg": "300", "out_kg": "299.8", "share": "0.999333"}
    assert figures["stress_share"] == "0.999"


# --- filters and paging ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "rules"),
    [
        ("?rule=licence-mismatch", {"licence-mismatch"}),
        ("?severity=warning", {"licence-mismatch", "mass-balance-stress"}),
        ("?severity=critical", set()),
        ("?element=Nd", {"licence-mismatch", "mass-balance-stress"}),
        ("?element=Pr", {"licence-mismatch"}),  # the stressed step's Pr was not stressed
        ("?country=DE", {"licence-mismatch"}),
        ("?actor=AUTOCO", {"licence-mismatch"}),
        ("?actor=mineco&element=Dy", {"licence-mismatch"}),
        ("?status=open", {"licence-mismatch", "mass-balance-stress"}),
    ],
)
def test_filters_combine(world: World, query: str, rules: set[str]) -> None:
    found = anomalies(world, "regulator", query)["anomalies"]

    assert {a["rule"] for a in found} == rules


def test_an_analyst_finds_a_company_by_its_pseudonym_not_by_its_code(world: World) -> None:
    pseudonym = by_rule(world, "analyst")["licence-mismatch"]["companies"][1]

    assert anomalies(world, "analyst", "?actor=AUTOCO")["total"] == 0
    assert {a["rule"] for a in anomalies(world, "analyst", f"?actor={pseudonym}")["anomalies"]} == {
        "licence-mismatch"
    }


def test_the_batch_filter_finds_the_anomalies_naming_a_batch(world: World) -> None:
    found = anomalies(world, "regulator", "?batch=MINECO/ORE-2")["anomalies"]

    assert {a["rule"] for a in found} == {"licence-mismatch"}


def test_the_batch_filter_finds_nothing_for_a_caller_who_may_not_see_the_reference(
    world: World,
) -> None:
    assert anomalies(world, "analyst", "?batch=MINECO/ORE-2")["total"] == 0


def test_pages_are_cut_from_the_newest_first(world: World) -> None:
    whole = anomalies(world, "regulator")["anomalies"]

    first = anomalies(world, "regulator", "?limit=1")
    second = anomalies(world, "regulator", "?limit=1&offset=1")

    assert first["total"] == second["total"] == 2
    assert first["anomalies"] + second["anomalies"] == whole
    assert whole[0]["occurred_at"] >= whole[1]["occurred_at"]


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        ("?rule=late-report", "rule", "one-of"),
        ("?severity=bad", "severity", "one-of"),
        ("?status=closed", "status", "one-of"),
        ("?limit=0", "limit", "greater-than-equal"),
        ("?limit=501", "limit", "less-than-equal"),
        ("?country=DEU", "country", "string-too-long"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(world: World, query: str, field: str, rule: str):
    response = world.get(f"/v1/anomalies{query}", "regulator")

    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    assert (response.json()["field"], response.json()["rule"]) == (field, rule)


def test_the_rules_are_listed_with_their_definitions_and_thresholds(world: World) -> None:
    rules = world.get("/v1/anomalies/rules", "analyst").json()["rules"]

    assert [r["id"] for r in rules][:2] == ["mass-balance-stress", "smuggling-cover"]
    assert len(rules) == 8
    stress = rules[0]
    assert stress["thresholds"] == {"stress_share": "0.999", "stress_min_kg": "0.001"}
    assert "`stress_share`" in stress["definition"]


def test_configured_thresholds_apply_and_are_listed(
    store: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    settings = _settings(store, tmp_path / "data", request).model_copy(
        update={"anomaly_thresholds": {"stress_share": "0.9"}}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        headers = {"Authorization": "Bearer test-admin-key"}
        rules = client.get("/v1/anomalies/rules", headers=headers).json()["rules"]

    assert rules[0]["thresholds"]["stress_share"] == "0.9"


# --- review -----------------------------------------------------------------------------------------


def test_an_analyst_acknowledges_an_anomaly_recorded_as_one_event(world: World) -> None:
    before = world.recorded()

    response = review(world, "licence-mismatch", ACK)

    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["event"], answer["status"]) == ("AnomalyReviewed", "acknowledged")
    assert world.recorded() == before + 1
    assert by_rule(world, "analyst")["licence-mismatch"]["status"] == "acknowledged"


def test_a_review_says_who_decided_and_why(world: World) -> None:
    review(world, "licence-mismatch", ACK)

    (decision,) = detail(world, "regulator", "licence-mismatch")["reviews"]

    assert (decision["status"], decision["by_role"], decision["note"]) == (
        "acknowledged",
        "analyst",
        ACK["note"],
    )
    assert decision["by"]  # the analyst's credential


def test_a_reviews_note_is_for_the_authorities_and_the_reviewer(world: World) -> None:
    review(world, "licence-mismatch", ACK, "regulator")

    (decision,) = detail(world, "mine", "licence-mismatch")["reviews"]

    assert decision["status"] == "acknowledged"
    assert "note" not in decision and "by" not in decision


def test_a_dismissal_after_an_acknowledgement_keeps_both_decisions(world: World) -> None:
    review(world, "mass-balance-stress", ACK)
    dismissal = {"status": "dismissed", "note": "assay rounding, confirmed by the plant"}
    assert review(world, "mass-balance-stress", dismissal, "regulator").status_code == 201

    decisions = detail(world, "regulator", "mass-balance-stress")["reviews"]

    assert [d["status"] for d in decisions] == ["acknowledged", "dismissed"]
    assert by_rule(world, "regulator")["mass-balance-stress"]["status"] == "dismissed"
    assert anomalies(world, "regulator", "?status=dismissed")["total"] == 1


def test_a_repeated_review_with_its_idempotency_key_stores_nothing_new(world: World) -> None:
    first = review(world, "licence-mismatch", ACK, **{"Idempotency-Key": "rv-1"})
    recorded = world.recorded()

    again = review(world, "licence-mismatch", ACK, **{"Idempotency-Key": "rv-1"})

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert world.recorded() == recorded


@pytest.mark.parametrize(
    ("body", "status", "field", "rule"),
    [
        ({"status": "closed", "note": "done"}, 422, "status", "review-status"),
        ({"status": "open", "note": "still open"}, 409, "status", "status-unchanged"),
        ({"status": "acknowledged", "note": ""}, 422, "note", "required"),
        ({"status": "acknowledged", "note": "   "}, 422, "note", "required"),
        ({"status": "acknowledged", "note": "x" * 1001}, 422, "note", "string-too-long"),
        ({"status": "acknowledged"}, 422, "note", "missing"),
    ],
)
def test_a_bad_review_is_refused_naming_field_and_rule(
    world: World, body: dict[str, Any], status: int, field: str, rule: str
) -> None:
    anomaly_id = by_rule(world, "admin")["licence-mismatch"]["id"]

    problem = world.refused(f"/v1/anomalies/{anomaly_id}/review", body, "analyst").json()

    assert (problem["status"], problem["field"], problem["rule"]) == (status, field, rule)


def test_a_review_of_an_unknown_anomaly_is_refused(world: World) -> None:
    problem = world.refused(f"/v1/anomalies/{uuid4()}/review", ACK, "regulator").json()

    assert (problem["status"], problem["rule"]) == (404, "exists")


@pytest.mark.parametrize("who", ["auditor", "mine", "auto"])
def test_a_role_that_may_not_review_is_refused(world: World, who: str) -> None:
    anomaly_id = by_rule(world, "admin")["licence-mismatch"]["id"]

    problem = world.refused(f"/v1/anomalies/{anomaly_id}/review", ACK, who).json()

    assert (problem["status"], problem["rule"]) == (403, "role")


def test_the_audit_report_of_a_batch_lists_the_anomalies_naming_it(world: World) -> None:
    report = world.get("/v1/batches/MINECO/ORE-2/report", "auditor").json()

    (found,) = [a for a in report["anomalies"] if a["kind"] == "licence-mismatch"]
    assert found["subject"] == "MINECO/ORE-2"
    assert found["type"] == "Batch.ShipmentExported" and found["position"]
    assert MISSPELT in found["detail"]
