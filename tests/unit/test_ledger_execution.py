"""How the ledger runs commands: one save per command, idempotent retries, and no lost
update when writers race (two ledgers on one SQLite file, each with its own cache)."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest

from lodestone.domain import ids
from lodestone.domain.access import Principal
from lodestone.domain.batches import Status
from lodestone.domain.chain import OutputSpec
from lodestone.domain.refusals import Conflict, InvalidInput, NotFound, Refusal, RuleBroken
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c

ORE = {"Nd": D("0.04"), "Pr": D("0.01"), "Fe": D("0.2")}


class ObservedLedger(Ledger):
    """Counts saves, and can let another writer in just before the next one: the race
    between loading and saving, made deterministic."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = 0
        self.before_next_save = None

    def save(self, *objs, **kwargs):
        self.saves += 1
        interloper, self.before_next_save = self.before_next_save, None
        if interloper is not None:
            interloper()
        return super().save(*objs, **kwargs)


def extraction(lot, kg=D("1000")):
    return c.ExtractOre(facility="M-PIT", quota="MQ-1", lot_code=lot, mass_kg=kg, composition=ORE)


def split(lot, kg, parent="ORE-1"):
    return c.Split(batch=parent, parts=[(lot, D(kg))])


def notifications_after(ledger, position):
    return ledger.recorder.select_notifications(start=position + 1, limit=1000)


# --- one command, one save --------------------------------------------------------------------


def test_transformation_with_three_inputs_and_two_outputs_is_saved_in_one_go(
    make_ledger, register_world
):
    ledger = make_ledger(ObservedLedger)
    world = register_world(ledger)
    ledger.execute(world.mine, [extraction(lot) for lot in ("ORE-1", "ORE-2", "ORE-3")])
    before, saves = ledger.recorder.max_notification_id(), ledger.saves

    ledger.execute(
        world.mine,
        [
            c.Transform(
                facility="M-PIT",
                process="beneficiation",
                reference="BEN-1",
                inputs=[("ORE-1", D("1000")), ("ORE-2", D("500")), ("ORE-3", D("250"))],
                outputs=[
                    OutputSpec("CON-1", "concentrate", D("100"), {"Nd": D("0.5")}),
                    OutputSpec("CON-2", "concentrate", D("20"), {"Pr": D("0.5")}),
                ],
            )
        ],
    )

    assert ledger.saves == saves + 1
    stored = notifications_after(ledger, before)
    assert [n.id for n in stored] == list(range(before + 1, before + 7))
    mine = ids.actor_id("MINECO")
    assert {n.originator_id for n in stored} == {
        ids.transformation_id(mine, "BEN-1"),
        *(ids.batch_id(mine, lot) for lot in ("CON-1", "CON-2", "ORE-1", "ORE-2", "ORE-3")),
    }
    assert sorted(n.topic.rsplit(".", 1)[-1] for n in stored) == [
        "BatchTransformed",
        "Consumed",
        "Consumed",
        "Consumed",
        "Produced",
        "Produced",
    ]


def test_refused_bulk_stores_none_of_its_events(ledger, world):
    before = ledger.recorder.max_notification_id()

    with pytest.raises(InvalidInput) as caught:
        ledger.execute(
            world.mine,
            [extraction("ORE-1"), extraction("ORE-2"), extraction("ORE-3", kg=1000.0)],
            bulk=True,
        )

    assert caught.value.field.startswith("events[2].")
    assert (caught.value.field, caught.value.rule) == ("events[2].mass_kg", "exact-decimal")
    assert ledger.recorder.max_notification_id() == before
    with pytest.raises(NotFound):
        ledger.batch("MINECO/ORE-1")
    assert ledger.licence_by_number("MQ-1").drawn_kg == 0


def test_refusal_outside_a_bulk_names_the_field_alone(ledger, world):
    with pytest.raises(InvalidInput) as caught:
        ledger.execute(world.mine, [extraction("ORE-1", kg=1000.0)])

    assert caught.value.field == "mass_kg"


def test_bulk_sees_its_own_earlier_events(ledger, world):
    ledger.execute(
        world.mine,
        [extraction("ORE-1"), split("ORE-1-A", "400"), split("ORE-1-B", "600")],
        bulk=True,
    )

    assert ledger.batch("MINECO/ORE-1").status is Status.CONSUMED
    assert ledger.batch("MINECO/ORE-1-B").initial_kg == D("600")


def test_bulk_taking_more_than_its_own_earlier_events_left_is_refused(ledger, world):
    before = ledger.recorder.max_notification_id()

    with pytest.raises(RuleBroken) as caught:
        ledger.execute(
            world.mine,
            [extraction("ORE-1"), split("ORE-1-A", "400"), split("ORE-1-B", "600.000001")],
            bulk=True,
        )

    assert (caught.value.field, caught.value.rule) == ("events[2].parts", "mass-available")
    assert ledger.recorder.max_notification_id() == before


