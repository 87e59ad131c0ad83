"""Live subscriptions: Server-Sent Events of each read model's changes (sse-starlette).

Each stream reads its projection's change log itself, one page at a time, in a worker
thread, and sends what it read before reading more: a slow subscriber only slows its
own stream (the send waits for its socket), a vanished one is dropped after
``SEND_TIMEOUT`` seconds of a send not going through, and neither holds more than one
page nor touches the projector, which only ever appends to the log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from lodestone.gateway import metrics
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS
from lodestone.reads import streams
from lodestone.reads.streams import Delivery

#: Seconds a send may wait for a subscriber's socket before the stream is dropped (the
#: subscriber reconnects with the last id it saw and misses nothing).
SEND_TIMEOUT = 30.0

router = APIRouter(prefix="/v1/streams", tags=["streams"], responses=READ_ERRORS)


class EventStream(EventSourceResponse):
    media_type = "text/event-stream"  # what the OpenAPI document names


_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One SSE event (the stream is text/event-stream; each event's fields).",
    "properties": {
        "id": {"type": "integer", "description": "The change's sequence number"},
        "event": {
            "type": "string",
            "description": "The table the row is of, or `reset`: re-read the model, then "
            "resume from this id. An event with an id and no data only moves the id on.",
        },
        "data": {
            "type": "object",
            "description": "JSON: `key` (the row key), `row` (the row as the caller may "
            "see it), `recorded_at`; for `reset`, `reason` and `action`",
            "properties": {
                "key": {"type": "string"},
                "row": {"type": "object"},
                "recorded_at": {"type": "string", "format": "date-time"},
            },
        },
    },
}


@router.get(
    "/{projection}",
    summary="Subscribe to a read model's changes (Server-Sent Events)",
    response_class=EventStream,
    responses={
        200: {
            "description": "An endless text/event-stream of changes, with heartbeats",
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
        }
    },
)
async def subscribe(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    projection: Annotated[str, Path(description="A read model's name, e.g. genealogy")],
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            description="Resume after this id (browsers send it when they reconnect)",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description="Resume after this id (0: every change kept); default: from now"),
    ] = None,
    until: Annotated[
        int | None,
        Query(
            ge=0,
            description="End the stream once it has gone past this id (a finite read, for "
            "tools); default: endless",
        ),
    ] = None,
) -> EventSourceResponse:
    """Every change of the read model's rows, as the caller may see them (the same
    redaction as its endpoints; a read model without a presenter streams only to
    auditors, regulators and admins), in order, each once.

    Filters: any other query parameter is a field of the rows shown (`actor`, `element`,
    `country`, ..., and `table` for every stream): a change passes if that field equals
    the value, or (a list or an object) holds it; a field given twice matches either
    value; an unknown field is refused (422, rule `filter`).

    Resuming: reconnect with `Last-Event-ID` (or `after`) set to the last id seen to
    receive every change after it and none twice. If the changes after that id are no
    longer kept (`LODESTONE_CHANGE_RETENTION`), or the model was rebuilt since, the
    stream first sends a `reset` event: re-read the model, then go on from its id.
    Heartbeats (comment lines) are sent every `LODESTONE_STREAM_PING` seconds. With
    `until`, the stream ends once it has gone past that id."""
    subscription = streams.subscribe(projection, principal, request.query_params.multi_items())
    source = await anyio.to_thread.run_sync(runtime.change_source, projection)
    settings = runtime.settings
    start = last_event_id if last_event_id is not None else after

    async def events() -> AsyncIterator[ServerSentEvent]:
        cursor = await anyio.to_thread.run_sync(subscription.start, source, start)
        while until is None or cursor < until:
            deliveries, cursor = await anyio.to_thread.run_sync(
                subscription.next, source, cursor, settings.stream_page
            )
            for delivery in deliveries:
                if until is not None and delivery.id > until and delivery.event != "reset":
                    return
                yield _event(delivery)
            if not deliveries:
                await anyio.sleep(settings.stream_poll_interval)

    return EventStream(
        metrics.subscribed(projection, events()),
        ping=settings.stream_ping,
        send_timeout=SEND_TIMEOUT,
    )


def _event(delivery: Delivery) -> ServerSentEvent:
    data = None
    if delivery.data is not None:
        data = json.dumps(delivery.data, separators=(",", ":"), ensure_ascii=False)
    return ServerSentEvent(data=data, event=delivery.event, id=str(delivery.id))
