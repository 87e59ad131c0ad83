"""Audit reports of a batch: JSON for machines, HTML and PDF for people. They show
client names, contracts and prices, so only auditors, regulators and admins get them."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Depends, Response
from fastapi.responses import HTMLResponse

from lodestone.audit import report as reports
from lodestone.domain.access import Role
from lodestone.gateway.deps import RuntimeDep, roles
from lodestone.gateway.downloads import disposition
from lodestone.gateway.problems import READ_ERRORS
from lodestone.reads import batches
from lodestone.reads.types import AuditReport

AUDITORS = (Role.AUDITOR, Role.REGULATOR, Role.ADMIN)
router = APIRouter(
    prefix="/v1/batches",
    tags=["reports"],
    dependencies=[Depends(roles(*AUDITORS))],
    responses=READ_ERRORS,
)


def _report(runtime: RuntimeDep, actor: str, lot: str) -> AuditReport:
    batch_id = batches.batch_id(runtime.ledger, actor, lot)
    report = reports.build(
        runtime.ledger,
        runtime.rows,
        runtime.fresh_view(),
        runtime.checkpoints,
        runtime.checkpointer,
        batch_id,
        anomaly_book=runtime.anomalies,
    )
    return cast(AuditReport, report)


@router.get(
    "/{actor}/{lot}/report", summary="Audit report of a batch (JSON)", response_model=AuditReport
)
def report_json(actor: str, lot: str, runtime: RuntimeDep) -> AuditReport:
    """State; custody timeline with event and record times and reporters; genealogy up
    to the mines and down to the end clients with masses; provenance shares per
    element; quotas and licences drawn; corrections; anomalies; and the verification
    of the batch's audit bundle with the checkpoint it relies on. Decimals are strings."""
    return _report(runtime, actor, lot)


@router.get(
    "/{actor}/{lot}/report.html",
    summary="Audit report of a batch (HTML, the genealogy drawn inline)",
    response_class=HTMLResponse,
)
def report_html(actor: str, lot: str, runtime: RuntimeDep) -> HTMLResponse:
    """The JSON report as one self-contained page: styles and the genealogy graph
    (SVG drawn by Graphviz) are inline."""
    return HTMLResponse(reports.html(dict(_report(runtime, actor, lot))))


@router.get(
    "/{actor}/{lot}/report.pdf",
    summary="Audit report of a batch (PDF, A4 landscape)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def report_pdf(actor: str, lot: str, runtime: RuntimeDep) -> Response:
    """The HTML report laid out for print by WeasyPrint."""
    document = reports.pdf(dict(_report(runtime, actor, lot)))
    name = f"lodestone-report-{actor}-{lot}.pdf"
    return Response(
        document,
        media_type="application/pdf",
        headers=disposition("inline", name),
    )
