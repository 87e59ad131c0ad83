"""Snapshots that keep enum-typed state.

A snapshot is the aggregate's ``__dict__`` as JSON; JSON turns a StrEnum into a plain
``str``, so an aggregate restored from a snapshot would compare ``"active" is not
Status.ACTIVE``. Each aggregate names its enum fields and they are restored here.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from eventsourcing.domain import Snapshot

from lodestone.domain.recording import record_time


class TypedSnapshot(Snapshot):
    # Taken in the same save as the events it follows: the same record time.
    create_timestamp = staticmethod(record_time)

    def mutate(self, _: None) -> Any:
        aggregate = super().mutate(_)
        fields: dict[str, type[Enum]] = getattr(type(aggregate), "ENUM_FIELDS", {})
        for name, enum in fields.items():
            value = aggregate.__dict__.get(name)
            if value is not None:
                aggregate.__dict__[name] = enum(value)
        return aggregate
