"""Reading the event store's notification log page by page, in position order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from eventsourcing.persistence import ApplicationRecorder, Notification


def pages(
    recorder: ApplicationRecorder, start: int, stop: int, size: int = 5_000
) -> Iterator[Sequence[Notification]]:
    """The stored events with positions in [start, stop], ``size`` at a time."""
    position = start
    while position <= stop:
        page = recorder.select_notifications(position, size, stop=stop)
        if not page:
            return
        yield page
        position = page[-1].id + 1
