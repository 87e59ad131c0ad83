"""The auditors' endpoints, through HTTP on both stores: a batch's history with both
clocks, its state as known at / as it happened at / at a version, who may call them,
audit bundles checked by the verifier the gateway serves, verification and checkpoints.

The batch: MINECO mines ORE-1 on 1 March (event time), moves it to SEP-1 on 1 April,
the regulator quarantines it on 10 April and the admin releases it on 20 April; each
step is recorded when its request is made (record time: now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lodestone import integrity
from tests.api.conftest import PROBLEM, World, beneficiation, hold, ore
from tests.fixtures.verifier import run_alone

MINED = datetime(2026, 3, 1, tzinfo=UTC)
MOVED = datetime(2026, 4, 1, tzinfo=UTC)
HELD = datetime(2026, 4, 10, tzinfo=UTC)
RELEASED = datetime(2026, 4, 20, tzinfo=UTC)
HISTORY = "/v1/batches/MINECO/ORE-1/history"
AS_OF = "/v1/batches/MINECO/ORE-1/as-of"
BUNDLE = "/v1/batches/MINECO/ORE-1/bundle"
AUDITORS = ("auditor", "regulator", "admin")
NOT_AUDITORS = ("mine", "magnets", "other", "auto", "analyst")


@pytest.fixture
def world(fresh_world: World) -> World:
    """Each test gets its own copy of the registered world (own data, own runtime)."""
    return fresh_world


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ore_1_history(world: World) -> tuple[datetime, datetime]:
    """Records ORE-1's four steps; the record-time window they were recorded in."""
    before = datetime.now(UTC)
    world.report("ore-extracted", ore("ORE-1", "10000", occurred_at=iso(MINED)))
    world.report(
        "batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1", "occurred_at": iso(MOVED)}
    )
    world.report("batch-quarantined", hold("MINECO/ORE-1", occurred_at=iso(HELD)), "regulator")
    world.report(
        "batch-released",
        hold("MINECO/ORE-1", "assay confirmed", occurred_at=iso(RELEASED)),
        "admin",
    )
    return before, datetime.now(UTC)


def get(world: World, path: str, who: str = "auditor", **params: Any) -> Any:
    return world.client.get(path, params=params, headers=world.headers(who))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.text
    body: dict[str, Any] = response.json()
    return body


# --- history ------------------------------------------------------------------------------


def test_history_lists_the_batchs_events_in_position_order(world: World) -> None:
    ore_1_history(world)

    events = ok(get(world, HISTORY))["events"]

    assert [e["version"] for e in events] == [1, 2, 3, 4]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert positions[-1] == world.recorded()
    assert [e["type"] for e in events] == [
        "Batch.OreExtracted",
        "Batch.BatchMoved",
        "Batch.BatchQuarantined",
        "Batch.BatchReleased",
    ]


def test_history_gives_event_time_and_record_time_apart(world: World) -> None:
    before, after = ore_1_history(world)

    events = ok(get(world, HISTORY))["events"]

    assert [parse(e["occurred_at"]) for e in events] == [MINED, MOVED, HELD, RELEASED]
    recorded = [parse(e["recorded_at"]) for e in events]
    assert recorded == sorted(recorded)
    assert all(before <= t <= after for t in recorded), (before, recorded, after)


def test_history_names_who_reported_each_step_and_with_which_role(world: World) -> None:
    ore_1_history(world)

    events = ok(get(world, HISTORY))["events"]

    reporters = [e["reported_by"] for e in events]
    assert [r["role"] for r in reporters] == ["operator", "operator", "regulator", "admin"]
    assert reporters[0]["actor"] == "MINECO" and reporters[0]["label"] == "mine"
    assert reporters[2]["label"] == "regulator" and reporters[2]["actor"] is None


def test_history_hashes_are_chained_and_intact(world: World) -> None:
    ore_1_history(world)

    events = ok(get(world, HISTORY))["events"]

    hashes = [e["hash"] for e in events]
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    assert len(set(hashes)) == 4
    assert [e["prev"] for e in events] == [None, *hashes[:-1]]
    assert all(e["intact"] is True for e in events)