# --- idempotency --------------------------------------------------------------------------


def test_retry_with_the_same_key_and_request_replays_the_first_answer(ledger, world):
    first = ledger.execute(
        world.mine, [extraction("ORE-1")], idempotency_key="k-1", fingerprint="sha:aaa"
    )
    after_first = ledger.recorder.max_notification_id()

    again = ledger.execute(
        world.mine, [extraction("ORE-1")], idempotency_key="k-1", fingerprint="sha:aaa"
    )

    assert (first.replayed, again.replayed) == (False, True)
    assert again.results == first.results
    assert ledger.recorder.max_notification_id() == after_first
    assert ledger.licence_by_number("MQ-1").drawn_kg == D("58.738")


def test_same_key_for_a_different_request_is_a_conflict(ledger, world):
    ledger.execute(world.mine, [extraction("ORE-1")], idempotency_key="k-1", fingerprint="sha:aaa")
    before = ledger.recorder.max_notification_id()

    with pytest.raises(Conflict) as caught:
        ledger.execute(
            world.mine, [extraction("ORE-2")], idempotency_key="k-1", fingerprint="sha:bbb"
        )

    assert (caught.value.field, caught.value.rule) == ("Idempotency-Key", "idempotency-key-reuse")
    assert ledger.recorder.max_notification_id() == before
    with pytest.raises(NotFound):
        ledger.batch("MINECO/ORE-2")


def test_refused_request_leaves_its_key_unused(ledger, world):
    with pytest.raises(InvalidInput):
        ledger.execute(
            world.mine, [extraction("ORE-1", kg=1.5)], idempotency_key="k-1", fingerprint="a"
        )

    outcome = ledger.execute(
        world.mine, [extraction("ORE-1")], idempotency_key="k-1", fingerprint="b"
    )

    assert outcome.replayed is False
    assert ledger.batch("MINECO/ORE-1").initial_kg == D("1000")


def test_same_key_from_another_principal_is_another_request(ledger, world):
    ledger.execute(world.mine, [extraction("ORE-1")], idempotency_key="k-1", fingerprint="a")

    outcome = ledger.execute(
        world.alloyer,
        [
            c.CollectScrap(
                facility="A-ALLOY",
                lot_code="SCR-1",
                mass_kg=D("10"),
                composition={"Nd": D("0.3")},
                source="swarf",
            )
        ],
        idempotency_key="k-1",
        fingerprint="b",
    )

    assert outcome.replayed is False
    assert ledger.batch("ALLOYCO/SCR-1").initial_kg == D("10")


# --- optimistic concurrency -----------------------------------------------------------------


def two_ledgers_sharing_one_batch(make_ledger, register_world):
    """Ledger A (observed) and ledger B on one SQLite file, both with ORE-1 (1000 kg) in
    their own caches."""
    a, b = make_ledger(ObservedLedger), make_ledger()
    world = register_world(a)
    a.execute(world.mine, [extraction("ORE-1")])
    assert a.batch("MINECO/ORE-1").remaining_kg == b.batch("MINECO/ORE-1").remaining_kg
    return a, b, world


def test_command_that_loses_a_race_reruns_on_fresh_state_and_succeeds(make_ledger, register_world):
    a, b, world = two_ledgers_sharing_one_batch(make_ledger, register_world)
    a.before_next_save = lambda: b.execute(world.mine, [split("ORE-1-B", "400")])
    saves = a.saves

    a.execute(world.mine, [split("ORE-1-A", "300")])

    assert a.saves == saves + 2  # the first save collided with B's split; the rerun stored
    for ledger in (a, b):
        assert ledger.batch("MINECO/ORE-1").remaining_kg == D("1000") - D("400") - D("300")
    assert a.batch("MINECO/ORE-1-A").initial_kg + a.batch("MINECO/ORE-1-B").initial_kg == 700


def test_command_that_loses_a_race_is_refused_on_fresh_state(make_ledger, register_world):
    a, b, world = two_ledgers_sharing_one_batch(make_ledger, register_world)
    a.before_next_save = lambda: b.execute(world.mine, [split("ORE-1-B", "600")])
    before = a.recorder.max_notification_id()

    with pytest.raises(RuleBroken) as caught:
        a.execute(world.mine, [split("ORE-1-A", "600")])

    assert (caught.value.field, caught.value.rule) == ("parts", "mass-available")
    assert a.recorder.max_notification_id() == before + 2  # B's SplitOff and BatchSplit only
    assert a.batch("MINECO/ORE-1").remaining_kg == D("400")
    with pytest.raises(NotFound):
        a.batch("MINECO/ORE-1-A")


