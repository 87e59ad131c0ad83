"""A batch's genealogy drawn as a picture, for the page and for anyone who reads traces:
SVG drawn by Graphviz from the same trace answers as ``/upstream`` and ``/downstream``,
so it shows the caller exactly what those answers show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from lodestone.audit.report import traces
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import MEDIA_TYPE, READ_ERRORS, Problem, problem
from lodestone.reads import batches

SVG = "image/svg+xml"
#: Said beside the drawing: how a large genealogy was grouped into boxes.
NOTE_HEADER = "Lodestone-Graph-Note"

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=READ_ERRORS)

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"The drawing; a large genealogy's grouping is said in `{NOTE_HEADER}`",
        "content": {SVG: {"schema": {"type": "string"}}},
    },
    503: {
        "description": "Graphviz (dot) is not installed on the server",
        "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    },
}


@router.get(
    "/{actor}/{lot}/graph.svg",
    summary="The genealogy drawn from the mines to the end clients (SVG)",
    response_class=Response,
    responses=_ANSWERS,
)
def genealogy_graph(actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """The batch's ancestors back to the mines and its descendants to the end clients,
    drawn by Graphviz: mass taken on each edge, origins (mine, country, quota) on the
    left, sales and exports to clients on the right. Lot references, holders and
    clients the caller may not see are drawn as "not shown", exactly as the traces
    redact them. Beyond 60 batches, batches of one side, material and holder are drawn
    as one box (the header says so)."""
    up = batches.trace(runtime.ledger, runtime.fresh_view, actor, lot, principal, "upstream")
    down = batches.trace(runtime.ledger, runtime.fresh_view, actor, lot, principal, "downstream")
    graph = traces.draw(up, down)
    if graph.svg is None:
        return problem(503, "Not available", graph.note or "not drawn", "renderer")
    headers = {"Cache-Control": "no-store"}
    if graph.note:
        headers[NOTE_HEADER] = graph.note
    return Response(graph.svg, media_type=SVG, headers=headers)
