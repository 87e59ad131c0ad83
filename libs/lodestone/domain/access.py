"""Who may do what: roles, principals and the credentials that identify them.

API keys are never stored: a credential aggregate's id is derived from the SHA-256 of
the key, so looking a key up is one read and a leaked event store reveals no key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.recording import LedgerAggregate
from lodestone.domain.refusals import Forbidden
from lodestone.domain.snapshots import TypedSnapshot


class Role(StrEnum):
    OPERATOR = "operator"  # a supply-chain company reporting its own steps
    AUDITOR = "auditor"
    ANALYST = "analyst"
    REGULATOR = "regulator"
    ADMIN = "admin"


#: Roles that see client names, contract references and prices of every trade.
SEES_ALL_COMMERCIAL = frozenset({Role.AUDITOR, Role.REGULATOR, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``actor`` is set for operators (the company they act for)."""

    id: str
    role: Role
    actor: UUID | None = None
    label: str = ""

    def require(self, *roles: Role, field: str = "") -> None:
        if self.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Forbidden(
                field, "role", f"role {self.role.value} may not do this ({allowed} may)"
            )

    def acts_for(self, actor: UUID, field: str, what: str) -> None:
        """Operators act only for their own company; admins may act for anyone."""
        if self.role is Role.ADMIN:
            return
        self.require(Role.OPERATOR, field=field)
        if self.actor != actor:
            raise Forbidden(field, "ownership", f"{what} belongs to another actor")

    def sees_commercial(self, *parties: UUID | None) -> bool:
        """Client names and contract details: the parties, auditors, regulators, admins."""
        return self.role in SEES_ALL_COMMERCIAL or (
            self.actor is not None and self.actor in parties
        )


class Credential(LedgerAggregate):
    """An API key's grant: its role and, for operators, the actor it speaks for."""

    Snapshot = TypedSnapshot
    ENUM_FIELDS = {"role": Role}

    class Issued(Aggregate.Created):
        role: str
        actor_id: UUID | None
        label: str
        issued_by: str

        def apply(self, credential: Credential) -> None:
            credential.role = Role(self.role)
            credential.actor_id = self.actor_id
            credential.label = self.label
            credential.revoked = False

    class Revoked(Aggregate.Event):
        revoked_by: str
        reason: str

        def apply(self, credential: Credential) -> None:
            credential.revoked = True

    class ExpirySet(Aggregate.Event):
        """From ``expires_at`` on the key is refused: issued to expire, or rotated (a
        successor issued, this key valid for a grace period). A new event type, so the
        events stored before it need no upcasting."""

        expires_at: datetime
        set_by: str
        successor_id: UUID | None  # the credential that replaces it, when rotated

        def apply(self, credential: Credential) -> None:
            credential.expires_at = self.expires_at
            credential.successor_id = self.successor_id

    role: Role
    actor_id: UUID | None
    label: str
    revoked: bool
    # Class-level defaults: a credential stored before expiry existed loads without it.
    expires_at: datetime | None = None
    successor_id: UUID | None = None

    def __init__(self) -> None:
        pass

    @classmethod
    def issue(
        cls, id: UUID, role: Role, actor_id: UUID | None, label: str, issued_by: str
    ) -> Credential:
        return cls._create(
            cls.Issued,
            id=id,
            role=role.value,
            actor_id=actor_id,
            label=label,
            issued_by=issued_by,
        )

    def revoke(self, revoked_by: str, reason: str) -> None:
        self.trigger_event(self.Revoked, revoked_by=revoked_by, reason=reason)

    def expire(self, at: datetime, set_by: str, successor_id: UUID | None = None) -> None:
        self.trigger_event(self.ExpirySet, expires_at=at, set_by=set_by, successor_id=successor_id)

    def valid_at(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def principal(self) -> Principal:
        return Principal(id=str(self.id), role=self.role, actor=self.actor_id, label=self.label)
