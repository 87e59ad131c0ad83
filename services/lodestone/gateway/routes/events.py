"""Supply-chain events: one endpoint per kind of event (the table is
``schemas.events.EVENT_PATHS``), a correction endpoint and a bulk endpoint.

No ``from __future__ import annotations`` here: the endpoints are made in a loop and
FastAPI reads each one's body model from its real annotation.
"""

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal
from lodestone.gateway.body import ExactJSONRoute
from lodestone.gateway.problems import WRITE_ERRORS
from lodestone.gateway.schemas import events as s
from lodestone.gateway.schemas.answers import BulkRecorded, Recorded
from lodestone.gateway.writes import WriteDep, submitters

router = APIRouter(
    prefix="/v1/events", tags=["events"], responses=WRITE_ERRORS, route_class=ExactJSONRoute
)

Corrector = Annotated[Principal, submitters(s.Correction.command)]
BulkReporter = Annotated[Principal, submitters(*(kind.command for kind in s.EVENT_PATHS.values()))]


def _endpoint(kind: type[s.EventIn]) -> Any:
    def endpoint(
        body: kind,  # type: ignore[valid-type]
        write: WriteDep,
        principal: Annotated[Principal, submitters(kind.command)],
    ) -> JSONResponse:
        event: s.EventIn = body
        return write.submit(principal, event, [event.to_command()])

    endpoint.__name__ = f"submit_{kind.path.replace('-', '_')}"
    return endpoint


for _kind in s.EVENT_PATHS.values():
    router.add_api_route(
        f"/{_kind.path}",
        _endpoint(_kind),
        methods=["POST"],
        status_code=201,
        summary=f"Report {_kind.__name__}",
        description=_kind.description,
        responses={
            201: {
                "model": Recorded,
                "description": "Recorded; the answer names the batches made or changed",
            }
        },
    )


@router.post(
    "/corrections",
    status_code=201,
    summary="Correct an earlier event of a batch",
    responses={
        201: {
            "model": Recorded,
            "description": "Recorded as a new event; the corrected one stays in the history",
        }
    },
)
def submit_correction(body: s.Correction, write: WriteDep, principal: Corrector) -> JSONResponse:
    """Only the actor that reported the event, a regulator or an admin may correct it,
    and a correction that would break an invariant (mass available, custody and place,
    chronology, quota) at any point of the corrected history is refused. Every view then
    shows the corrected facts and marks that a correction happened; the history shows
    both events."""
    return write.submit(principal, body, [body.to_command()])


@router.post(
    "/bulk",
    status_code=201,
    summary="Report many events at once",
    responses={201: {"model": BulkRecorded, "description": "Every event recorded"}},
)
def submit_bulk(body: s.BulkIn, write: WriteDep, principal: BulkReporter) -> JSONResponse:
    """Up to 10,000 events of any type, applied in order and stored whole or not at all
    in one transaction; a refusal names the event (``events[17].inputs[0].mass_kg``).
    Later events may refer to batches made by earlier ones."""
    return write.submit(principal, body, [e.to_command() for e in body.events], bulk=True)
