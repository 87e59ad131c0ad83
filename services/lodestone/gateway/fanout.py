"""One shared reader per read model's change log: it reads each page once and fans it out
to the live streams of that read model in this process.

Why: a stream that reads the log itself costs a read, a parse and a redaction of every
change per subscriber; with hundreds of subscribers that starves the projector and the
write path of the GIL, and lagging worker threads hold their pages. Here:

- one thread per read model (:class:`Fanout`) reads committed pages of the change log
  (a reader connection of its own: it never waits on the projector, nor the projector
  on it) and, per page, redacts each change once per audience (the redaction classes of
  ``reads.streams``), filters once per (audience, filters) and encodes each SSE event
  once: subscribers of one key share one :class:`Batch` (the same bytes);
- each subscriber has a bounded :class:`Inbox`. The reader only appends to it, under
  a short lock, and wakes the subscriber's event loop: it never waits for a send;
- a subscriber that falls more than ``bound`` changes behind (its queue would go past
  the bound) is dropped from the fan-out at once, its queue emptied: it is sent a
  ``resume`` event carrying the last id it was sent, then its stream ends, and the
  client reconnects with ``Last-Event-ID`` (browsers do by themselves);
- a subscriber starting behind the reader's head (a reconnect with an older id) reads
  the log itself, page by page, until it has reached the end of the log and the
  reader's head, then joins
  (:meth:`Fanout.join` only admits a cursor at or past the head, checked under the
  lock the reader advances the head under, so no change is missed or sent twice).

Memory: one page and its encodings, and per subscriber at most ``bound`` changes'
worth of batches (shared between the subscribers of a key)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from sse_starlette import ServerSentEvent

from lodestone.projections.changes import Change, Page
from lodestone.reads.streams import ChangeSource, Delivery, Shown, Subscription, deliveries

log = logging.getLogger(__name__)

#: The event a subscriber is sent when it fell too far behind, before its stream ends.
RESUME_EVENT = "resume"


def encode(delivery: Delivery) -> bytes:
    """One delivery as its SSE event (sse-starlette's encoding)."""
    data = None
    if delivery.data is not None:
        data = json.dumps(delivery.data, separators=(",", ":"), ensure_ascii=False)
    return ServerSentEvent(data=data, event=delivery.event, id=str(delivery.id)).encode()


def resume_notice(last: int, bound: int) -> bytes:
    data = {
        "reason": f"this stream fell more than {bound} changes behind",
        "action": "reconnect with Last-Event-ID set to this id: nothing after it is lost",
    }
    return encode(Delivery(last, RESUME_EVENT, data))


@dataclass(frozen=True)
class Sent:
    """One encoded event of a batch."""

    id: int
    body: bytes


@dataclass(frozen=True)
class Batch:
    """What one page brings the subscribers of one key: its events, encoded once (and
    joined in the reader's thread, not on the subscribers' event loop), and the id the
    page takes them to."""

    events: tuple[Sent, ...]
    last: int
    body: bytes

    @classmethod
    def of(cls, events: tuple[Sent, ...], last: int) -> Batch:
        return cls(events, last, b"".join(e.body for e in events))

    def after(self, cursor: int) -> Batch:
        """The part of this batch a subscriber who has seen up to ``cursor`` lacks."""
        return Batch.of(tuple(e for e in self.events if e.id > cursor), max(self.last, cursor))


class Inbox:
    """A subscriber's bounded queue, filled by the reader's thread, emptied by the
    subscriber's event loop."""

    def __init__(
        self,
        subscription: Subscription,
        cursor: int,
        bound: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.subscription = subscription
        self.key = subscription.key
        self.cursor = cursor  # the last id queued (the reader's side)
        self.delivered = cursor  # the last id taken to be sent (the loop's side)
        self.bound = bound
        self.overflowed = False
        self._items: deque[Batch] = deque()
        self._queued = 0  # changes the queued batches cover
        self.peak = 0  # the most changes the queue ever covered (at most ``bound``)
        self._lock = threading.Lock()
        self._loop = loop
        self._ready = asyncio.Event()
        self._signalled = False

    @property
    def queued(self) -> int:
        """How many changes the queue now covers (at most ``bound``)."""
        with self._lock:
            return self._queued

    def offer(self, batch: Batch) -> bool:
        """Queue ``batch`` (the reader's thread); False when that would go past the
        bound: the queue is emptied and the subscriber is to be told to resume."""
        covered = max(0, batch.last - self.cursor)
        with self._lock:
            if self._queued + covered > self.bound:
                self.overflowed = True
                self._items.clear()
                self._queued = 0
            else:
                if batch.events:
                    self._items.append(batch)
                    self._queued += covered
                    self.peak = max(self.peak, self._queued)
                self.cursor = batch.last
            if self._signalled or not (self._items or self.overflowed):
                return not self.overflowed
            self._signalled = True
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the subscriber's event loop is closed: nobody listens
            self.overflowed = True
        return not self.overflowed

    def abandon(self) -> None:
        """Tell the subscriber to resume (the reader cannot serve it any more)."""
        with self._lock:
            self.overflowed = True
            self._items.clear()
            self._queued = 0
        # An event loop closed already has nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> tuple[list[Batch], bool]:
        """Every queued batch, waiting for one; and whether the subscriber fell behind
        (it is then to be told to resume from ``delivered``)."""
        while True:
            with self._lock:
                if self._items or self.overflowed:
                    items = list(self._items)
                    self._items.clear()
                    self._queued = 0
                    self._signalled = False
                    self._ready.clear()
                    if items:
                        self.delivered = items[-1].last
                    return items, self.overflowed
                self._signalled = False
                self._ready.clear()
            await self._ready.wait()


@dataclass
class _PageWork:
    """A page being fanned out: its redactions per audience and batches per key."""

    page: Page
    head: int
    shown: dict[Hashable, dict[int, Shown | None]] = field(default_factory=dict)
    encoded: dict[tuple[Hashable, int], bytes] = field(default_factory=dict)
    batches: dict[Hashable, Batch] = field(default_factory=dict)

    @property
    def anew(self) -> bool:
        """The log is not the one the head was of (made anew): everyone re-reads."""
        return self.head > self.page.last

    @property
    def last(self) -> int:
        """The id this page takes every reader to (whatever its audience and filters)."""
        if self.page.missed(self.head):
            return self.page.last if self.anew else self.page.floor
        return self.page.changes[-1].seq if self.page.changes else self.head

    def batch(self, subscription: Subscription) -> Batch:
        found = self.batches.get(subscription.key)
        if found is not None:
            return found
        audience = subscription.audience
        memo = self.shown.setdefault(audience, {})

        def show(change: Change) -> Shown | None:
            if change.seq not in memo:
                memo[change.seq] = subscription.present(change, subscription.principal)
            return memo[change.seq]

        found_deliveries, last = deliveries(self.page, self.head, show, subscription.filters)
        events = []
        for delivery in found_deliveries:
            if delivery.data is not None and delivery.event != "reset":
                at = (audience, delivery.id)
                body = self.encoded.get(at)
                if body is None:
                    body = self.encoded[at] = encode(delivery)
            else:
                body = encode(delivery)
            events.append(Sent(delivery.id, body))
        found = self.batches[subscription.key] = Batch.of(tuple(events), last)
        return found


class Fanout:
    """The shared reader of one read model's change log (one thread, started at once,
    idle while nobody subscribes)."""

    def __init__(
        self,
        name: str,
        source: ChangeSource,
        *,
        page: int,
        poll: float,
        bound: int,
    ) -> None:
        self.name = name
        self._source = source
        self._page = page
        self._poll = poll
        # A queue shorter than a page would overflow on every full page.
        self.bound = max(bound, page)
        self._lock = threading.Lock()
        self._inboxes: list[Inbox] = []
        self.head = 0  # the last id fanned out
        self._epoch = 0  # bumped when the head is set anew (a join into an idle reader)
        self.dropped = 0  # subscribers told to resume since the start
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-fanout", daemon=True)
        self._thread.start()

    # --- the subscribers' side (their event loop) --------------------------------------

    def join(self, subscription: Subscription, cursor: int) -> Inbox | None:
        """An inbox for a subscriber who has seen up to ``cursor``, or None while the
        reader is past it (the subscriber reads the log itself, then asks again). The
        subscriber has just read to the end of the log: a reader nobody follows starts
        again from there (from further back it would race through the pages the
        newcomer's queue cannot hold)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._inboxes:
                if cursor != self.head:
                    self.head = cursor
                    self._epoch += 1
            elif cursor < self.head:
                return None
            inbox = Inbox(subscription, cursor, self.bound, loop)
            self._inboxes.append(inbox)
        self._wake.set()
        return inbox

    def leave(self, inbox: Inbox) -> None:
        with self._lock:
            if inbox in self._inboxes:
                self._inboxes.remove(inbox)

    def subscribers(self) -> list[Inbox]:
        with self._lock:
            return list(self._inboxes)

    # --- the reader's thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                full = self._step()
            except Exception:
                # A failed read (the database restarting, say): every subscriber is told
                # to resume, and meets the error, if it lasts, on its own reconnect.
                log.exception("the %s change-log reader failed", self.name)
                with self._lock:
                    dropped, self._inboxes = self._inboxes, []
                    self.dropped += len(dropped)
                for inbox in dropped:
                    inbox.abandon()
                full = False
            if not full:
                self._wake.wait(self._poll)
                self._wake.clear()

    def _step(self) -> bool:
        """Fan out one page; True if it was full (read again at once)."""
        with self._lock:
            inboxes = list(self._inboxes)
            head, epoch = self.head, self._epoch
        if not inboxes:
            return False
        page = self._source.changes(head, self._page)
        if not page.changes and not page.missed(head):
            return False
        work = _PageWork(page, head)
        for inbox in inboxes:  # redacted and encoded outside the lock
            work.batch(inbox.subscription)
        with self._lock:
            if self._epoch != epoch:
                return False  # everyone left and a new head was set meanwhile: read anew
            for inbox in list(self._inboxes):
                batch = work.batch(inbox.subscription)
                if inbox.cursor > head and not work.anew:
                    batch = batch.after(inbox.cursor)  # it read the log itself past the head
                if not inbox.offer(batch):
                    self._inboxes.remove(inbox)
                    self.dropped += 1
            self.head = work.last
        return len(page.changes) >= self._page

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)


def read_alone(
    subscription: Subscription, source: ChangeSource, cursor: int, limit: int
) -> tuple[list[tuple[Delivery, bytes]], int, bool]:
    """One page as a subscriber reading the log itself is sent it (a catch-up to the
    shared head, or a finite read): each delivery with its event, the new cursor, and
    whether that read reached the end of the log."""
    page = source.changes(cursor, limit)
    found, new = subscription.of_page(page, cursor)
    at_end = len(page.changes) < limit and not page.missed(cursor)
    return [(d, encode(d)) for d in found], new, at_end
