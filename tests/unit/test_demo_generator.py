"""The demo chain generator: deterministic, sized, streamed, and accepted whole by the
ledger, recorded at the times its steps were reported, and holding a few instances of
each anomaly pattern. One small demo is loaded once into a real ledger on SQLite and
shared by the tests that read it back."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lodestone.demo.generator import (
    REGISTERED_AT,
    VALID_FROM,
    VALID_UNTIL,
    DemoChain,
    DemoSummary,
    Report,
    generate,
    load,
)
from lodestone.domain.batches import Status
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.ledger.application import MAX_BULK
from lodestone.projections.anomalies import RULE_IDS, AnomaliesProjection, evaluate
from lodestone.projections.anomalies.sqlite import SQLiteAnomaliesView
from lodestone.streaming.projector import log_projector

SMALL = 400
#: A 400-command demo runs 4 cycles; its featured magnet lot has 112-126 ancestors over
#: seeds 0-24, so 80 leaves room for other seeds while proving a many-to-one genealogy.
MANY_ANCESTORS = 80


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, DemoSummary]]:
    path: Path = tmp_path_factory.mktemp("demo") / "events.db"
    ledger = Ledger(sqlite_env(path))
    summary = load(ledger, seed=7, size=SMALL, chunk_size=150)
    yield ledger, summary
    ledger.close()


def transactions(reports: Iterable[Report], chunk_size: int) -> int:
    """How many transactions ``load`` makes of these reports: one per record time, or
    several of at most ``chunk_size`` commands."""
    sizes = Counter(report.recorded_at for report in reports)
    return sum(-(-n // chunk_size) for n in sizes.values())


def upstream(ledger: Ledger, ref: str) -> dict[UUID, Any]:
    """Every batch upstream of ``ref``, by id, read back from the ledger."""
    found: dict[UUID, Any] = {}
    todo = [parent["batch_id"] for parent in ledger.batch(ref).parents]
    while todo:
        batch_id = todo.pop()
        if batch_id not in found:
            found[batch_id] = batch = ledger.repository.get(batch_id)
            todo.extend(parent["batch_id"] for parent in batch.parents)
    return found


def values(command: c.Command) -> Iterator[Any]:
    """Every scalar a command carries, through lists, dicts, tuples and output specs."""
    todo: list[Any] = [command]
    while todo:
        value = todo.pop()
        if isinstance(value, c.Command | OutputSpec | UntracedInput):
            todo.extend(getattr(value, f.name) for f in dataclasses.fields(value))
        elif isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list | tuple):
            todo.extend(value)
        else:
            yield value


def test_a_small_demo_loads_into_a_real_ledger_without_refusal(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, summary = loaded  # load() raises on the first refused command
    assert summary.commands == len(list(DemoChain(7, SMALL).commands()))
    assert summary.chunks == transactions(DemoChain(7, SMALL).reports(), 150)
    assert ledger.recorder.max_notification_id() >= summary.commands


def test_the_same_seed_yields_identical_commands() -> None:
    assert list(DemoChain(3, SMALL).commands()) == list(DemoChain(3, SMALL).commands())


def test_different_seeds_yield_different_commands() -> None:
    assert list(DemoChain(3, SMALL).commands()) != list(DemoChain(4, SMALL).commands())


@pytest.mark.parametrize("size", [300, 2_000, 8_000])
def test_size_sets_the_number_of_commands_within_a_quarter(size: int) -> None:
    count = sum(1 for _ in DemoChain(1, size).commands())
    assert 0.75 * size <= count <= 1.25 * size


def test_the_summary_magnet_lot_descends_from_many_batches(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, summary = loaded
    assert ledger.batch(summary.magnet).material.value == "magnet"
    ancestry = upstream(ledger, summary.magnet)
    assert len(ancestry) >= MANY_ANCESTORS
    assert summary.magnet_ancestors == len(ancestry)


def test_the_summary_magnet_lot_reaches_ore_mined_in_four_countries(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, summary = loaded
    mined = {
        batch.origin["country"]
        for batch in upstream(ledger, summary.magnet).values()
        if batch.origin and batch.origin["kind"] == "mined"
    }
    assert mined == {"CN", "MM", "US", "AU"}


def test_the_exported_part_is_received_by_its_end_client_abroad(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, summary = loaded
    part = ledger.batch(summary.exported)
    client = ledger.actor_by_code(summary.end_client)
    assert part.status is Status.ACTIVE and part.custodian_id == client.id
    assert client.country != "CN"
    assert ledger.batch(summary.magnet).id in {p["batch_id"] for p in part.parents}


def test_the_recycled_oxide_descends_from_collected_scrap(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, summary = loaded
    origins = {
        batch.origin["kind"]
        for batch in upstream(ledger, summary.recycled).values()
        if batch.origin
    }
    assert "recycled" in origins


def test_the_quarantined_ore_lot_stays_held(loaded: tuple[Ledger, DemoSummary]) -> None:
    ledger, summary = loaded
    assert ledger.batch(summary.quarantined).status is Status.QUARANTINED


def test_registrations_come_before_every_step() -> None:
    # Steps and the corrections of them (the scrap dealer's intake, re-weighed).
    kinds = [
        isinstance(cmd, c.ReportStep | c.CorrectEvent) for cmd in DemoChain(5, SMALL).commands()
    ]
    first_step = kinds.index(True)
    assert first_step > 0 and all(kinds[first_step:])


def test_every_step_is_dated_in_the_past_and_inside_the_licence_windows() -> None:
    now = datetime.now(UTC)
    for cmd in DemoChain(5, 2_000).commands():
        if isinstance(cmd, c.ReportStep):
            assert cmd.occurred_at is not None
            assert VALID_FROM <= cmd.occurred_at <= min(now, VALID_UNTIL)


def test_masses_and_fractions_are_exact_decimals_never_floats() -> None:
    for cmd in DemoChain(5, SMALL).commands():
        for value in values(cmd):
            assert not isinstance(value, float), cmd
            if isinstance(value, Decimal):
                assert value.is_finite() and -value.as_tuple().exponent <= 9  # type: ignore[operator]


def test_a_large_generation_streams_in_chunks_no_bigger_than_the_chunk_size() -> None:
    stream = generate(seed=11, size=20_000, chunk_size=1_000)
    first = next(stream)  # a lazy stream: each chunk is made when it is asked for
    sizes = [len(first), *(len(chunk) for chunk in stream)]
    assert max(sizes) <= 1_000
    assert all(size == 1_000 for size in sizes[:-1])
    assert 15_000 <= sum(sizes) <= 25_000


def test_a_chunk_size_above_the_ledgers_bulk_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        next(DemoChain(1, SMALL).chunks(MAX_BULK + 1))


def recorded(ledger: Ledger) -> list[Any]:
    """Every stored event of the ledger, in store order."""
    notifications = ledger.recorder.select_notifications(start=1, limit=1_000_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def test_steps_come_in_the_order_they_happened() -> None:
    times = [
        cmd.occurred_at
        for cmd in DemoChain(5, 2_000).commands()
        if isinstance(cmd, c.ReportStep) and cmd.occurred_at is not None
    ]
    assert times == sorted(times)


def test_every_step_is_recorded_after_it_happened_and_within_a_day(
    loaded: tuple[Ledger, DemoSummary],
) -> None:
    ledger, _ = loaded
    lags = [
        event.timestamp - event.occurred_at
        for event in recorded(ledger)
        if getattr(event, "occurred_at", None) is not None
    ]
    assert lags and min(lags) >= timedelta(0)
    assert max(lags) < timedelta(days=1)


def test_record_times_never_go_back_in_store_order(loaded: tuple[Ledger, DemoSummary]) -> None:
    ledger, _ = loaded
    times = [event.timestamp for event in recorded(ledger)]
    assert times[0] == REGISTERED_AT
    assert times == sorted(times)


def test_the_demo_holds_a_few_of_each_anomaly_pattern_and_no_other(
    loaded: tuple[Ledger, DemoSummary], tmp_path: Path
) -> None:
    ledger, _ = loaded
    view = SQLiteAnomaliesView(tmp_path / "anomalies.sqlite")
    log_projector(ledger, AnomaliesProjection(), view).catch_up()

    found = Counter(anomaly.rule for anomaly in evaluate(view.facts()))
    view.close()

    # Refused attempts are not ledger events: no demo can hold them.
    assert set(found) == set(RULE_IDS) - {"licence-refusals"}
    assert all(1 <= n <= 3 for n in found.values()), found
