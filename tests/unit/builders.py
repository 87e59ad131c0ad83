"""Builders for the write-side rule tests.

Command builders give each step the defaults of the registered world
(``register_chain_world``), so a test spells out only what its rule is about:
``extraction(kg="1")``, ``sale(buyer="MINECO")``, ``export(consignee="RIVAL")``.
``ChainBuilder`` records the steps a test starts from (``chain.ore()``,
``chain.oxide()``, ``chain.exported_oxide()``) and runs the command under test:
``chain.refusal(...)`` answers which kind of refusal named which field and rule, after
checking that nothing at all was stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any, NamedTuple

import pytest

from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.batches import Batch, Status
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.domain.licences import Licence
from lodestone.domain.refusals import Refusal
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.ledger.application import Outcome

ORE = {"Nd": D("0.04"), "Pr": D("0.01"), "Dy": D("0.0005"), "Fe": D("0.2")}
ORE_REO_PER_1000_KG = D("59.31185")  # 1000 * (0.04*1.1664 + 0.01*1.2082 + 0.0005*1.1477)
NDPR_OXIDE = {"Nd": D("0.68"), "Pr": D("0.17")}
SCRAP: dict[str, object] = {"Nd": D("0.3"), "Dy": D("0.02"), "Fe": D("0.66"), "B": D("0.01")}
ALLOY = {"Nd": D("0.1"), "Dy": D("0.006"), "Fe": D("0.88"), "B": D("0.013")}
YEAR_2026 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


# --- the registered world ----------------------------------------------------------------

#: The server's "now" in every unit test: reports default to it, the future starts after it.
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def operator(code: str) -> Principal:
    return Principal(f"key:{code}", Role.OPERATOR, ids.actor_id(code))


@dataclass(frozen=True)
class World:
    """What ``register_chain_world`` registered, and a key for each actor.

    MINECO  (CN) mine M-PIT; mining quota MQ-1
    SEPCO   (CN) separation plant S-SEP, metal plant S-MET; separation quota SQ-1;
                 export licence EX-1: oxide (2846) to AUTO in DE, end user "Auto GmbH"
    ALLOYCO (CN) alloy plant A-ALLOY, magnet plant A-MAG
    TRADER  (CN) warehouse T-WH
    AUTO    (DE) magnet plant D-PLANT, the licensed consignee
    RIVAL   (DE) magnet plant R-PLANT;  FRANCO (FR) magnet plant F-PLANT
    """

    now: datetime
    mine: Principal
    separator: Principal
    alloyer: Principal
    trader: Principal
    auto: Principal
    rival: Principal
    franco: Principal


def register_chain_world(ledger: Ledger, admin: Principal) -> World:
    ledger.execute(
        admin,
        [
            c.RegisterActor("MINECO", "Mine Co", "CN", ["miner"]),
            c.RegisterActor("SEPCO", "Separation Co", "CN", ["separator", "exporter"]),
            c.RegisterActor("ALLOYCO", "Alloy Co", "CN", ["alloy_maker", "magnet_maker"]),
            c.RegisterActor("TRADER", "Trader Ltd", "CN", ["trader"]),
            c.RegisterActor("AUTO", "Auto GmbH", "DE", ["importer", "end_client"]),
            c.RegisterActor("RIVAL", "Rival AG", "DE", ["importer"]),
            c.RegisterActor("FRANCO", "Franco SA", "FR", ["importer"]),
            c.RegisterFacility("M-PIT", "Open pit", "mine", "MINECO", "CN"),
            c.RegisterFacility("S-SEP", "Separation plant", "separation_plant", "SEPCO", "CN"),
            c.RegisterFacility("S-MET", "Metal plant", "metal_plant", "SEPCO", "CN"),
            c.RegisterFacility("A-ALLOY", "Alloy plant", "alloy_plant", "ALLOYCO", "CN"),
            c.RegisterFacility("A-MAG", "Magnet plant", "magnet_plant", "ALLOYCO", "CN"),
            c.RegisterFacility("T-WH", "Warehouse", "warehouse", "TRADER", "CN"),
            c.RegisterFacility("D-PLANT", "Motor plant", "magnet_plant", "AUTO", "DE"),
            c.RegisterFacility("R-PLANT", "Rival plant", "magnet_plant", "RIVAL", "DE"),
            c.RegisterFacility("F-PLANT", "Franco plant", "magnet_plant", "FRANCO", "FR"),
            quota("MQ-1", "mining_quota", "MINECO", "1000000"),
            quota("SQ-1", "separation_quota", "SEPCO", "1000000"),
            export_licence("EX-1"),
        ],
    )
    return World(
        now=NOW,
        mine=operator("MINECO"),
        separator=operator("SEPCO"),
        alloyer=operator("ALLOYCO"),
        trader=operator("TRADER"),
        auto=operator("AUTO"),
        rival=operator("RIVAL"),
        franco=operator("FRANCO"),
    )


# --- commands, with the registered world's defaults --------------------------------------


def extraction(lot: str = "ORE-1", kg: str = "1000", **fields: Any) -> c.ExtractOre:
    """MINECO mines ``kg`` of ``ORE`` at M-PIT under MQ-1."""
    step: dict[str, Any] = {"facility": "M-PIT", "quota": "MQ-1", "composition": ORE}
    return c.ExtractOre(lot_code=lot, mass_kg=D(kg), **{**step, **fields})


def scrap(lot: str = "SCR-1", kg: str = "100", facility: str = "A-ALLOY") -> c.CollectScrap:
    """ALLOYCO collects ``kg`` of ``SCRAP`` at one of its plants."""
    return c.CollectScrap(
        facility=facility,
        lot_code=lot,
        mass_kg=D(kg),
        composition=SCRAP,
        source="end-of-life motors",
    )


def sale(batch: str = "ORE-1", buyer: str = "TRADER", **fields: Any) -> c.TransferCustody:
    return c.TransferCustody(batch=batch, buyer=buyer, **{"contract": "K-9", **fields})


def split(batch: str, *parts: tuple[str, str], **fields: Any) -> c.Split:
    return c.Split(batch=batch, parts=[(lot, D(kg)) for lot, kg in parts], **fields)


def merge(lot: str, *inputs: tuple[str, str]) -> c.Merge:
    return c.Merge(lot_code=lot, inputs=[(batch, D(kg)) for batch, kg in inputs])


def concentrate(kg: str, nd: str, lot: str = "CON-1") -> OutputSpec:
    return OutputSpec(lot, "concentrate", D(kg), {"Nd": D(nd)})


def beneficiation(
    outputs: list[OutputSpec], take: str = "1000", lot: str = "ORE-1", **fields: Any
) -> c.Transform:
    """MINECO concentrates ``take`` of its ore at the mine."""
    return c.Transform(
        facility="M-PIT",
        process="beneficiation",
        reference="BEN-1",
        inputs=[(lot, D(take))],
        outputs=outputs,
        **fields,
    )


def separation(
    ore: str = "MINECO/ORE-1",
    take: str = "1000",
    out: str = "OX-1",
    kg: str = "50",
    quota: str | None = "SQ-1",
    at: datetime | None = None,
) -> c.Transform:
    """SEPCO separates bought ore into NdPr oxide at S-SEP under SQ-1."""
    return c.Transform(
        facility="S-SEP",
        process="separation",
        reference=f"SEP-{out}",
        inputs=[(ore, D(take))],
        outputs=[OutputSpec(out, "oxide", D(kg), NDPR_OXIDE)],
        quota=quota,
        occurred_at=at,
    )


def alloying(
    untraced: list[UntracedInput],
    outputs: list[OutputSpec] | None = None,
    facility: str = "A-ALLOY",
) -> c.Transform:
    """ALLOYCO alloys its 100 kg of scrap with untraced inputs into 300 kg of alloy."""
    return c.Transform(
        facility=facility,
        process="alloying",
        reference="ALLOY-1",
        inputs=[("SCR-1", D("100"))],
        outputs=outputs or [OutputSpec("AL-1", "alloy", D("300"), ALLOY)],
        untraced_inputs=untraced,
    )


def quota(number: str, kind: str, holder: str, max_kg: D | str) -> c.IssueLicence:
    """A quota of ``max_kg`` REO valid through 2026."""
    return c.IssueLicence(number, kind, holder, D(max_kg), *YEAR_2026)


def export_licence(
    number: str, max_kg: D = D("10000"), valid: tuple[datetime, datetime] = YEAR_2026
) -> c.IssueLicence:
    """Like EX-1: SEPCO may ship oxide (2846) to AUTO in DE for end user Auto GmbH."""
    return c.IssueLicence(
        number,
        "export_licence",
        "SEPCO",
        max_kg,
        *valid,
        items=[{"material": "oxide", "customs_code": "2846"}],
        consignee="AUTO",
        end_user="Auto GmbH",
        destination_country="DE",
    )


def export(**fields: Any) -> c.ExportShipment:
    """SEPCO ships OX-1 under EX-1, as the licence allows."""
    shipment = {
        "batch": "OX-1",
        "shipment": "BL-2026-0001",
        "licence": "EX-1",
        "consignee": "AUTO",
        "destination_country": "DE",
        "end_user": "Auto GmbH",
        "customs_code": "2846.90",
    }
    return c.ExportShipment(**{**shipment, **fields})


def receipt(facility: str = "D-PLANT", **fields: Any) -> c.ReceiveShipment:
    """AUTO receives the exported SEPCO/OX-1."""
    return c.ReceiveShipment(batch="SEPCO/OX-1", facility=facility, **fields)


# --- the chain a test starts from ---------------------------------------------------------


class Refused(NamedTuple):
    kind: type[Refusal]
    field: str
    rule: str


class ChainBuilder:
    """Records, through ``Ledger.execute``, the steps a test starts from on the
    registered world; a set-up step that is refused fails the test where it is written.
    A step answers the reference of the batch it made or moved."""

    def __init__(self, ledger: Ledger, world: World, admin: Principal) -> None:
        self.ledger = ledger
        self.world = world
        self._admin = admin

    def run(self, principal: Principal, *commands: c.Command, **execute: Any) -> Outcome:
        return self.ledger.execute(principal, list(commands), **execute)

    def issue(self, *commands: c.Command) -> None:
        """The admin issues (or registers) more than the world has."""
        self.run(self._admin, *commands)

    def ore(self, lot: str = "ORE-1", kg: str = "1000", at: datetime | None = None) -> str:
        """MINECO mines ``kg`` of ore at M-PIT under MQ-1."""
        self.run(self.world.mine, extraction(lot, kg, occurred_at=at))
        return f"MINECO/{lot}"

    def sell(
        self,
        seller: Principal,
        batch: str,
        buyer: str,
        to_facility: str,
        at: datetime | None = None,
    ) -> str:
        """``seller`` sells the batch to ``buyer``, delivered to ``to_facility``."""
        step = sale(batch, buyer, contract="K-1", to_facility=to_facility, occurred_at=at)
        self.run(seller, step)
        return batch

    def ore_at_separation_plant(self, lot: str = "ORE-1", at: datetime | None = None) -> str:
        """MINECO mines 1000 kg of ore and sells it to SEPCO, delivered to S-SEP."""
        ore = self.ore(lot, at=at)
        self.sell(self.world.mine, lot, "SEPCO", "S-SEP", at=at)
        return ore

    def oxide(self, lot: str = "OX-1", kg: str = "50", at: datetime | None = None) -> str:
        """SEPCO separates 1000 kg of bought ore into ``kg`` of NdPr oxide at S-SEP."""
        ore = self.ore_at_separation_plant(f"ORE-FOR-{lot}", at=at)
        self.run(self.world.separator, separation(ore, out=lot, kg=kg, at=at))
        return f"SEPCO/{lot}"

    def exported_oxide(self, kg: str = "50") -> str:
        """SEPCO's ``kg`` of oxide OX-1, shipped to AUTO under EX-1: in transit."""
        self.oxide(kg=kg)
        self.run(self.world.separator, export())
        return "SEPCO/OX-1"

    def scrap(self, lot: str = "SCR-1", kg: str = "100", facility: str = "A-ALLOY") -> str:
        """ALLOYCO collects ``kg`` of scrap at one of its plants."""
        self.run(self.world.alloyer, scrap(lot, kg, facility))
        return f"ALLOYCO/{lot}"

    def hold(self, principal: Principal, batch: str, reason: str) -> str:
        """``principal`` quarantines the batch."""
        self.run(principal, c.Quarantine(batch=batch, reason=reason))
        return batch

    def refusal(self, principal: Principal, *commands: c.Command, **execute: Any) -> Refused:
        """Runs commands that must be refused, checks that nothing at all was stored (the
        notification log did not move), and answers the refusal's kind, field and rule."""
        before = self.ledger.recorder.max_notification_id()
        with pytest.raises(Refusal) as caught:
            self.run(principal, *commands, **execute)
        assert self.ledger.recorder.max_notification_id() == before, "a refusal stored events"
        refusal = caught.value
        return Refused(type(refusal), refusal.field, refusal.rule)

    def batch(self, ref: str) -> Batch:
        return self.ledger.batch(ref)

    def remaining(self, ref: str) -> D:
        return self.ledger.batch(ref).remaining_kg

    def status(self, ref: str) -> Status:
        return self.ledger.batch(ref).status

    def licence(self, number: str) -> Licence:
        return self.ledger.licence_by_number(number)

    def drawn(self, number: str) -> D:
        return self.ledger.licence_by_number(number).drawn_kg
