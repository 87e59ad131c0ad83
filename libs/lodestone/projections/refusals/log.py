"""What a refused attempt records, and the store it is recorded in.

Only values the gateway derived itself are kept: the rule and the field path of the
refusal, the route's template, the status, the caller's role and actor, and a licence
number when the refused command named one; never the request body or a detail text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from lodestone.projections.tables import Column, Index, Kind, Table


@dataclass(frozen=True)
class RefusedAttempt:
    id: UUID
    recorded_at: datetime
    method: str
    route: str  # the route's path template, e.g. /v1/events/shipment-exported
    status: int
    rule: str
    field: str
    role: str
    actor_id: UUID | None
    licence: str | None  # the licence or quota number the command named, upper case


TABLE = Table(
    "refused_attempts",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("recorded_at", Kind.TIME, not_null=True),
        Column("method", Kind.TEXT, not_null=True),
        Column("route", Kind.TEXT, not_null=True),
        Column("status", Kind.INT, not_null=True),
        Column("rule", Kind.TEXT, not_null=True),
        Column("field", Kind.TEXT, not_null=True),
        Column("role", Kind.TEXT, not_null=True),
        Column("actor_id", Kind.UUID),
        Column("licence", Kind.TEXT),
    ),
    key=("id",),
    row=RefusedAttempt,
    indexes=(Index("refused_attempts_by_licence", ("licence", "rule")),),
)

COUNTS = (
    f"SELECT licence, rule, COUNT(*) FROM {TABLE.name} "
    "WHERE licence IS NOT NULL GROUP BY licence, rule"
)


class RefusalLog(ABC):
    @abstractmethod
    def record(self, attempt: RefusedAttempt) -> None: ...

    @abstractmethod
    def counts(self, licences: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """Per licence number (all, or those given), how many refused attempts named it,
        per rule broken."""

    @abstractmethod
    def attempts(self) -> list[RefusedAttempt]:
        """Every refused attempt recorded, oldest first."""

    def close(self) -> None:
        return None


def grouped(
    rows: Iterable[tuple[str, str, int]], licences: Iterable[str] | None
) -> dict[str, dict[str, int]]:
    wanted = None if licences is None else set(licences)
    counts: dict[str, dict[str, int]] = {}
    for licence, rule, count in rows:
        if wanted is None or licence in wanted:
            counts.setdefault(licence, {})[rule] = int(count)
    return {k: dict(sorted(v.items())) for k, v in counts.items()}
