"""Record time: when the ledger stores an event, as the ledger's clock tells it.

The library stamps each event with the wall clock at the moment the event object is
made. The ledger decides instead: it runs each command inside :func:`recording_at` with
its own "now", so every event the command records carries that one instant (the events
of one transaction share their record time) and a ledger run on another clock records
at that clock's times: a test on a fixed clock, or the demo loader replaying a chain at
the times its steps were reported. Outside any command (an aggregate made by hand in a
test) the library's wall clock applies, as before.

Every aggregate of the ledger derives from :class:`LedgerAggregate`, whose events (and
whose subclasses' events: the library bases each aggregate's ``Event`` on its parent's)
take their timestamp from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import eventsourcing.domain
from eventsourcing.domain import Aggregate

_RECORD_TIME: ContextVar[datetime | None] = ContextVar("lodestone.record_time", default=None)


@contextmanager
def recording_at(when: datetime) -> Iterator[None]:
    """Events made in this context (this thread or task only) are recorded at ``when``."""
    token = _RECORD_TIME.set(when)
    try:
        yield
    finally:
        _RECORD_TIME.reset(token)


def record_time() -> datetime:
    """The record time of an event made now."""
    when = _RECORD_TIME.get()
    if when is not None:
        return when
    # Looked up at call time, so that a test fixing the library's clock still does.
    return eventsourcing.domain.datetime_now_with_tzinfo()


class LedgerAggregate(Aggregate):
    """An aggregate whose events are stamped with the ledger's record time."""

    class Event(Aggregate.Event):
        create_timestamp = staticmethod(record_time)