def test_history_upstream_merges_the_ancestors_events_in_position_order(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())
    world.report("batch-moved", {"batch": "CON-1", "to_facility": "SEP-1"})
    own = ok(get(world, "/v1/batches/MINECO/CON-1/history"))["events"]
    ore_events = ok(get(world, HISTORY))["events"]

    found = ok(get(world, "/v1/batches/MINECO/CON-1/history", lineage="upstream"))

    assert found["lineage"] == "upstream"
    merged = sorted(own + ore_events, key=lambda e: e["position"])
    assert [(e["position"], e["aggregate_id"], e["version"]) for e in found["events"]] == [
        (e["position"], e["aggregate_id"], e["version"]) for e in merged
    ]
    assert len(ore_events) == 2 and len(own) == 2


def test_history_downstream_includes_the_descendants_events(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())
    concentrate = ok(get(world, "/v1/batches/MINECO/CON-1/history"))

    found = ok(get(world, HISTORY, lineage="downstream"))["events"]

    assert concentrate["id"] in {e["aggregate_id"] for e in found}
    positions = [e["position"] for e in found]
    assert positions == sorted(positions)


def test_history_of_an_unknown_batch_is_not_found(world: World) -> None:
    refused(get(world, "/v1/batches/MINECO/NOPE/history"), 404)


# --- as of --------------------------------------------------------------------------------


def test_as_of_version_1_is_the_state_after_creation(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, version=1))

    assert (found["clock"], found["version"], found["events_after"]) == ("version", 1, 3)
    assert found["existed"] is True
    assert found["state"]["version"] == 1
    assert found["state"]["facility"]["code"] == "MINE-1"
    assert found["state"]["status"] == "active"
    assert found["upstream"]["batch"] == "MINECO/ORE-1"
    assert found["provenance"]["elements"]["Nd"]["origins"][0]["mine"] == "MINE-1"


def test_as_of_a_version_beyond_the_newest_is_the_current_state(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, version=99))

    assert (found["version"], found["events_after"]) == (4, 0)


def test_as_known_before_the_batch_was_recorded_it_did_not_exist(world: World) -> None:
    ore_1_history(world)
    first_recorded = parse(ok(get(world, HISTORY))["events"][0]["recorded_at"])

    found = ok(get(world, AS_OF, known_at=iso(first_recorded - timedelta(microseconds=1))))

    assert found["existed"] is False
    assert (found["clock"], found["version"], found["events_after"]) == ("recorded", 0, 4)
    assert found["state"] is None


def test_as_known_when_the_batch_was_recorded_it_is_the_created_state(world: World) -> None:
    ore_1_history(world)
    first_recorded = parse(ok(get(world, HISTORY))["events"][0]["recorded_at"])

    found = ok(get(world, AS_OF, known_at=iso(first_recorded)))

    assert (found["existed"], found["version"]) == (True, 1)
    assert parse(found["at"]) == first_recorded


def test_as_known_now_is_the_current_version(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, known_at=iso(datetime.now(UTC))))

    assert (found["existed"], found["version"], found["events_after"]) == (True, 4, 0)
    assert found["state"]["status"] == "active"
    assert found["state"]["facility"]["code"] == "SEP-1"


def test_as_known_while_held_it_is_quarantined(world: World) -> None:
    ore_1_history(world)
    events = ok(get(world, HISTORY))["events"]
    between = (
        parse(events[2]["recorded_at"])
        + (parse(events[3]["recorded_at"]) - parse(events[2]["recorded_at"])) / 2
    )

    found = ok(get(world, AS_OF, known_at=iso(between)))

    assert (found["version"], found["state"]["status"]) == (3, "quarantined")


def test_as_it_happened_between_two_steps_it_is_the_state_after_the_first(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, happened_at=iso(MINED + (MOVED - MINED) / 2)))

    assert (found["clock"], found["version"], found["events_after"]) == ("occurred", 1, 3)
    assert found["state"]["facility"]["code"] == "MINE-1"


def test_as_it_happened_at_a_steps_moment_includes_that_step(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, happened_at=iso(MOVED)))

    assert found["version"] == 2
    assert found["state"]["facility"]["code"] == "SEP-1"