def test_racing_retries_with_one_idempotency_key_store_the_command_once(
    make_ledger, register_world
):
    a, b, world = two_ledgers_sharing_one_batch(make_ledger, register_world)
    command = [split("ORE-1-A", "300")]
    a.before_next_save = lambda: b.execute(
        world.mine, command, idempotency_key="k-1", fingerprint="sha:aaa"
    )
    saves = a.saves

    outcome = a.execute(world.mine, command, idempotency_key="k-1", fingerprint="sha:aaa")

    assert a.saves == saves + 1  # collided with B's copy; the rerun found B's answer
    assert outcome.replayed is True
    assert a.batch("MINECO/ORE-1").remaining_kg == D("700")


def test_cached_batch_catches_up_with_another_ledgers_writes(make_ledger, register_world):
    a, b, world = two_ledgers_sharing_one_batch(make_ledger, register_world)
    b.execute(world.mine, [split("ORE-1-B", "600")])
    saves = a.saves

    with pytest.raises(RuleBroken) as caught:
        a.execute(world.mine, [split("ORE-1-A", "600")])

    assert caught.value.rule == "mass-available"
    assert a.saves == saves  # refused before saving: the check already saw B's split


def test_concurrent_splits_through_two_ledgers_never_lose_an_update(make_ledger, register_world):
    ledgers = [make_ledger(), make_ledger()]
    world = register_world(ledgers[0])
    ledgers[0].execute(world.mine, [extraction("ORE-1", kg=D("1000"))])
    for ledger in ledgers:  # both caches hold the batch before the race
        ledger.batch("MINECO/ORE-1")
    part = D("150")  # at most 6 of the 8 fit in 1000 kg
    start = threading.Barrier(8)
    outcomes: dict[str, object] = {}

    def split_off(n):
        lot = f"ORE-1-{n}"
        start.wait()
        try:
            ledgers[n % 2].execute(world.mine, [split(lot, part)])
        except Exception as error:  # reported below, whatever it is
            outcomes[lot] = error
        else:
            outcomes[lot] = "stored"

    threads = [threading.Thread(target=split_off, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    stored = [lot for lot, outcome in outcomes.items() if outcome == "stored"]
    refused = {lot: o for lot, o in outcomes.items() if o != "stored"}
    assert len(outcomes) == 8
    assert 1 <= len(stored) <= 6
    for refusal in refused.values():
        assert isinstance(refusal, Refusal), repr(refusal)
        assert (type(refusal), refusal.field, refusal.rule) in {
            (RuleBroken, "parts", "mass-available"),
            (Conflict, "", "concurrent-update"),
        }, refusal
    fresh = make_ledger()  # an empty cache: everything is read back from the store
    assert fresh.batch("MINECO/ORE-1").remaining_kg == D("1000") - part * len(stored)
    for lot in stored:
        assert fresh.batch(f"MINECO/{lot}").initial_kg == part
    for lot in refused:
        with pytest.raises(NotFound):
            fresh.batch(f"MINECO/{lot}")


# --- reloading from snapshots ---------------------------------------------------------------


def test_licence_reloaded_from_its_snapshot_can_still_be_drawn(make_ledger, register_world):
    ledger = make_ledger()
    world = register_world(ledger)
    ledger.execute(world.mine, [extraction(f"ORE-{n}", kg=D("10")) for n in range(199)])
    cold = make_ledger()  # an empty cache: the licence comes from its snapshot

    cold.execute(world.mine, [extraction("ORE-X", kg=D("10"))])

    assert cold.licence_by_number("MQ-1").draws == 200


def test_batch_reloaded_from_its_snapshot_can_still_be_split(make_ledger, register_world):
    ledger = make_ledger()
    world = register_world(ledger)
    ledger.execute(world.mine, [extraction("ORE-1", kg=D("1000"))])
    ledger.execute(world.mine, [split(f"P-{n}", "1") for n in range(199)], bulk=True)
    cold = make_ledger()

    cold.execute(world.mine, [split("P-X", "1")])

    assert cold.batch("MINECO/ORE-1").remaining_kg == D("800")


def test_a_credential_stored_before_expiry_existed_loads_and_authenticates(
    ledger: Ledger, admin: Principal
) -> None:
    # Its stream holds Credential.Issued only (no ExpirySet): the class defaults apply.
    key_hash = "ab" * 32
    ledger.execute(admin, [c.IssueCredential(key_hash=key_hash, role="auditor", label="old")])

    principal = ledger.authenticate(key_hash)

    assert principal is not None and principal.role.value == "auditor"


def test_an_expired_credential_no_longer_authenticates(backend, admin: Principal) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    ledger = Ledger(backend.ledger_env("events"), clock=lambda: now[0])
    try:
        key_hash = "cd" * 32
        expires = now[0] + timedelta(hours=1)
        ledger.execute(
            admin, [c.IssueCredential(key_hash=key_hash, role="analyst", expires_at=expires)]
        )
        before = ledger.authenticate(key_hash)
        now[0] = expires

        assert before is not None and ledger.authenticate(key_hash) is None
    finally:
        ledger.close()
