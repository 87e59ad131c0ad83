"""Actors, facilities, licences and the caller itself, as a caller may see them."""

from __future__ import annotations

from typing import Any, cast

from lodestone.domain.access import Principal
from lodestone.ledger import Ledger
from lodestone.reads.batches import REDACTED
from lodestone.reads.json import plain
from lodestone.reads.types import ActorView, FacilityView, LicenceView, Me


def me(ledger: Ledger, principal: Principal) -> Me:
    actor = ledger.actor(principal.actor) if principal.actor else None
    return {
        "id": principal.id,
        "role": principal.role.value,
        "actor": actor.code if actor else None,
    }


def actor(ledger: Ledger, code: str) -> ActorView:
    found = ledger.actor_by_code(code)
    return cast(
        ActorView,
        plain(
            {
                "id": found.id,
                "code": found.code,
                "name": found.name,
                "country": found.country,
                "roles": found.roles,
            }
        ),
    )


def facility(ledger: Ledger, code: str) -> FacilityView:
    found = ledger.facility_by_code(code)
    owner = ledger.actor(found.owner_id)
    return cast(
        FacilityView,
        plain(
            {
                "id": found.id,
                "code": found.code,
                "name": found.name,
                "kind": found.kind.value,
                "owner": owner.code,
                "country": found.country,
                "location": found.location,
            }
        ),
    )


def licence(ledger: Ledger, number: str, principal: Principal) -> LicenceView:
    """Consignee, end user and contract are commercial details: shown to the holder, the
    consignee, auditors, regulators and admins only."""
    found = ledger.licence_by_number(number)
    holder = ledger.actor(found.holder_id)
    sees = principal.sees_commercial(found.holder_id, found.consignee_id)
    consignee = ledger.actor(found.consignee_id).code if found.consignee_id else None
    # A quota's holder is a mine or separator, shown as provenance is; an export
    # licence's holder is an exporter trading with its consignee: parties only.
    export = found.kind.value == "export_licence"
    body: dict[str, Any] = {
        "id": found.id,
        "number": found.number,
        "kind": found.kind.value,
        "holder": holder.code if sees or not export else REDACTED,
        "unit": "kg REO" if found.kind.value.endswith("quota") else "kg",
        "max_kg": found.max_kg,
        "drawn_kg": found.drawn_kg,
        "remaining_kg": found.remaining_kg,
        "draws": found.draws,
        "valid_from": found.valid_from,
        "valid_until": found.valid_until,
    }
    if export:
        body |= {
            "items": found.items,
            "destination_country": found.destination_country,
            "consignee": consignee if sees else REDACTED,
            "end_user": found.end_user if sees else REDACTED,
            "end_use": found.end_use if sees else REDACTED,
            "contract": found.contract if sees else REDACTED,
        }
    return cast(LicenceView, plain(body))
