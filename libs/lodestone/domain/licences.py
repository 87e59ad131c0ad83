"""Licences: mining and separation quotas (kg REO) and export licences (kg of goods).

A quota is drawn by extracted ore (its REO content) or by separated oxide; an export
licence by shipments, each of which must match an item, the destination, the consignee
and the end user, inside the validity window and the remaining quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.recording import LedgerAggregate
from lodestone.domain.refusals import Forbidden, InvalidInput, RuleBroken
from lodestone.domain.snapshots import TypedSnapshot
from lodestone.domain.values import (
    CONTROLLED,
    CUSTOMS_HEADINGS,
    EXACT,
    TARIFF_CODE,
    ZERO,
    Material,
    mass,
    tariff_covers,
    tariff_digits,
)


class LicenceKind(StrEnum):
    MINING_QUOTA = "mining_quota"
    SEPARATION_QUOTA = "separation_quota"
    EXPORT_LICENCE = "export_licence"


QUOTAS = frozenset({LicenceKind.MINING_QUOTA, LicenceKind.SEPARATION_QUOTA})


#: A quota may be as large as a national cap (270,000 t REO in 2024) and more.
MAX_LICENCE_KG = Decimal("1000000000")  # 1 Mt


class Licence(LedgerAggregate):
    Snapshot = TypedSnapshot
    ENUM_FIELDS = {"kind": LicenceKind}

    class Issued(Aggregate.Created):
        number: str
        kind: str
        holder_id: UUID
        max_kg: Decimal
        valid_from: datetime
        valid_until: datetime
        items: list[dict[str, Any]]
        consignee_id: UUID | None
        end_user: str
        end_use: str
        destination_country: str
        contract: str
        reported_by: str
        occurred_at: datetime

        def apply(self, licence: Licence) -> None:
            licence.number = self.number
            licence.kind = LicenceKind(self.kind)
            licence.holder_id = self.holder_id
            licence.max_kg = self.max_kg
            licence.valid_from = self.valid_from
            licence.valid_until = self.valid_until
            licence.items = [dict(i) for i in self.items]
            licence.consignee_id = self.consignee_id
            licence.end_user = self.end_user
            licence.end_use = self.end_use
            licence.destination_country = self.destination_country
            licence.contract = self.contract
            licence.drawn_kg = ZERO
            licence.draws = 0

    class Drawn(Aggregate.Event):
        kg: Decimal
        batch_id: UUID
        cause: str  # extraction | separation | export
        reported_by: str
        occurred_at: datetime

        def apply(self, licence: Licence) -> None:
            licence.drawn_kg = EXACT.add(licence.drawn_kg, self.kg)
            licence.draws += 1

    class DrawCorrected(Aggregate.Event):
        """A draw changed by the correction of the batch that drew it (``kg`` may be
        negative: a batch whose extraction did not occur gives its REO back)."""

        kg: Decimal
        batch_id: UUID
        reported_by: str
        occurred_at: datetime

        def apply(self, licence: Licence) -> None:
            licence.drawn_kg = EXACT.add(licence.drawn_kg, self.kg)

    number: str
    kind: LicenceKind
    holder_id: UUID
    max_kg: Decimal
    valid_from: datetime
    valid_until: datetime
    items: list[dict[str, Any]]
    consignee_id: UUID | None
    end_user: str
    end_use: str
    destination_country: str
    contract: str
    drawn_kg: Decimal
    draws: int

    def __init__(self) -> None:
        pass

    @classmethod
    def issue(
        cls,
        id: UUID,
        number: str,
        kind: LicenceKind,
        holder_id: UUID,
        max_kg: object,
        valid_from: datetime,
        valid_until: datetime,
        reported_by: str,
        occurred_at: datetime,
        items: Sequence[Mapping[str, Any]] | None = None,
        consignee_id: UUID | None = None,
        end_user: str = "",
        end_use: str = "",
        destination_country: str = "",
        contract: str = "",
    ) -> Licence:
        if valid_until <= valid_from:
            raise InvalidInput("valid_until", "validity-window", "must be after valid_from")
        checked_items: list[dict[str, Any]] = []
        if kind is LicenceKind.EXPORT_LICENCE:
            if not items:
                raise InvalidInput("items", "required", "an export licence names its items")
            for n, item in enumerate(items):
                checked_items.append(_export_item(item, f"items[{n}]"))
            if consignee_id is None:
                raise InvalidInput("consignee", "required", "an export licence names a consignee")
            if not end_user.strip():
                raise InvalidInput("end_user", "required", "an export licence names the end user")
            if not destination_country:
                raise InvalidInput(
                    "destination_country", "required", "an export licence names a destination"
                )
        elif items:
            raise InvalidInput("items", "quota-items", "a quota is counted in kg REO, not items")
        return cls._create(
            cls.Issued,
            id=id,
            number=number,
            kind=kind.value,
            holder_id=holder_id,
            max_kg=mass(max_kg, "max_kg", limit=MAX_LICENCE_KG),
            valid_from=valid_from,
            valid_until=valid_until,
            items=checked_items,
            consignee_id=consignee_id,
            end_user=end_user.strip(),
            end_use=end_use.strip(),
            destination_country=destination_country,
            contract=contract,
            reported_by=reported_by,
            occurred_at=occurred_at,
        )

    @property
    def remaining_kg(self) -> Decimal:
        return self.max_kg - self.drawn_kg

    def check_draw(
        self, kind: LicenceKind, holder: UUID, kg: Decimal, at: datetime, field: str
    ) -> None:
        """Validity, holder and remaining quantity: shared by quotas and export licences."""
        if self.kind is not kind:
            raise RuleBroken(
                field,
                "licence-kind",
                f"licence {self.number} is a {self.kind.value}, not a {kind.value}",
            )
        if self.holder_id != holder:
            raise Forbidden(
                field, "licence-holder", f"licence {self.number} is held by another actor"
            )
        if not self.valid_from <= at <= self.valid_until:
            raise RuleBroken(
                field,
                "licence-validity",
                f"licence {self.number} is valid from {self.valid_from.isoformat()} "
                f"until {self.valid_until.isoformat()}, not at {at.isoformat()}",
            )
        if kg > self.remaining_kg:
            unit = "kg REO" if kind in QUOTAS else "kg"
            raise RuleBroken(
                field,
                "licence-remaining",
                f"drawing {kg} {unit} would overdraw licence {self.number}: "
                f"{self.remaining_kg} {unit} of {self.max_kg} remain",
            )

    def check_export(
        self,
        *,
        material: Material,
        composition: Mapping[str, Decimal],
        customs_code: str,
        destination_country: str,
        consignee_id: UUID,
        end_user: str,
    ) -> None:
        """An export must be one of the licensed items, to the licensed consignee,
        end user and country."""
        if destination_country != self.destination_country:
            raise RuleBroken(
                "destination_country",
                "licence-destination",
                f"licence {self.number} allows export to {self.destination_country} only",
            )
        if consignee_id != self.consignee_id:
            raise RuleBroken(
                "consignee", "licence-consignee", f"licence {self.number} names another consignee"
            )
        if end_user.strip().casefold() != self.end_user.casefold():
            raise RuleBroken(
                "end_user",
                "licence-end-user",
                f"licence {self.number} names end user {self.end_user!r}",
            )
        carried = {e for e, share in composition.items() if e in CONTROLLED and share > 0}
        for item in self.items:
            if item["material"] != material.value:
                continue
            if not tariff_covers(item["customs_code"], customs_code):
                continue
            covered = set(item["elements"])
            if covered and not carried <= covered:
                continue
            return
        raise RuleBroken(
            "customs_code",
            "licence-item",
            f"licence {self.number} covers no item for {material.value} under {customs_code}"
            + (f" carrying {', '.join(sorted(carried))}" if carried else ""),
        )

    def draw(
        self, kg: Decimal, batch_id: UUID, cause: str, reported_by: str, occurred_at: datetime
    ) -> None:
        self.trigger_event(
            self.Drawn,
            kg=kg,
            batch_id=batch_id,
            cause=cause,
            reported_by=reported_by,
            occurred_at=occurred_at,
        )

    def correct_draw(
        self, kg: Decimal, batch_id: UUID, reported_by: str, occurred_at: datetime, field: str
    ) -> None:
        if kg > ZERO and kg > self.remaining_kg:
            raise RuleBroken(
                field,
                "quota",
                f"the correction draws {kg} kg REO more from {self.number}, "
                f"which has {self.remaining_kg} kg left",
            )
        self.trigger_event(
            self.DrawCorrected,
            kg=kg,
            batch_id=batch_id,
            reported_by=reported_by,
            occurred_at=occurred_at,
        )


def _export_item(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    try:
        material = Material(item.get("material", ""))
    except ValueError:
        raise InvalidInput(
            f"{field}.material", "material", f"{item.get('material')!r} is not a material"
        ) from None
    code = str(item.get("customs_code", ""))
    if not TARIFF_CODE.match(code) or len(tariff_digits(code)) < 4:
        raise InvalidInput(
            f"{field}.customs_code", "customs-heading", "at least a 4-digit heading, e.g. 8505.11"
        )
    digits = tariff_digits(code)
    if not any(
        digits.startswith(tariff_digits(h)) or tariff_digits(h).startswith(digits)
        for h in CUSTOMS_HEADINGS[material]
    ):
        raise InvalidInput(
            f"{field}.customs_code",
            "customs-heading",
            f"{code!r} is not a heading for {material.value} "
            f"(expected one of {', '.join(CUSTOMS_HEADINGS[material])})",
        )
    elements = sorted(set(item.get("elements") or []))
    for element in elements:
        if element not in CONTROLLED:
            raise InvalidInput(
                f"{field}.elements",
                "controlled-element",
                f"{element} is not one of the licensed elements {', '.join(sorted(CONTROLLED))}",
            )
    return {"material": material.value, "customs_code": code, "elements": elements}