def test_as_it_happened_before_the_first_step_it_did_not_exist(world: World) -> None:
    ore_1_history(world)

    found = ok(get(world, AS_OF, happened_at=iso(MINED - timedelta(seconds=1))))

    assert (found["existed"], found["version"]) == (False, 0)


def test_as_of_with_none_of_the_three_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    problem = refused(get(world, AS_OF), 422)

    assert (problem["field"], problem["rule"]) == ("known_at", "one-of")
    assert all(name in problem["detail"] for name in ("known_at", "happened_at", "version"))


@pytest.mark.parametrize(
    "given",
    [("known_at", "version"), ("happened_at", "version"), ("known_at", "happened_at")],
    ids="+".join,
)
def test_as_of_with_two_of_the_three_is_refused_naming_one_given(
    world: World, given: tuple[str, str]
) -> None:
    world.extract("ORE-1", "10000")
    values = {"known_at": iso(datetime.now(UTC)), "happened_at": iso(MINED), "version": 1}

    problem = refused(get(world, AS_OF, **{name: values[name] for name in given}), 422)

    assert problem["rule"] == "one-of"
    assert problem["field"] in given


@pytest.mark.parametrize("name", ["known_at", "happened_at"])
def test_as_of_a_time_without_a_time_zone_is_refused(world: World, name: str) -> None:
    world.extract("ORE-1", "10000")

    problem = refused(get(world, AS_OF, **{name: "2026-05-01T00:00:00"}), 422)

    assert (problem["field"], problem["rule"]) == (name, "timezone")


def test_as_of_version_0_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    problem = refused(get(world, AS_OF, version=0), 422)

    assert problem["field"] == "version"


# --- who may call them ---------------------------------------------------------------------

AUDIT_ENDPOINTS = [
    ("GET", HISTORY, {}),
    ("GET", HISTORY, {"lineage": "upstream"}),
    ("GET", HISTORY, {"lineage": "downstream"}),
    ("GET", AS_OF, {"version": 1}),
    ("GET", BUNDLE, {}),
    ("GET", "/v1/audit/verifier.py", {}),
    ("GET", "/v1/audit/verify", {}),
    ("GET", "/v1/audit/checkpoints", {}),
    ("POST", "/v1/audit/checkpoints", {}),
]


@pytest.mark.parametrize("who", NOT_AUDITORS)
def test_operators_and_analysts_are_refused_every_audit_endpoint(world: World, who: str) -> None:
    world.extract("ORE-1", "10000")
    before = world.recorded()

    for method, path, params in AUDIT_ENDPOINTS:
        response = world.client.request(method, path, params=params, headers=world.headers(who))
        problem = refused(response, 403)
        assert problem["rule"] == "role", (method, path)

    assert ok(get(world, "/v1/audit/checkpoints"))["checkpoints"] == []
    assert world.recorded() == before


@pytest.mark.parametrize("who", AUDITORS)
def test_auditors_regulators_and_admins_may_call_every_audit_endpoint(
    world: World, who: str
) -> None:
    world.extract("ORE-1", "10000")

    for method, path, params in AUDIT_ENDPOINTS:
        response = world.client.request(method, path, params=params, headers=world.headers(who))
        expected = 201 if method == "POST" else 200
        assert response.status_code == expected, (method, path, response.text)


def test_audit_endpoints_without_a_key_are_unauthorised(world: World) -> None:
    for method, path, params in AUDIT_ENDPOINTS:
        refused(world.client.request(method, path, params=params), 401)


# --- bundles and the verifier --------------------------------------------------------------


def run_downloaded(world: World, bundle: bytes, tmp_path: Path, *args: str) -> tuple[int, str]:
    """Downloads the verifier and runs a copy of it alone on ``bundle``, isolated."""
    response = get(world, "/v1/audit/verifier.py")
    assert response.status_code == 200, response.text
    return run_alone(response.content, bundle, tmp_path, *args)


def test_the_verifier_served_is_integrity_py_itself(world: World) -> None:
    response = get(world, "/v1/audit/verifier.py")

    assert response.status_code == 200
    assert response.text == Path(integrity.__file__).read_text()
    assert 'filename="integrity.py"' in response.headers["content-disposition"]


