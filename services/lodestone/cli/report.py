"""``lodestone report ACTOR/LOT``: a batch's audit report as JSON, HTML or PDF, written
from the data directory (or the PostgreSQL store) without a running gateway."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lodestone.cli.common import DataDir, closed_after, settings_for

console = Console(soft_wrap=True)


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    PDF = "pdf"


def report(
    batch: Annotated[str, typer.Argument(help="ACTOR/LOT")],
    format: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="json for machines, html or pdf to read")
    ] = ReportFormat.HTML,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write it (default: lodestone-report-ACTOR-LOT.FORMAT)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a batch's audit report: custody timeline, genealogy drawn from the mines to
    the end clients, provenance shares, quotas and licences, corrections, anomalies and
    the verification of its audit bundle. It shows client names, contracts and prices."""
    from lodestone.audit import report as reports
    from lodestone.audit.checkpointer import Checkpointer
    from lodestone.bootstrap.stores import (
        build_checkpoint_store,
        build_event_rows,
        build_genealogy_view,
        build_ledger,
        open_view,
    )
    from lodestone.projections.anomalies import AnomaliesProjection, Thresholds
    from lodestone.projections.registry import REGISTRY
    from lodestone.reads.anomalies import AnomalyBook
    from lodestone.streaming.projector import genealogy_projector, log_projector

    settings = settings_for(data_dir)
    ledger = build_ledger(settings)
    view = build_genealogy_view(settings)
    rows = build_event_rows(settings)
    checkpoints = build_checkpoint_store(settings)
    watched: Any = open_view(settings, REGISTRY["anomalies"])
    with closed_after(ledger, view, rows, checkpoints, watched):
        genealogy_projector(ledger, view).catch_up()
        log_projector(ledger, AnomaliesProjection(), watched).catch_up()
        book = AnomalyBook(
            lambda: watched,
            Thresholds.with_overrides(settings.anomaly_thresholds),
            pseudonym_key=b"",  # the report shows companies by name: no pseudonyms
        )
        found = reports.build(
            ledger,
            rows,
            view,
            checkpoints,
            Checkpointer(ledger.recorder, checkpoints),
            ledger.batch(batch).id,
            anomaly_book=book,
        )
    if format is ReportFormat.JSON:
        data = json.dumps(found, indent=2, ensure_ascii=False).encode()
    elif format is ReportFormat.HTML:
        data = reports.html(found).encode()
    else:
        data = reports.pdf(found)
    target = output or Path(f"lodestone-report-{batch.replace('/', '-')}.{format.value}")
    target.write_bytes(data)
    verified = found["verification"]
    verdict = (
        f"[green]verified against checkpoint {verified['checkpoint']['seq']}[/]"
        if verified["ok"]
        else f"[red]verification failed: {verified['error']}[/]"
    )
    console.print(
        f"wrote {target} ({len(data):,} bytes): {len(found['timeline'])} events, "
        f"{len(found['genealogy']['nodes'])} batches in the genealogy, "
        f"{len(found['anomalies'])} anomalies; {verdict}"
    )
