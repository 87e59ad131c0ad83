"""Refusals: why a command was not carried out, naming the field and the rule broken.

Every refusal is raised before anything is stored. The gateway turns each kind into
an RFC 9457 problem (one module, ``lodestone.gateway.problems``); the domain only says
what went wrong.
"""

from __future__ import annotations


class Refusal(Exception):
    """A command was refused. ``field`` is a JSON-pointer-like path into the request."""

    kind = "refused"

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.rule = rule
        self.detail = detail

    def at(self, prefix: str) -> Refusal:
        """The same refusal with its field placed under ``prefix`` (e.g. ``events[3]``)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(field, self.rule, self.detail)


class InvalidInput(Refusal):
    """The request is well formed but a value breaks a rule of the domain (422)."""

    kind = "invalid"


class RuleBroken(Refusal):
    """A business invariant would break: mass balance, licence, quota, state (422)."""

    kind = "rule"


class NotFound(Refusal):
    """A referenced actor, facility, licence or batch does not exist (404 / 422)."""

    kind = "not-found"


class Forbidden(Refusal):
    """The principal may not do this: role, ownership or custody (403)."""

    kind = "forbidden"


class Conflict(Refusal):
    """The thing already exists, or changed under us (409)."""

    kind = "conflict"
