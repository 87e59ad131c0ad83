"""Auditors' commands: verify, checkpoint, replay, check, bundle, verify-bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Column, Table

from lodestone.cli.common import DataDir, closed_after, settings_for

if TYPE_CHECKING:
    from lodestone.bootstrap.settings import Settings
    from lodestone.ledger import Ledger

console = Console(soft_wrap=True)


def _table(*headers: str) -> Table:
    """Long cells (aggregate ids, values) wrap instead of being cut to an ellipsis: the
    report is read in narrow terminals and saved logs, where a cut id names nothing."""
    return Table(*(Column(h, overflow="fold") for h in headers))


def _bar(label: str) -> Progress:
    columns = (label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=False)


def verify(
    data_dir: DataDir = None,
    against_kafka: Annotated[
        bool,
        typer.Option(
            "--against-kafka",
            help="Also compare the checkpoints with those published on Kafka "
            "(LODESTONE_KAFKA_BOOTSTRAP_SERVERS)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Recompute every event hash, every aggregate's chain and every checkpoint's Merkle
    root; name the first broken event and how it is broken. Exit 1 if anything is."""
    from lodestone.audit.verify import verify as run_verify
    from lodestone.bootstrap.stores import build_checkpoint_store, build_event_rows, build_ledger

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    store = build_checkpoint_store(settings)
    rows = build_event_rows(settings)
    published = None
    if against_kafka:
        if not settings.kafka_bootstrap_servers:
            raise typer.BadParameter(
                "LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set", param_hint="--against-kafka"
            )
        from lodestone.streaming.checkpoints import read_published

        published = read_published(settings.kafka_bootstrap_servers, settings.checkpoint_topic)
    with closed_after(ledger, store, rows):
        total = ledger.recorder.max_notification_id() or 0
        with _bar("verifying") as bar:
            task = bar.add_task("events", total=total)
            report = run_verify(
                ledger.recorder,
                store,
                progress=lambda n: bar.advance(task, n),
                published=published,
                rows=rows,
            )
    if as_json:
        console.print_json(json.dumps(report.as_dict(), default=str))
    else:
        newest = report.newest_checkpoint
        console.print(
            f"{report.events:,} events of {report.aggregates:,} aggregates; {report.checkpoints:,} checkpoints"
            + (
                f", the newest seq {newest['seq']} up to position {newest['last_position']} (hash {newest['hash']})"
                if newest
                else ""
            )
            + (
                f"; {report.uncovered_events:,} newer events not yet checkpointed"
                if report.uncovered_events
                else ""
            )
            + (
                f"; compared with {report.compared_with_published:,} published checkpoints"
                if published is not None
                else ""
            )
        )
        if report.ok:
            console.print("[green]OK: every hash, chain and checkpoint holds.[/]")
        else:
            first = report.problems[0]
            console.print(
                f"[red]BROKEN: {len(report.problems)} problem(s). First: {first.kind} — {first.detail}[/]"
            )
            table = _table("kind", "position", "aggregate", "version", "checkpoint", "detail")
            for p in report.problems[:20]:
                table.add_row(
                    p.kind,
                    str(p.position or ""),
                    p.aggregate_id or "",
                    str(p.version or ""),
                    str(p.checkpoint or ""),
                    p.detail,
                )
            console.print(table)
    if not report.ok:
        raise typer.Exit(1)


def checkpoint(data_dir: DataDir = None) -> None:
    """Checkpoint the events recorded since the last checkpoint now."""
    from lodestone.audit.checkpointer import Checkpointer
    from lodestone.bootstrap.stores import build_checkpoint_store, build_ledger

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    store = build_checkpoint_store(settings)
    with closed_after(ledger, store):
        made = Checkpointer(ledger.recorder, store).make()
        latest = store.latest()
    console.print(f"{len(made)} checkpoint(s) made.")
    if latest:
        console.print(
            f"newest: seq {latest['seq']}, positions up to {latest['last_position']}, root {latest['root']}, hash {latest['hash']}"
        )


