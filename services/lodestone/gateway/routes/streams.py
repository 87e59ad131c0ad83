"""Live subscriptions: Server-Sent Events of each read model's changes (sse-starlette).

A live stream is served by its read model's shared reader (``gateway.fanout``): one
thread per read model reads each page of the change log once and queues it, redacted
once per audience, to every live stream of that model. A stream that starts behind the
reader (a reconnect with an older ``Last-Event-ID``) first reads the log itself, page by
page, then joins. A stream whose bounded queue would overflow is sent a ``resume`` event
and ends (the client reconnects with the last id it saw and misses nothing); a vanished
one is dropped after ``SEND_TIMEOUT`` seconds of a send not going through. None of them
touches the projector, which only ever appends to the log. A finite stream (``until``)
reads the log itself throughout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from sse_starlette import EventSourceResponse

from lodestone.gateway import metrics
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.fanout import read_alone, resume_notice
from lodestone.gateway.problems import READ_ERRORS
from lodestone.reads import streams

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
            "description": "The table the row is of; `reset`: re-read the model, then "
            "resume from this id; `resume` (the stream then ends): this subscriber fell "
            "too far behind, reconnect with `Last-Event-ID` set to this id. An event with "
            "an id and no data only moves the id on.",
        },
        "data": {
            "type": "object",
            "description": "JSON: `key` (the row key), `row` (the row as the caller may "
            "see it), `recorded_at`; for `reset` and `resume`, `reason` and `action`",
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
    A subscriber that falls more than `LODESTONE_STREAM_QUEUE` changes behind (it does
    not read what it is sent) is not waited for: it is sent a `resume` event with the
    last id it was sent and the stream ends; reconnecting with that id misses nothing.
    Heartbeats (comment lines) are sent every `LODESTONE_STREAM_PING` seconds. With
    `until`, the stream ends once it has gone past that id."""
    subscription = streams.subscribe(projection, principal, request.query_params.multi_items())
    source = await anyio.to_thread.run_sync(runtime.change_source, projection)
    settings = runtime.settings
    start = last_event_id if last_event_id is not None else after

    async def finite(cursor: int, until: int) -> AsyncIterator[bytes]:
        while cursor < until:
            sent, cursor, at_end = await anyio.to_thread.run_sync(
                read_alone, subscription, source, cursor, settings.stream_page
            )
            for delivery, body in sent:
                if delivery.id > until and delivery.event != "reset":
                    return
                yield body
            if at_end:
                await anyio.sleep(settings.stream_poll_interval)

    async def live(cursor: int, at_end: bool) -> AsyncIterator[bytes]:
        fanout = await anyio.to_thread.run_sync(runtime.fanout, projection)
        # Behind the end of the log or the shared reader: catch up reading it alone.
        while not at_end or (inbox := fanout.join(subscription, cursor)) is None:
            sent, cursor, at_end = await anyio.to_thread.run_sync(
                read_alone, subscription, source, cursor, settings.stream_page
            )
            if sent:
                yield b"".join(body for _, body in sent)
            elif at_end:
                await anyio.sleep(settings.stream_poll_interval)
        try:
            while True:
                batches, behind = await inbox.take()
                for batch in batches:
                    yield batch.body
                if behind:
                    yield resume_notice(inbox.delivered, inbox.bound)
                    return
        finally:
            fanout.leave(inbox)

    async def events() -> AsyncIterator[bytes]:
        cursor = await anyio.to_thread.run_sync(subscription.start, source, start)
        body = finite(cursor, until) if until is not None else live(cursor, start is None)
        async for chunk in body:
            yield chunk

    return EventStream(
        metrics.subscribed(projection, events()),
        ping=settings.stream_ping,
        send_timeout=SEND_TIMEOUT,
    )
