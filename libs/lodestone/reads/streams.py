"""Live subscriptions to the read models: each projection's change log, as a caller
may see it, filtered, resumable.

A change reaches a caller through its projection's presenter, registered here
(``PRESENTERS``: projection name -> ``Presenter``): ``present(change, principal)``
returns what that caller may see of the row, or None (not for this caller), with the
same redaction as the projection's endpoints. A projection with no presenter streams
its rows as stored, to auditors, regulators and admins only.

Resuming: a subscription goes on after the sequence number its caller last saw
(``Last-Event-ID``). If the log no longer holds the changes after it (trimmed by
retention, or the model was reset or rebuilt since), the caller is told to re-read the
model (a ``reset`` delivery) instead of silently missing them, and goes on from there.
Memory: each read is one page of the log; nothing is kept between reads but the cursor.

Audiences: what a presenter shows depends on the caller only through its audience
(``Presenter.audience``: by default whether it sees every company's commercial details,
else its role and company), so a stream's shared reader redacts each change once per
audience, not once per subscriber (``lodestone.gateway.fanout``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from lodestone.domain.access import SEES_ALL_COMMERCIAL, Principal
from lodestone.domain.refusals import Forbidden, InvalidInput, NotFound
from lodestone.projections.changes import Change, Page
from lodestone.projections.registry import REGISTRY

Shown = dict[str, Any]
#: What a caller sees in place of a detail it may not see (as the endpoints show it).
REDACTED: Shown = {"redacted": True}
Present = Callable[[Change, Principal], Shown | None]

#: Query parameters of a stream that are not filters.
RESERVED = frozenset({"after", "until"})
#: Every stream can be filtered by the table a change is of (its SSE event name).
TABLE = "table"


def commercial_audience(principal: Principal) -> Hashable:
    """The redaction class of a caller for presenters that decide by
    ``Principal.sees_commercial`` and ``principal.actor``: everyone who sees every
    company's commercial details is one audience; any other caller is one with every
    caller of its role and company."""
    if principal.role in SEES_ALL_COMMERCIAL:
        return ("sees-all-commercial",)
    return (principal.role.value, principal.actor)


@dataclass(frozen=True)
class Presenter:
    """What a caller may see of a projection's changes, and the fields of what it shows
    that a stream can be filtered on. ``audience`` must be such that ``present(change,
    p) == present(change, q)`` whenever ``audience(p) == audience(q)``: callers of one
    audience share one redaction of each change."""

    present: Present
    filters: frozenset[str]
    audience: Callable[[Principal], Hashable] = commercial_audience


class ChangeSource(Protocol):
    def changes(self, after: int, limit: int) -> Page: ...


@dataclass(frozen=True)
class Delivery:
    """One SSE event: ``id`` the sequence number; ``event`` the table, ``reset`` (re-read
    the model, then go on from this id), or None (no event: only the id moves on, past
    changes this caller does not get)."""

    id: int
    event: str | None
    data: Shown | None


RESET_EVENT = "reset"


def _reset(id: int, why: str) -> Delivery:
    return Delivery(
        id, RESET_EVENT, {"reason": why, "action": "re-read the model, then resume from this id"}
    )


@dataclass(frozen=True)
class Subscription:
    projection: str
    principal: Principal
    present: Present
    filters: Mapping[str, frozenset[str]]
    audience: Hashable = None  # the caller's redaction class (see ``Presenter``)

    @property
    def key(self) -> Hashable:
        """Subscriptions of one key are sent the same events: the same audience, the
        same filters."""
        return (self.audience, frozenset(self.filters.items()))

    def start(self, source: ChangeSource, after: int | None) -> int:
        """The cursor to go on from: ``after`` (the last id the caller saw), or the log's
        last sequence number (from now on)."""
        if after is not None:
            return after
        return source.changes(0, 0).last

    def next(self, source: ChangeSource, cursor: int, limit: int) -> tuple[list[Delivery], int]:
        """The deliveries of the next page after ``cursor``, and the new cursor."""
        return self.of_page(source.changes(cursor, limit), cursor)

    def of_page(self, page: Page, cursor: int) -> tuple[list[Delivery], int]:
        """The deliveries of ``page`` (read after ``cursor``), and the new cursor."""
        return deliveries(page, cursor, lambda c: self.present(c, self.principal), self.filters)


def deliveries(
    page: Page,
    cursor: int,
    show: Callable[[Change], Shown | None],
    filters: Mapping[str, frozenset[str]],
) -> tuple[list[Delivery], int]:
    """What a reader who has seen up to ``cursor`` is sent of ``page`` (read after
    ``cursor``), each change shown by ``show`` and kept if it passes ``filters``, and the
    reader's new cursor."""
    if page.missed(cursor):
        if cursor > page.last:
            return [_reset(page.last, "this id is not of this log (made anew)")], page.last
        return [_reset(page.floor, "changes after this id are no longer kept")], page.floor
    found: list[Delivery] = []
    for change in page.changes:
        if change.is_reset:
            found.append(_reset(change.seq, "the model was rebuilt or reset"))
            continue
        shown = show(change)
        if shown is None or not _matches(change.table, shown, filters):
            continue
        data = {"key": change.key, "row": shown, "recorded_at": change.recorded_at}
        found.append(Delivery(change.seq, change.table, data))
    if not page.changes:
        return found, cursor
    last = page.changes[-1].seq
    if not found or found[-1].id != last:
        found.append(Delivery(last, None, None))  # the id moves past the skipped
    return found, last