def test_a_downloaded_bundle_verifies_with_the_downloaded_verifier(
    world: World, tmp_path: Path
) -> None:
    ore_1_history(world)

    response = get(world, BUNDLE)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "lodestone-bundle-MINECO-ORE-1.json" in response.headers["content-disposition"]
    code, output = run_downloaded(world, response.content, tmp_path)
    assert code == 0, output
    assert output.startswith("OK: 4 events of batch MINECO/ORE-1 are intact and chained")


def test_a_bundle_carries_the_hashes_history_shows(world: World) -> None:
    ore_1_history(world)
    history = ok(get(world, HISTORY))["events"]

    bundle = ok(get(world, BUNDLE))

    assert [(e["position"], e["hash"], e["prev"]) for e in bundle["events"]] == [
        (e["position"], e["hash"], e["prev"]) for e in history
    ]


def test_a_bundle_anchored_at_the_newest_published_checkpoint_verifies(
    world: World, tmp_path: Path
) -> None:
    ore_1_history(world)
    data = get(world, BUNDLE).content
    newest = ok(get(world, "/v1/audit/checkpoints"))["checkpoints"][-1]["hash"]

    code, output = run_downloaded(world, data, tmp_path, "--anchor", newest)

    assert code == 0, output
    assert "the bundle is anchored" in output


def test_an_edited_bundle_fails_the_downloaded_verifier(world: World, tmp_path: Path) -> None:
    ore_1_history(world)
    data = get(world, BUNDLE).content
    edited = data.replace(b'"reason":"assay confirmed"', b'"reason":"assay confirmes"')
    assert edited != data

    code, output = run_downloaded(world, edited, tmp_path)

    assert code == 1
    assert output.startswith("FAILED:")


def test_a_bundle_of_an_unknown_batch_is_not_found(world: World) -> None:
    refused(get(world, "/v1/batches/MINECO/NOPE/bundle"), 404)


# --- verification and checkpoints ---------------------------------------------------------


def test_verify_is_ok_on_a_fresh_world(world: World) -> None:
    report = ok(get(world, "/v1/audit/verify"))

    assert report["ok"] is True
    assert report["first_problem"] is None and report["problems"] == []
    assert report["events"] == world.recorded()


def test_verify_is_ok_after_steps_and_a_checkpoint(world: World) -> None:
    ore_1_history(world)
    world.client.post("/v1/audit/checkpoints", headers=world.headers("auditor"))

    report = ok(get(world, "/v1/audit/verify"))

    assert report["ok"] is True
    assert (report["checkpoints"], report["uncovered_events"]) == (1, 0)
    assert report["covered_up_to_position"] == world.recorded()


def test_making_a_checkpoint_covers_everything_recorded(world: World) -> None:
    ore_1_history(world)
    recorded = world.recorded()

    response = world.client.post("/v1/audit/checkpoints", headers=world.headers("auditor"))

    assert response.status_code == 201, response.text
    made, latest = response.json()["made"], response.json()["latest"]
    assert made and made[-1] == latest
    assert (made[0]["seq"], made[0]["first_position"]) == (1, 1)
    assert latest["last_position"] == recorded
    assert latest["hash"] == integrity.checkpoint_hash(latest)
    assert ok(get(world, "/v1/audit/checkpoints"))["checkpoints"] == made


def test_a_second_checkpoint_covers_only_what_was_recorded_since(world: World) -> None:
    world.extract("ORE-1", "10000")
    first = world.client.post("/v1/audit/checkpoints", headers=world.headers("admin")).json()
    world.report("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1"})

    second = world.client.post("/v1/audit/checkpoints", headers=world.headers("admin")).json()

    cp = second["latest"]
    assert cp["seq"] == first["latest"]["seq"] + 1
    assert cp["prev"] == first["latest"]["hash"]
    assert cp["first_position"] == first["latest"]["last_position"] + 1
    assert cp["last_position"] == world.recorded()


def test_making_a_checkpoint_with_nothing_new_makes_none(world: World) -> None:
    world.extract("ORE-1", "10000")
    first = world.client.post("/v1/audit/checkpoints", headers=world.headers("admin")).json()

    again = world.client.post("/v1/audit/checkpoints", headers=world.headers("admin")).json()

    assert again == {"made": [], "latest": first["latest"]}
