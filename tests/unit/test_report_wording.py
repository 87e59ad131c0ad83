"""The report's sentences: every event type a batch's timeline can show has one."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import cast
from uuid import uuid4

from eventsourcing.domain import DomainEvent

from lodestone.audit.report.context import Context
from lodestone.audit.report.wording import SENTENCES, summary
from lodestone.domain.batches import Batch
from lodestone.reads.history import Entry

#: The batch's event classes that are never stored as themselves, only their subclasses.
BASES = {"Event", "Created", "Step", "Snapshot"}


def test_every_batch_event_type_has_a_sentence() -> None:
    stored = {
        event.__qualname__
        for name, event in vars(Batch).items()
        if inspect.isclass(event) and issubclass(event, DomainEvent) and name not in BASES
    }

    assert stored == set(SENTENCES)


def test_an_event_type_without_a_sentence_is_shown_by_its_name() -> None:
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    entry = Entry(
        1, uuid4(), 1, "Transformation.BatchTransformed", moment, moment, None, None, None, True
    )
    nothing_to_name = cast(Context, None)  # the sentence names nothing: no context is read

    assert summary(nothing_to_name, entry) == "BatchTransformed"
