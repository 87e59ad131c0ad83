"""GS1 EPCIS 2.0: a batch's history as one EPCISDocument (JSON-LD), and the JSON-LD
context of Lodestone's rare-earth extension. Any authenticated role may export;
commercial details are redacted exactly as the batch and trace answers redact them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from lodestone.epcis import export
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS

router = APIRouter(tags=["epcis"], responses=READ_ERRORS)
#: The context is public, like the page's files: a JSON-LD processor that reads an
#: exported document fetches it without a key (it holds vocabulary, no data).
contexts = APIRouter(include_in_schema=False)

_EPCIS_DOCUMENT = {
    "type": "object",
    "description": "Valid against the official EPCIS 2.0 JSON schema",
    "properties": {
        "@context": {"type": "array", "items": {}},
        "type": {"type": "string", "enum": ["EPCISDocument"]},
        "schemaVersion": {"type": "string"},
        "creationDate": {"type": "string", "format": "date-time"},
        "epcisBody": {
            "type": "object",
            "properties": {"eventList": {"type": "array", "items": {"type": "object"}}},
        },
    },
}
_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {export.MEDIA_TYPE: {"schema": _EPCIS_DOCUMENT}},
        "description": "An EPCISDocument (EPCIS 2.0 JSON-LD)",
    }
}


@router.get(
    "/v1/batches/{actor}/{lot}/epcis",
    summary="A batch's history as a GS1 EPCIS 2.0 document",
    response_class=Response,
    responses=_DOCUMENT,
)
def batch_epcis(
    actor: str,
    lot: str,
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    lineage: Annotated[
        Literal["none", "upstream", "downstream"],
        Query(description="Also the events of every batch upstream or downstream"),
    ] = "none",
) -> Response:
    """Every event of the batch (and of its lineage) in store order as EPCIS events:
    extraction as commissioning ObjectEvents, processing as TransformationEvents with
    input and output quantities in KGM and the composition in ``ilmd``, sales as
    TransactionEvents, exports as shipping and receipts as receiving ObjectEvents,
    corrections as error declarations. ``eventTime`` is when a step happened,
    ``recordTime`` when the ledger stored it, ``eventID`` its CBV 2.0 event hash.
    Rare-earth fields use the ``re:`` extension (``urn:lodestone:epcis:re:``)."""
    document = export.document(
        runtime.ledger,
        runtime.rows,
        runtime.fresh_view,
        actor,
        lot,
        principal,
        lineage,
        context_url=str(request.url_for("rare_earth_context")),
        now=datetime.now(UTC),
    )
    return Response(export.dumps(document), media_type=export.MEDIA_TYPE)


@contexts.get(
    export.CONTEXT_PATH,
    summary="The JSON-LD context of the rare-earth EPCIS extension",
    response_class=Response,
    name="rare_earth_context",
)
def rare_earth_context() -> Response:
    """Terms of the ``re:`` namespace (``urn:lodestone:epcis:re:``): element
    composition (mass fractions), REO mass, quota and licence references, customs code,
    untraced inputs, shipment."""
    return Response(export.dumps(export.RARE_EARTH_CONTEXT), media_type=export.MEDIA_TYPE)