def subscribe(
    projection: str, principal: Principal, query: Iterable[tuple[str, str]]
) -> Subscription:
    """A subscription to ``projection`` for ``principal`` with the filters in ``query``
    (field=value pairs; a field given twice matches either value). Refused: an unknown
    projection, a caller the projection does not stream to, a field it cannot filter."""
    if projection not in REGISTRY.names():
        raise NotFound("", "exists", f"no read model {projection!r}; there are: {REGISTRY.names()}")
    presenter = PRESENTERS.get(projection)
    if presenter is None:
        if principal.role not in SEES_ALL_COMMERCIAL:
            raise Forbidden(
                "projection",
                "role",
                f"the {projection} stream is for auditors, regulators and admins",
            )
        presenter = _raw(projection)
    filters: dict[str, set[str]] = {}
    for name, value in query:
        if name in RESERVED:
            continue
        if name != TABLE and name not in presenter.filters:
            allowed = ", ".join(sorted(presenter.filters | {TABLE}))
            raise InvalidInput(
                name, "filter", f"the {projection} stream has no field {name!r}; it has: {allowed}"
            )
        filters.setdefault(name, set()).add(value)
    return Subscription(
        projection,
        principal,
        presenter.present,
        {name: frozenset(values) for name, values in filters.items()},
        presenter.audience(principal),
    )


def _matches(table: str, shown: Shown, filters: Mapping[str, frozenset[str]]) -> bool:
    for name, wanted in filters.items():
        if name == TABLE:
            if table not in wanted:
                return False
            continue
        value = shown.get(name)
        if isinstance(value, dict):
            found = set(value)
        elif isinstance(value, list | tuple):
            found = {str(v) for v in value}
        else:
            found = {str(value)} if value is not None else set()
        if not found & wanted:
            return False
    return True


def _raw(projection: str) -> Presenter:
    columns = {c.name for table in REGISTRY[projection].layout.tables for c in table.columns}
    return Presenter(lambda change, principal: change.row, frozenset(columns))


