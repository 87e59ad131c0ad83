"""Anomalies: what the oversight rules find in the ledger, and their review.

Every authenticated role may read; what each sees is decided in the query layer
(``lodestone.reads.anomalies``): authorities everything, analysts every anomaly with
companies pseudonymised and references withheld, operators the anomalies about their
own company. Analysts, regulators and admins review them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal
from lodestone.gateway.body import ExactJSONRoute
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS, WRITE_ERRORS
from lodestone.gateway.schemas.anomalies import AnomalyReviewCreate
from lodestone.gateway.schemas.answers import Recorded
from lodestone.gateway.writes import WriteDep, submitters
from lodestone.ledger import commands as c
from lodestone.reads import anomalies
from lodestone.reads.types import AnomalyDetail, AnomalyPage, AnomalyRules

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"], route_class=ExactJSONRoute)
Reviewer = Annotated[Principal, submitters(c.ReviewAnomaly)]

LIST_DESCRIPTION = """Newest first. Filters combine: `rule`, `severity` (critical, warning, info),
`status` (open, acknowledged, dismissed), `actor` (a company as you see it: its code, or
the pseudonym you are shown), `element` (Dy, Tb, ...), `country` (ISO 3166-1 alpha-2),
`batch` (ACTOR/LOT, if you may see that reference); paging by `offset` and `limit` (at
most 500).

Analysts see every anomaly with companies pseudonymised and batch references, work
orders, licence numbers, prices and end users withheld; operators see the anomalies
about their own company; auditors, regulators and admins see everything. The rules are
evaluated over the anomalies read model when it is read, with the thresholds of this
deployment (`GET /v1/anomalies/rules`; `LODESTONE_ANOMALY_THRESHOLDS` overrides them).

The rules and their exact definitions:

""" + anomalies.rules_description()


@router.get(
    "",
    summary="Anomalies found in the ledger",
    response_model=AnomalyPage,
    responses=READ_ERRORS,
    description=LIST_DESCRIPTION,
)
def list_anomalies(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    rule: Annotated[str | None, Query(description="A rule id")] = None,
    severity: Annotated[str | None, Query(description="critical, warning or info")] = None,
    status: Annotated[str | None, Query(description="open, acknowledged or dismissed")] = None,
    actor: Annotated[
        str | None, Query(max_length=64, description="A company's code, or its pseudonym")
    ] = None,
    element: Annotated[str | None, Query(max_length=3, description="An element symbol")] = None,
    country: Annotated[
        str | None, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    ] = None,
    batch: Annotated[
        str | None,
        Query(max_length=200, description="ACTOR/LOT: the anomalies about it"),
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=anomalies.MAX_LIMIT)] = 100,
) -> AnomalyPage:
    return anomalies.list_anomalies(
        runtime.anomalies,
        principal,
        rule=rule,
        severity=severity,
        status=status,
        actor=actor,
        element=element,
        country=country,
        batch=batch,
        offset=offset,
        limit=limit,
    )


@router.get(
    "/rules",
    summary="The anomaly rules, their definitions and thresholds",
    response_model=AnomalyRules,
    responses=READ_ERRORS,
)
def list_rules(runtime: RuntimeDep, principal: PrincipalDep) -> AnomalyRules:
    """Each rule's exact definition and the thresholds it reads, as configured here."""
    return anomalies.rules(runtime.anomalies)


@router.get(
    "/{anomaly_id}",
    summary="An anomaly with its evidence and reviews",
    response_model=AnomalyDetail,
    responses=READ_ERRORS,
)
def get_anomaly(anomaly_id: UUID, runtime: RuntimeDep, principal: PrincipalDep) -> AnomalyDetail:
    """The evidence: the events (with their store positions and CloudEvents ids), the
    batches and licences concerned and the figures the rule compared; and every review,
    oldest first. Parts the caller may not see are redacted as in the list."""
    return anomalies.anomaly_detail(runtime.anomalies, anomaly_id, principal, runtime.rows)


@router.post(
    "/{anomaly_id}/review",
    status_code=201,
    summary="Acknowledge, dismiss or reopen an anomaly",
    responses={201: {"model": Recorded, "description": "Recorded"}, **WRITE_ERRORS},
)
def review_anomaly(
    anomaly_id: UUID,
    body: AnomalyReviewCreate,
    write: WriteDep,
    principal: Reviewer,
    runtime: RuntimeDep,
) -> JSONResponse:
    """Recorded in the ledger as an event with who decided and the note saying why;
    the anomaly's status follows. Analysts, regulators and admins may. Refused: an
    anomaly that is not known (404), a status other than acknowledged, dismissed or
    open, the status it already has (409), an empty or over-long note."""
    found = anomalies.reviewable(runtime.anomalies, anomaly_id, principal)
    command = c.ReviewAnomaly(
        anomaly_id=str(anomaly_id), rule=found.rule, status=body.status, note=body.note
    )
    return write.submit(principal, body, [command])
