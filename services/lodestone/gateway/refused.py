"""Refused writes, recorded beside the read models so that licences and quotas can count
them (``projections.refusals``). A refusal is not an event: nothing of the refused
command reaches the ledger, and nothing of its body is kept here either.

``problems`` calls :func:`record` for every problem it answers; a refused write by an
authenticated caller is recorded with what the gateway derived itself: the rule and the
field path (segments that are not plain names are masked), the route's template, the
status, the caller's role and actor, and the licence or quota the refused command named
(noted by the write path: :func:`note`). Unauthenticated requests are nobody's attempt
and are not recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from starlette.datastructures import State
from starlette.requests import Request

from lodestone.domain import ids
from lodestone.domain.access import Principal
from lodestone.domain.refusals import Refusal
from lodestone.ledger import commands as c
from lodestone.projections.refusals import RefusedAttempt

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The field of each command that names a licence or quota.
LICENCE_FIELDS: dict[type[c.Command], str] = {
    c.ExtractOre: "quota",
    c.Transform: "quota",
    c.ExportShipment: "licence",
    c.IssueLicence: "number",
}

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,31}(\[\d{1,6}\])*$")
_RULE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_BULK = re.compile(r"^events\[(\d+)\]")


def note(state: State, commands: Sequence[c.Command], refusal: Refusal) -> None:
    """Remember on the request which licence or quota the refused command named."""
    state.refused_licence = named_licence(commands, refusal)


def named_licence(commands: Sequence[c.Command], refusal: Refusal) -> str | None:
    """The licence number the refused command names: the only command, or in a bulk
    submission the one the refusal's field points at (``events[3]...``)."""
    if len(commands) == 1:
        command = commands[0]
    else:
        found = _BULK.match(refusal.field)
        if found is None or int(found.group(1)) >= len(commands):
            return None
        command = commands[int(found.group(1))]
    field = next((f for kind, f in LICENCE_FIELDS.items() if isinstance(command, kind)), None)
    value = getattr(command, field, None) if field else None
    if not isinstance(value, str) or not ids.CODE.match(value):
        return None
    return value.upper()


def record(request: Request, status: int, rule: str, field: str) -> None:
    if request.method not in WRITES or status >= 500:
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    runtime: Any = getattr(request.app.state, "runtime", None)
    if principal is None or runtime is None:
        return
    route = request.scope.get("route")
    runtime.refusals.record(
        RefusedAttempt(
            id=uuid4(),
            recorded_at=datetime.now(UTC),
            method=request.method,
            route=str(getattr(route, "path", "")),
            status=status,
            rule=rule if _RULE.match(rule) else "other",
            field=safe_field(field),
            role=principal.role.value,
            actor_id=principal.actor,
            licence=getattr(request.state, "refused_licence", None),
        )
    )


def safe_field(field: str) -> str:
    """The field path with every segment that is not a plain name (a key the caller made
    up, say) masked as ``*``."""
    if not field:
        return ""
    return ".".join(s if _SEGMENT.match(s) else "*" for s in field.split("."))