# --- the genealogy --------------------------------------------------------------------
#
# The same rules as ``reads.batches``: lot references, facilities and custodians name
# companies and are shown to the batch's parties (here: who reported it and who holds
# it), auditors, regulators and admins; trades' parties, contracts and prices to the
# trade's parties and the same roles; material, masses, composition, status, origins,
# edges and destination countries to everyone. The names directory (actors, facilities,
# licences but mining quotas) is shown only to whom may see every company, and to each
# operator its own company.


def _genealogy(change: Change, principal: Principal) -> Shown | None:
    row = change.row
    present = _GENEALOGY.get(change.table)
    return present(row, principal) if present else None


def _batch(row: Shown, principal: Principal) -> Shown:
    parties = (row["reporter_id"], row["custodian_id"])
    sees = principal.sees_commercial(*(_id(p) for p in parties))
    composition = row["composition"] or {}
    shown: Shown = {
        "id": row["id"],
        "version": row["version"],
        "batch": row["reference"] if sees else None,
        "material": row["material"],
        "status": row["status"],
        "initial_kg": row["initial_kg"],
        "remaining_kg": row["remaining_kg"],
        "composition": composition,
        "element": sorted(composition),
        "facility": {"id": row["facility_id"]} if sees else REDACTED,
        "custodian": {"id": row["custodian_id"]} if sees else REDACTED,
        "country": row["origin_country"],
        "created_at": row["created_at"],
    }
    if row["origin_kind"]:
        shown["origin"] = {
            "kind": row["origin_kind"],
            "facility_id": row["origin_facility_id"],
            "licence_id": row["origin_licence_id"],
            "country": row["origin_country"],
        }
    if row.get("corrections"):
        shown["corrections"] = row["corrections"]
    if sees:
        shown["actor"] = sorted({p for p in parties if p})
    return shown


def _edge(row: Shown, principal: Principal) -> Shown:
    return {
        "from": row["parent_id"],
        "to": row["child_id"],
        "kg": row["kg"],
        "operation": row["operation"],
        "operation_id": row["operation_id"],
    }


def _trade(row: Shown, principal: Principal) -> Shown:
    parties = (row["from_id"], row["to_id"])
    sees = principal.sees_commercial(*(_id(p) for p in parties))

    def party(id: str | None) -> Shown | None:
        if id is None:
            return None
        return {"id": id} if sees else REDACTED

    shown: Shown = {
        "batch_id": row["batch_id"],
        "version": row["version"],
        "kind": row["kind"],
        "kg": row["kg"],
        "occurred_at": row["occurred_at"],
        "country": row["destination_country"] or None,
        "from": party(row["from_id"]),
        "to": party(row["to_id"]),
        "contract": row["contract"] if sees else REDACTED,
        "price": row["price"] if sees else REDACTED,
        "currency": row["currency"] if sees else REDACTED,
    }
    if sees:
        shown["actor"] = sorted({p for p in parties if p})
    return shown


def _name(row: Shown, principal: Principal) -> Shown | None:
    # A mining quota is provenance (its number is shown with every origin); other
    # licence numbers often spell their holder's code.
    public = row["kind"] == "licence" and row["name"] == "mining_quota"
    own = row["kind"] == "actor" and _id(row["id"]) == principal.actor
    if not (public or own or principal.role in SEES_ALL_COMMERCIAL):
        return None
    shown: Shown = {
        "id": row["id"],
        "kind": row["kind"],
        "code": row["code"],
        "name": row["name"],
        "country": row["country"] or None,
    }
    if row["kind"] == "actor":
        shown["actor"] = [row["id"]]
    return shown


def _id(text: str | None) -> UUID | None:
    return UUID(text) if text else None


_GENEALOGY: dict[str, Callable[[Shown, Principal], Shown | None]] = {
    "batches": _batch,
    "edges": _edge,
    "trades": _trade,
    "names": _name,
}

PRESENTERS: dict[str, Presenter] = {
    "genealogy": Presenter(
        _genealogy,
        frozenset({"actor", "element", "country", "material", "status", "kind", "operation"}),
    ),
}