def bundle(
    batch: Annotated[str, typer.Argument(help="ACTOR/LOT")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the bundle")],
    data_dir: DataDir = None,
) -> None:
    """Write a batch's audit bundle: its events, hashes and checkpoint proofs. Check it
    anywhere with ``lodestone verify-bundle`` or the standalone integrity.py."""
    from lodestone.audit import bundle as bundles
    from lodestone.audit.checkpointer import Checkpointer
    from lodestone.bootstrap.stores import build_checkpoint_store, build_event_rows, build_ledger

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    store = build_checkpoint_store(settings)
    rows = build_event_rows(settings)
    with closed_after(ledger, store, rows):
        data = bundles.build(
            ledger.recorder,
            rows,
            store,
            Checkpointer(ledger.recorder, store),
            ledger.batch(batch).id,
        )
    output.write_bytes(data)
    console.print(f"wrote {output} ({len(data):,} bytes)")


def verify_bundle(
    path: Annotated[Path, typer.Argument(help="An audit bundle (JSON)")],
    anchor: Annotated[
        str | None, typer.Option(help="A checkpoint hash you hold from elsewhere")
    ] = None,
) -> None:
    """Check an audit bundle exactly as the standalone integrity.py does."""
    from lodestone import integrity

    code = integrity.main([str(path), *(["--anchor", anchor] if anchor else [])])
    if code:
        raise typer.Exit(code)


def _summary(aggregate: Any, names: dict[Any, str]) -> dict[str, str]:
    from lodestone.domain.batches import Batch

    if not isinstance(aggregate, Batch):
        return {"version": str(aggregate.version)}
    return {
        "status": aggregate.status.value,
        "remaining_kg": str(aggregate.remaining_kg),
        "custodian": names.get(aggregate.custodian_id, str(aggregate.custodian_id)),
        "facility": names.get(aggregate.facility_id, str(aggregate.facility_id)),
        "holders": str(len(aggregate.holders)),
        "corrections": str(len(getattr(aggregate, "corrections", []) or [])),
    }


def replay(
    batch: Annotated[str, typer.Argument(help="ACTOR/LOT")],
    data_dir: DataDir = None,
    upto: Annotated[int | None, typer.Option(help="Stop after this version")] = None,
) -> None:
    """Walk a batch's events one by one, printing each event and the state after it."""
    from lodestone.bootstrap.stores import build_event_rows, build_ledger
    from lodestone.reads import history as hist

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    rows = build_event_rows(settings)
    names: dict[Any, str] = {}
    with closed_after(ledger, rows):
        batch_id = ledger.batch(batch).id
        entries = hist.history(ledger, rows, batch_id)
        aggregate: Any = None
        before: dict[str, str] = {}
        for entry in entries:
            if upto is not None and entry.version > upto:
                break
            event: Any = next(
                iter(ledger.events.get(batch_id, gt=entry.version - 1, lte=entry.version))
            )
            aggregate = event.mutate(aggregate)
            for attr in ("custodian_id", "facility_id"):
                id = getattr(aggregate, attr, None)
                if id is not None and id not in names:
                    try:
                        names[id] = (
                            ledger.actor(id) if attr == "custodian_id" else ledger.facility(id)
                        ).code
                    except Exception:
                        names[id] = str(id)
            after = _summary(aggregate, names)
            changed = {k: v for k, v in after.items() if before.get(k) != v}
            mark = "" if entry.intact else " [red]ROW ALTERED[/]"
            console.print(
                f"[bold]v{entry.version}[/] {entry.type}  position {entry.position}  "
                f"occurred {entry.occurred_at.isoformat() if entry.occurred_at else '-'}  "
                f"recorded {entry.recorded_at.isoformat()}  by {entry.reported_by}  hash {str(entry.hash)[:12]}{mark}"
            )
            console.print(
                "    " + ", ".join(f"{k}: {v}" for k, v in changed.items())
                if changed
                else "    (no change to the summary)"
            )
            before = after


def check(data_dir: DataDir = None) -> None:
    """Rebuild every aggregate from the event store and compare it with every read model:
    the genealogy row by row, the snapshots, and each registered read model as a whole
    (projected afresh into a scratch copy up to where the live one is, fingerprints
    compared). List any difference; exit 1 if there is one."""
    from lodestone.audit.consistency import check as run_check
    from lodestone.bootstrap.stores import build_genealogy_view, build_ledger

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    view = build_genealogy_view(settings)
    with closed_after(ledger, view):
        total = ledger.recorder.max_notification_id() or 0
        with _bar("folding the event store") as bar:
            task = bar.add_task("events", total=total)
            report = run_check(ledger, view, progress=lambda n: bar.advance(task, n))
        models = _compare_read_models(settings, ledger)
    console.print(
        f"{report.events:,} events, {report.aggregates:,} aggregates; compared {report.batches_compared:,} genealogy rows and {report.snapshots_compared:,} snapshots"
    )
    differing = [m for m in models if m[1] == "DIFFERS"]
    table = _table("read model", "at notification", "projected afresh", "result")
    for name, result, position, events in models:
        table.add_row(name, position, events, result)
    console.print(table)
    if report.ok and not differing:
        console.print("[green]OK: every read model agrees with the event store.[/]")
        return
    if report.differences:
        table = _table("read model", "aggregate", "field", "from the events", "in the read model")
        for d in report.differences:
            table.add_row(d.read_model, d.aggregate_id, d.field, d.from_events, d.in_read_model)
        console.print(table)
    for name, *_ in differing:
        console.print(
            f"[red]{name}: its rows differ from a projection of the event store up to the "
            f"same notification[/] (`lodestone rebuild --projection {name}` replaces them)"
        )
    raise typer.Exit(1)


def _compare_read_models(settings: Settings, ledger: Ledger) -> list[tuple[str, str, str, str]]:
    """Each registered read model against a copy projected afresh: (name, result, the
    notification compared at, events projected)."""
    from lodestone.bootstrap.stores import open_shadow, open_view, stored_version
    from lodestone.projections.registry import REGISTRY
    from lodestone.streaming.compare import compare_with_store
    from lodestone.streaming.feeds import NotificationLogFeed

    results = []
    for entry in REGISTRY.select(None):
        stored = stored_version(settings, entry)
        if stored is None:
            results.append((entry.name, "not compared: no rows yet", "-", "-"))
            continue
        if stored != entry.version:
            # Opening the view would set its rows aside for this release's version.
            results.append(
                (
                    entry.name,
                    f"not compared: holds version {stored}, this release {entry.version}",
                    "-",
                    "-",
                )
            )
            continue
        live = open_view(settings, entry)
        scratch, _ = open_shadow(settings, entry, purpose="check")
        with closed_after(live), _bar(f"projecting {entry.name} afresh") as bar:
            task = bar.add_task("events", total=live.position(NotificationLogFeed.source))
            compared = compare_with_store(
                entry.projection(),
                live,
                scratch,
                NotificationLogFeed(ledger.recorder, ledger.mapper),
                progress=lambda n, task=task: bar.advance(task, n),  # type: ignore[misc]
            )
        if not compared.compared:
            result = "not compared: fed from Kafka (see rebuild --from-kafka)"
        else:
            result = "same" if compared.same else "DIFFERS"
        results.append((entry.name, result, f"{compared.position:,}", f"{compared.events:,}"))
    return results
