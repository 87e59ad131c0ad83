"""The deterministic demo chain: ledger commands from mines to end clients abroad.

One *cycle* is a pass of the whole chain with realistic figures (see DOMAIN.md):

- ore is mined under mining quotas at Bayan Obo (CN, rock ore 3-8 % REO), two ion-adsorption
  clay fields in Jiangxi (CN) and one in Kachin State (MM) (0.05-0.3 % REO, rich in Y, Dy
  and Tb), Mountain Pass (US) and Mount Weld (AU);
- each mine beneficiates its ore to a 50-65 % REO concentrate; the Chinese mining companies
  sell theirs to the separators, the Myanmar, US and Australian ones export theirs (MM -> CN,
  US -> CN, AU -> MY) and the consignees receive them at their separation plants;
- the separation plants in Baotou, Ganzhou and Kuantan draw their separation quotas and make
  NdPr oxide, Dy2O3, Tb4O7, La2O3, CeO2 and Y2O3 (compositions are element mass fractions,
  so Nd2O3 is about 0.857 Nd); Kuantan exports its NdPr oxide to Baotou;
- the oxides are sold (contract, price in CNY) to a metal maker, which merges every NdPr
  oxide lot into a blending silo (it carries over from cycle to cycle and is emptied every
  ``SILO_CYCLES`` cycles, so a magnet lot descends from hundreds of ore lots), reduces it to
  NdPr metal (about 0.85 of the oxide mass), buys Dy and Tb metal from a second metal maker
  and casts NdFeB alloy (29-32 wt% rare earth, about 1 % B, the rest iron and additives,
  declared as untraced inputs);
- the alloy is split between two magnet makers, whose machining loses 15-30 % (the swarf is
  kept as scrap); the grade follows the Dy+Tb content (N52 without, SH/UH/EH/AH with 2-6 %);
- magnet lots are split and exported under export licences (8505.11, consignee, end user,
  end use) to end clients in DE, DK, JP, US and KR, who receive them; some parts are sold to
  a trader who exports them, some to a client at home; the trader also moves cerium oxide
  from its warehouse to the port and exports it;
- every ``RECYCLE_EVERY`` cycles the swarf goes to a recycler that also collects end-of-life
  magnets and recycles both into NdPr and Dy-Tb oxide, which re-enter the chain;
- one Myanmar ore lot is quarantined in the first cycle and stays held.

A few cycles also carry one of the irregularities the anomaly rules look for (and only
those), so that the anomaly list and the reports have something to show:

- mass-balance stress: the Jiangxi metal maker reduces Dy oxide at 100.3 % of its Dy
  (first cycle) and Tb oxide at 99.95 % (last cycle), inside the declared 0.5 % tolerance;
- smuggling cover and untraced content: a scrap dealer collects Dy-rich magnet scrap,
  sells it to the Baotou alloy maker and afterwards corrects its own intake down to 60 %
  of what it sold; the alloy maker puts the scrap into an EV alloy, whose Dy and Tb then
  come mostly from outside any quota (middle cycle, and the last one from four cycles);
- licence mismatch: a magnet shipment names its end user in other letters than its
  licence does (first and middle cycles);
- extraction surge: the Kachin clay field mines six times its usual rate for one cycle
  (two thirds through, from three cycles);
- under-invoicing and a round trip: the Baotou separator sells a tenth of its NdPr oxide
  to the Shanghai trader at a fifth of the price; the trader exports it to Kuantan, which
  sends it straight back (first and middle cycles).
Refused attempts are not ledger events, so the demo has none to show.

Cycles start ``WINDOW / cycles`` apart and each spans about 107 days, so they overlap like
a real pipeline; every report is dated from 2026-01-05 on, never after 2026-10-02, and never
before the latest step of any batch it touches.

Every command is reported shortly after its step happened: ``reports()`` yields the
commands in the order they happened (registrations first, on ``REGISTERED_AT``), each
with the time it is recorded at, the close of its six-hour reporting window plus a
delay of five minutes to three hours drawn from the seed, so no record is a day late
(``load`` records them at those times through the ledger's ``now``).

Every command is built so that the ledger's invariants hold: outputs are rounded down
(masses to 6, fractions to 9 places), inputs are at the facility of the step, licences are
drawn inside their validity and remaining quantity. The stream is deterministic in the
seed (``random.Random(seed)``, times from a fixed base date) and generated lazily, one
cycle at a time. It is simulated twice: the first pass only counts how many tranches of
each quota and licence to issue, because registrations come first.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.access import Principal, Role
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.domain.values import (
    CONTROLLED,
    EXACT,
    FRACTION_PLACES,
    MASS_PLACES,
    OXIDE_FACTOR,
    RARE_EARTHS,
    ZERO,
    blend,
    reo_kg,
)
from lodestone.ledger import commands as c
from lodestone.ledger.application import MAX_BULK, Ledger

__all__ = [
    "ADMIN",
    "DemoChain",
    "DemoSummary",
    "Highlights",
    "Report",
    "generate",
    "load",
]

#: Who loads the demo: an admin reports every step on behalf of the actor named in it.
ADMIN = Principal("demo-admin", Role.ADMIN)

#: Every cycle starts within WINDOW after START and ends about 107 days later, so no report
#: is dated after LATEST (2026-10-02): in the past, and inside the 2026 licences.
START = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = timedelta(days=160)
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
LATEST = START + WINDOW + timedelta(days=110)
#: Actors, facilities and licences are registered before the year starts.
REGISTERED_AT = datetime(2025, 12, 15, 9, tzinfo=UTC)
#: Steps are reported in six-hour windows, each recorded a little after it closes.
REPORTING_WINDOW = timedelta(hours=6)
REPORTING_DELAY = (timedelta(minutes=5), timedelta(hours=3))

SILO_CYCLES = 16  # the NdPr oxide silo is emptied every 16 cycles
RECYCLE_EVERY = 6  # swarf goes to the recycler in cycle 0, 6, 12, ...
CERIA_EVERY = 3  # the trader exports cerium oxide in cycle 0, 3, 6, ...

#: Measured averages (seeds 0-24, sizes 300-100,000), to turn ``size`` into cycles.
REGISTRATIONS_ESTIMATE = 75
COMMANDS_PER_CYCLE = 74

DEFAULT_CHUNK = 2_000
MASS_Q = Decimal(1).scaleb(-MASS_PLACES)
FRACTION_Q = Decimal(1).scaleb(-FRACTION_PLACES)
CENT = Decimal("0.01")
#: ``price`` is checked like a mass, so it may not exceed 100,000,000.
MAX_PRICE = Decimal("99999999.99")

# --- the world -----------------------------------------------------------------------------

# fmt: off
ACTORS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("BAOGANG", "Bayan Obo Mining Company", "CN", ("miner",)),
    ("GZMINING", "Ganzhou Ion-Clay Mining Co.", "CN", ("miner",)),
    ("NREG", "Northern Rare Earth Group", "CN", ("separator", "importer")),
    ("CREG", "Southern Rare Earth Group", "CN", ("separator", "importer")),
    ("KACHIN", "Kachin Highland Minerals", "MM", ("miner", "exporter")),
    ("MTPASS", "Mountain Pass Minerals", "US", ("miner", "exporter")),
    ("WELD", "Mount Weld Mining", "AU", ("miner", "exporter")),
    ("KUANTAN", "Kuantan Rare Earth Processing", "MY", ("separator", "importer", "exporter")),
    ("BTMETAL", "Baotou Rare Earth Metals and Alloys", "CN",
     ("metal_maker", "alloy_maker", "importer")),
    ("JXMETAL", "Jiangxi Heavy Rare Earth Metals", "CN", ("metal_maker",)),
    ("NBMAG", "Ningbo Sintered Magnets", "CN", ("magnet_maker", "exporter")),
    ("GZMAG", "Ganzhou Magnetics", "CN", ("magnet_maker", "exporter")),
    ("SHTRADE", "Shanghai Rare Earth Trading", "CN", ("trader", "exporter")),
    ("GZRECYCLE", "Ganzhou Resource Recycling", "CN", ("recycler",)),
    ("SZDRIVE", "Shenzhen E-Drive Systems", "CN", ("end_client",)),
    ("AUTOWERK", "Autowerk Antriebstechnik GmbH", "DE", ("importer", "end_client")),
    ("NORDVIND", "Nordvind Turbines A/S", "DK", ("importer", "end_client")),
    ("KYUSHU", "Kyushu EV Motors K.K.", "JP", ("importer", "end_client")),
    ("GREATLAKES", "Great Lakes Traction Inc.", "US", ("importer", "end_client")),
    ("HANRIVER", "Han River Electronics Co., Ltd.", "KR", ("importer", "end_client")),
    ("OSAKAPOL", "Osaka Polishing Materials K.K.", "JP", ("importer", "end_client")),
    ("GZDEALER", "Ganzhou Yuanfeng Scrap Trading", "CN", ("trader", "recycler")),
)

#: code, name, kind, owner, location (the country is the owner's).
FACILITIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("BAOGANG-BAYANOBO", "Bayan Obo open pit", "mine", "BAOGANG", "Bayan Obo, Inner Mongolia"),
    ("NREG-BAOTOU-SEP", "Baotou separation plant", "separation_plant", "NREG",
     "Baotou, Inner Mongolia"),
    ("GZMINING-LONGNAN", "Longnan ion-adsorption clay field", "mine", "GZMINING",
     "Longnan, Ganzhou, Jiangxi"),
    ("GZMINING-XUNWU", "Xunwu ion-adsorption clay field", "mine", "GZMINING",
     "Xunwu, Ganzhou, Jiangxi"),
    ("CREG-GANZHOU-SEP", "Ganzhou separation plant", "separation_plant", "CREG",
     "Ganzhou, Jiangxi"),
    ("KACHIN-PANGWA", "Pangwa clay leaching field", "mine", "KACHIN", "Pangwa, Kachin State"),
    ("MTPASS-MINE", "Mountain Pass mine and mill", "mine", "MTPASS", "Mountain Pass, California"),
    ("WELD-MINE", "Mount Weld mine and concentrator", "mine", "WELD",
     "Mount Weld, Western Australia"),
    ("KUANTAN-SEP", "Gebeng separation plant", "separation_plant", "KUANTAN",
     "Gebeng, Kuantan, Pahang"),
    ("BTMETAL-PLANT", "Baotou metal and alloy plant", "metal_plant", "BTMETAL",
     "Baotou, Inner Mongolia"),
    ("JXMETAL-PLANT", "Ganzhou heavy rare-earth metal plant", "metal_plant", "JXMETAL",
     "Ganzhou, Jiangxi"),
    ("NBMAG-PLANT", "Ningbo sintered magnet plant", "magnet_plant", "NBMAG", "Ningbo, Zhejiang"),
    ("GZMAG-PLANT", "Ganzhou sintered magnet plant", "magnet_plant", "GZMAG", "Ganzhou, Jiangxi"),
    ("SHTRADE-PORT", "Yangshan bonded warehouse", "port", "SHTRADE", "Yangshan port, Shanghai"),
    ("SHTRADE-BAOTOU-WH", "Baotou oxide warehouse", "warehouse", "SHTRADE",
     "Baotou, Inner Mongolia"),
    ("GZRECYCLE-PLANT", "Ganzhou magnet recycling plant", "separation_plant", "GZRECYCLE",
     "Ganzhou, Jiangxi"),
    ("SZDRIVE-SHENZHEN", "Shenzhen motor plant goods-in", "warehouse", "SZDRIVE",
     "Shenzhen, Guangdong"),
    ("AUTOWERK-ZWICKAU", "Zwickau e-drive plant goods-in", "warehouse", "AUTOWERK",
     "Zwickau, Saxony"),
    ("NORDVIND-ESBJERG", "Esbjerg generator plant goods-in", "warehouse", "NORDVIND", "Esbjerg"),
    ("KYUSHU-KITAKYUSHU", "Kitakyushu motor plant goods-in", "warehouse", "KYUSHU",
     "Kitakyushu, Fukuoka"),
    ("GREATLAKES-TOLEDO", "Toledo traction motor plant goods-in", "warehouse", "GREATLAKES",
     "Toledo, Ohio"),
    ("HANRIVER-SUWON", "Suwon component plant goods-in", "warehouse", "HANRIVER",
     "Suwon, Gyeonggi"),
    ("OSAKAPOL-SAKAI", "Sakai polishing powder plant goods-in", "warehouse", "OSAKAPOL",
     "Sakai, Osaka"),
    ("GZDEALER-YARD", "Ganzhou scrap yard", "warehouse", "GZDEALER", "Ganzhou, Jiangxi"),
)
# fmt: on
NAMES = {code: name for code, name, _, _ in ACTORS}
COUNTRIES = {code: country for code, _, country, _ in ACTORS}


@dataclass(frozen=True)
class Client:
    """An end client abroad (or at home): where it receives and what it makes."""

    code: str
    facility: str
    end_use: str
    transit_days: int


# fmt: off
EV_CLIENTS = (
    Client("AUTOWERK", "AUTOWERK-ZWICKAU", "traction motors for battery-electric cars", 35),
    Client("KYUSHU", "KYUSHU-KITAKYUSHU", "traction motors for hybrid and electric vehicles", 12),
    Client("GREATLAKES", "GREATLAKES-TOLEDO", "traction motors for electric pickup trucks", 30),
    Client("NORDVIND", "NORDVIND-ESBJERG",
           "permanent-magnet generators for offshore wind turbines", 33),
)
ELECTRONICS_CLIENT = Client("HANRIVER", "HANRIVER-SUWON",
                            "voice-coil motors and speakers for smartphones", 10)
CERIA_CLIENT = Client("OSAKAPOL", "OSAKAPOL-SAKAI", "glass polishing powder", 14)
DOMESTIC_CLIENT = Client("SZDRIVE", "SZDRIVE-SHENZHEN", "traction motors", 0)
#: Where the foreign concentrates go, and Kuantan's NdPr oxide.
SEPARATION = "separation into rare-earth oxides"
MM_TO_CN = Client("CREG", "CREG-GANZHOU-SEP", SEPARATION, 14)
US_TO_CN = Client("NREG", "NREG-BAOTOU-SEP", SEPARATION, 28)
AU_TO_MY = Client("KUANTAN", "KUANTAN-SEP", SEPARATION, 16)
MY_TO_CN = Client("BTMETAL", "BTMETAL-PLANT", "NdPr metal for NdFeB magnets", 10)
#: The round trip: NdPr oxide from the Shanghai trader to Kuantan and straight back.
CN_TO_MY = Client("KUANTAN", "KUANTAN-SEP", SEPARATION, 16)
MY_TO_TRADER = Client("SHTRADE", "SHTRADE-BAOTOU-WH", "rare-earth oxide trading", 10)
# fmt: on


@dataclass(frozen=True)
class Source:
    """A mine: its ore grade (REO mass fraction), lot sizes, and the REO distribution (oxide
    share of the REO) and gangue of its ore."""

    actor: str
    mine: str
    grade: tuple[str, str]
    lot_kg: tuple[str, str]
    lots: tuple[int, int]
    reo: Mapping[str, str]
    gangue: Mapping[str, str]
    recovery: tuple[str, str]  # of the rare earths, by beneficiation


# fmt: off
#: Oxide share of the REO by element: light bastnaesite/monazite ores, and ion-adsorption
#: clays rich in Y, Dy and Tb.
BAYAN_OBO_REO = {"La": "0.25", "Ce": "0.50", "Pr": "0.05", "Nd": "0.18", "Sm": "0.012",
                 "Eu": "0.002", "Gd": "0.004", "Tb": "0.0002", "Dy": "0.001", "Y": "0.003"}
MOUNTAIN_PASS_REO = {"La": "0.33", "Ce": "0.49", "Pr": "0.043", "Nd": "0.12", "Sm": "0.008",
                     "Eu": "0.001", "Gd": "0.002", "Y": "0.001"}
MOUNT_WELD_REO = {"La": "0.25", "Ce": "0.46", "Pr": "0.053", "Nd": "0.185", "Sm": "0.023",
                  "Eu": "0.004", "Gd": "0.01", "Tb": "0.001", "Dy": "0.002", "Y": "0.003"}
LONGNAN_REO = {"La": "0.15", "Ce": "0.03", "Pr": "0.04", "Nd": "0.15", "Sm": "0.04",
               "Eu": "0.005", "Gd": "0.06", "Tb": "0.011", "Dy": "0.07", "Ho": "0.015",
               "Er": "0.04", "Yb": "0.03", "Lu": "0.005", "Y": "0.35"}
XUNWU_REO = {"La": "0.30", "Ce": "0.07", "Pr": "0.07", "Nd": "0.28", "Sm": "0.05",
             "Eu": "0.005", "Gd": "0.04", "Tb": "0.006", "Dy": "0.025", "Ho": "0.004",
             "Er": "0.012", "Yb": "0.01", "Lu": "0.001", "Y": "0.11"}
PANGWA_REO = {"La": "0.12", "Ce": "0.02", "Pr": "0.035", "Nd": "0.13", "Sm": "0.035",
              "Eu": "0.004", "Gd": "0.06", "Tb": "0.012", "Dy": "0.08", "Ho": "0.017",
              "Er": "0.045", "Yb": "0.035", "Lu": "0.006", "Y": "0.38"}
CLAY = {"Si": "0.30", "Al": "0.12"}

#: actor, mine, REO grade, kg per lot, lots per cycle, REO, gangue, beneficiation recovery.
BAYAN_OBO = Source("BAOGANG", "BAOGANG-BAYANOBO", ("0.03", "0.08"), ("20000", "60000"), (3, 6),
                   BAYAN_OBO_REO, {"Fe": "0.30", "F": "0.06", "Th": "0.0004"}, ("0.65", "0.85"))
LONGNAN = Source("GZMINING", "GZMINING-LONGNAN", ("0.0005", "0.003"), ("150000", "450000"), (2, 4),
                 LONGNAN_REO, CLAY, ("0.75", "0.90"))
XUNWU = Source("GZMINING", "GZMINING-XUNWU", ("0.0005", "0.003"), ("150000", "450000"), (1, 3),
               XUNWU_REO, CLAY, ("0.75", "0.90"))
PANGWA = Source("KACHIN", "KACHIN-PANGWA", ("0.0005", "0.003"), ("400000", "1000000"), (2, 4),
                PANGWA_REO, CLAY, ("0.70", "0.88"))
MOUNTAIN_PASS = Source("MTPASS", "MTPASS-MINE", ("0.05", "0.08"), ("15000", "40000"), (1, 2),
                       MOUNTAIN_PASS_REO, {"Ca": "0.15", "F": "0.02"}, ("0.65", "0.80"))
MOUNT_WELD = Source("WELD", "WELD-MINE", ("0.05", "0.08"), ("8000", "20000"), (1, 2),
                    MOUNT_WELD_REO, {"Fe": "0.20", "P": "0.05"}, ("0.65", "0.80"))
SOURCES = (BAYAN_OBO, LONGNAN, XUNWU, PANGWA, MOUNTAIN_PASS, MOUNT_WELD)

#: What each Chinese separation plant makes: lot code prefix and the elements it keeps.
NORTH_OXIDES = [("NDPR-OX", ("Nd", "Pr")), ("LA-OX", ("La",)), ("CE-OX", ("Ce",))]
SOUTH_OXIDES = [("NDPR-OX", ("Nd", "Pr")), ("DY-OX", ("Dy",)), ("TB-OX", ("Tb",)),
                ("Y-OX", ("Y",))]

#: End-of-life magnets as the recycler collects them (Ni from the coating).
END_OF_LIFE_MAGNETS = {"Nd": "0.22", "Pr": "0.06", "Dy": "0.03", "Tb": "0.005", "Fe": "0.63",
                       "B": "0.0095", "Co": "0.012", "Ni": "0.01"}
#: What the scrap dealer declares: sorted Dy-rich EV magnet scrap.
DEALER_SCRAP = {"Nd": "0.20", "Pr": "0.05", "Dy": "0.065", "Tb": "0.012", "Fe": "0.63",
                "B": "0.0095", "Co": "0.02"}

#: What goes into NdFeB besides Nd, Pr, Dy, Tb, Fe and B (about 1.2 % of the alloy).
ADDITIVES = {"Co": Decimal("0.75"), "Cu": Decimal("0.08"), "Al": Decimal("0.12"),
             "Ga": Decimal("0.05")}
# fmt: on

#: Typical prices, CNY per kg.
PRICE = {
    "rock-concentrate": "38",
    "clay-concentrate": "180",
    "ndpr-oxide": "550",
    "dy-oxide": "1700",
    "tb-oxide": "7000",
    "la-oxide": "4",
    "ce-oxide": "8",
    "y-oxide": "45",
    "dy-metal": "2100",
    "tb-metal": "8800",
    "dytb-metal": "2800",
    "alloy": "260",
    "magnet": "380",
    "swarf": "90",
}

HOUR = timedelta(hours=1)
#: A surge's lots are all extracted this many hours into their cycle, before beneficiation.
SURGE_HOURS = 66
SURGE_MAX_LOTS = 12


# --- exact figures ---------------------------------------------------------------------------


def _kg(value: Decimal) -> Decimal:
    """Rounded DOWN to milligrams: an output never claims more than its inputs held."""
    return value.quantize(MASS_Q, rounding=ROUND_DOWN, context=EXACT)


def _share(value: Decimal) -> Decimal:
    return value.quantize(FRACTION_Q, rounding=ROUND_DOWN, context=EXACT)


def _elements(parts: Iterable[tuple[Decimal, Mapping[str, Decimal]]]) -> dict[str, Decimal]:
    """Exact kg per element of some (kg, composition) parts."""
    sums: dict[str, Decimal] = {}
    for kg, comp in parts:
        for element, share in comp.items():
            sums[element] = EXACT.add(sums.get(element, ZERO), EXACT.multiply(kg, share))
    return sums


def _fractions(element_kg: Mapping[str, Decimal], kg: Decimal) -> dict[str, Decimal]:
    """The composition of ``kg`` holding at most ``element_kg`` of each element."""
    comp = {}
    for element in sorted(element_kg):
        share = _share(EXACT.divide(element_kg[element], kg))
        if share > 0:
            comp[element] = share
    return comp


def _total(values: Iterable[Decimal]) -> Decimal:
    result = ZERO
    for value in values:
        result = EXACT.add(result, value)
    return result


def _cents(price: Decimal | None, factor: Decimal) -> Decimal | None:
    if price is None or factor == 1:
        return price
    return EXACT.multiply(price, factor).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _respelt(name: str) -> str:
    """The same name in other letters: what a licence check that ignores case accepts."""
    return name.upper() if name.upper() != name else name.lower()


def _grade(comp: Mapping[str, Decimal]) -> str:
    """Magnet grade by Dy+Tb content: EV traction grades (SH and up) carry 2-6 %."""
    heavy = comp.get("Dy", ZERO) + comp.get("Tb", ZERO)
    for limit, name in (
        ("0.005", "N52"),
        ("0.02", "N48H"),
        ("0.03", "N45SH"),
        ("0.04", "N42UH"),
        ("0.05", "N40EH"),
    ):
        if heavy < Decimal(limit):
            return name
    return "N38AH"


# --- lots and licences as the generator tracks them --------------------------------------------


@dataclass
class Lot:
    """What the generator knows of a batch: the same figures the ledger will hold."""

    ref: str  # ACTOR/LOT, the reporter's code and lot code
    material: str
    kg: Decimal  # remaining
    comp: dict[str, Decimal]
    holder: str
    facility: str
    last: datetime  # its latest step (creation, sale, arrival...): none may be dated earlier


@dataclass(frozen=True)
class LicenceSpec:
    """One quota or export licence, issued in tranches of ``tranche_kg`` as needed."""

    prefix: str
    kind: str
    holder: str
    tranche_kg: Decimal
    items: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    consignee: Client | None = None

    def number(self, tranche: int) -> str:
        return f"{self.prefix}-{tranche}"

    def issue(self, tranche: int) -> c.IssueLicence:
        client = self.consignee
        return c.IssueLicence(
            number=self.number(tranche),
            kind=self.kind,
            holder=self.holder,
            max_kg=self.tranche_kg,
            valid_from=VALID_FROM,
            valid_until=VALID_UNTIL,
            items=[
                {"material": m, "customs_code": code, "elements": list(elements)}
                for m, code, elements in self.items
            ],
            consignee=client.code if client else None,
            end_user=NAMES[client.code] if client else "",
            end_use=client.end_use if client else "",
            destination_country=COUNTRIES[client.code] if client else "",
            contract=f"{self.holder}-{client.code}-FRAME-2026-{tranche}" if client else "",
        )


class Tranches:
    """Draws on a licence kind, moving to the next tranche when one would be overdrawn.
    The first pass counts the tranches; the second issues exactly that many."""

    def __init__(self, spec: LicenceSpec, issued: int | None) -> None:
        self.spec = spec
        self.issued = issued
        self.used = 0
        self.drawn = ZERO

    def draw(self, kg: Decimal) -> str:
        if kg > self.spec.tranche_kg:
            raise RuntimeError(f"a draw of {kg} kg exceeds a whole {self.spec.prefix} tranche")
        if self.used == 0 or EXACT.add(self.drawn, kg) > self.spec.tranche_kg:
            self.used += 1
            self.drawn = ZERO
            if self.issued is not None and self.used > self.issued:
                raise RuntimeError(f"{self.spec.prefix}: the second pass drew differently")
        self.drawn = EXACT.add(self.drawn, kg)
        return self.spec.number(self.used)


@dataclass(frozen=True)
class Highlights:
    """Batches worth looking at once the demo is loaded."""

    magnet: str  # a magnet lot with many ancestors
    exported: str  # a part of it, exported and received abroad
    end_client: str  # who received it
    recycled: str  # the first recycled NdPr oxide lot
    quarantined: str  # a held Myanmar ore lot
    batches: int
    cycles: int


@dataclass
class _Marks:
    magnet: str = ""
    exported: str = ""
    end_client: str = ""
    recycled: str = ""
    quarantined: str = ""


@dataclass(frozen=True)
class _Irregular:
    """In which cycles the demo carries each irregularity (see the module's docstring)."""

    stress: Mapping[int, str]  # cycle -> recovery of the metal maker's reduction
    element: Mapping[int, str]  # cycle -> the oxide reduced that way (DY-OX, TB-OX)
    misspelt: frozenset[int]
    dealer: frozenset[int]
    surge: frozenset[int]
    cheap: frozenset[int]  # under-invoiced NdPr oxide, which then makes a round trip

    @classmethod
    def plan(cls, cycles: int) -> _Irregular:
        first, middle, last = 0, cycles // 2, cycles - 1
        stress = {first: ("1.003", "DY-OX")}
        if last != first:
            stress[last] = ("0.9995", "TB-OX")
        dealer = {middle} | ({last} if cycles >= 4 else set())
        # Two thirds through, and late enough that the mine has the rule's 60 days of
        # history before a 30-day window (cycles start 160 / cycles days apart).
        surge = max(-(-2 * cycles // 3), -(-90 * cycles // 160), 1)
        return cls(
            stress={c: r for c, (r, _) in stress.items()},
            element={c: e for c, (_, e) in stress.items()},
            misspelt=frozenset({first, middle}),
            dealer=frozenset(dealer),
            surge=frozenset({surge} if surge < cycles else ()),
            cheap=frozenset({first, middle}),
        )


#: A command and when its step happened (a correction: when it is made).
Timed = tuple[datetime, c.Command]


# --- the simulation --------------------------------------------------------------------------


class _Simulation:
    """Runs the cycles, emitting commands and tracking every lot it creates."""

    def __init__(self, seed: int, cycles: int, tranches: Mapping[str, int] | None) -> None:
        self.rng = random.Random(seed)
        self.cycles = cycles
        self.step = timedelta(seconds=int(WINDOW.total_seconds()) // cycles)
        self.tranches = tranches
        self.licences: dict[str, Tranches] = {}
        self.out: list[Timed] = []
        self.irregular = _Irregular.plan(cycles)
        self.mined: dict[str, list[tuple[datetime, Decimal]]] = {}  # mine -> (time, kg REO)
        self.seq = 0
        self.batches = 0
        self.stock: dict[str, list[Lot]] = {}
        self.silo: Lot | None = None
        self.marks = _Marks()
        self.featured_cycle = min(cycles, SILO_CYCLES) - 1

    # --- plumbing ------------------------------------------------------------------------

    def run(self) -> Iterator[list[Timed]]:
        """The commands of each cycle with their times, cycle by cycle. Each cycle's steps
        happen at or after its start (``at(cycle, 0)``), and a step that needs an earlier
        one (a batch made before it is sold) is emitted after it and dated no earlier."""
        for cycle in range(self.cycles):
            self.cycle(cycle)
            out, self.out = self.out, []
            yield out

    def emit(self, command: c.Command, at: datetime | None = None) -> None:
        when = at if at is not None else getattr(command, "occurred_at", None)
        if when is None:
            raise RuntimeError(f"{type(command).__name__} needs a time")
        self.out.append((when, command))

    def at(self, cycle: int, hours: int) -> datetime:
        return START + self.step * cycle + HOUR * hours

    def uniform(self, lo: str, hi: str, places: int = 4) -> Decimal:
        scale = 10**places
        low, high = int(Decimal(lo) * scale), int(Decimal(hi) * scale)
        return Decimal(self.rng.randint(low, high)).scaleb(-places)

    def code(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq:07d}"

    def licence(self, spec: LicenceSpec, kg: Decimal) -> str:
        tranche = self.licences.get(spec.prefix)
        if tranche is None:
            issued = None if self.tranches is None else self.tranches.get(spec.prefix, 0)
            tranche = self.licences[spec.prefix] = Tranches(spec, issued)
        return tranche.draw(kg)

    def when(self, planned: datetime, lots: Iterable[Lot]) -> datetime:
        """As planned, but never before the latest step of any batch the step touches."""
        at = max([planned, *(lot.last for lot in lots)])
        if at > LATEST:
            raise RuntimeError(f"the demo would report at {at.isoformat()}, past {LATEST}")
        return at

    def put(self, place: str, lot: Lot) -> None:
        self.stock.setdefault(place, []).append(lot)

    def take(self, place: str, by: datetime) -> list[Lot]:
        """Everything in stock at ``place`` that is there by ``by``."""
        lots = self.stock.get(place, [])
        ready = [lot for lot in lots if lot.last <= by]
        self.stock[place] = [lot for lot in lots if lot.last > by]
        return ready

    def price(self, kind: str, kg: Decimal) -> Decimal | None:
        unit = Decimal(PRICE[kind]) * self.uniform("0.95", "1.05", 3)
        total = EXACT.multiply(unit, kg).quantize(CENT, rounding=ROUND_HALF_EVEN)
        return total if total <= MAX_PRICE else None

    # --- the commands, each keeping the lots in step ------------------------------------------

    def extract(self, source: Source, at: datetime, factor: Decimal = Decimal(1)) -> Lot:
        """Ore under the mining quota: its REO content (the grade) draws the quota; the
        REO distribution and the gangue vary by up to 10 % from lot to lot. ``factor``
        scales the lot's mass (a surge)."""
        grade = self.uniform(*source.grade, places=5)
        spread = {
            e: Decimal(s) * self.uniform("0.9", "1.1", 3) for e, s in sorted(source.reo.items())
        }
        scale = EXACT.divide(grade, _total(spread.values()))
        comp: dict[str, Decimal] = {}
        for element, share in spread.items():
            oxide = EXACT.multiply(scale, share)
            comp[element] = _share(EXACT.divide(oxide, OXIDE_FACTOR[element]))
        for element, gangue in sorted(source.gangue.items()):
            comp[element] = _share(Decimal(gangue) * self.uniform("0.9", "1.1", 3))
        kg = _kg(self.uniform(*source.lot_kg, places=3) * factor)
        quota = LicenceSpec(
            f"{COUNTRIES[source.actor]}-MQ-2026-{source.actor}",
            "mining_quota",
            source.actor,
            MINING_TRANCHE[source.actor],
        )
        reo = reo_kg(kg, comp)
        number = self.licence(quota, reo)
        self.mined.setdefault(source.mine, []).append((at, reo))
        lot_code = self.code("ORE")
        self.emit(
            c.ExtractOre(
                facility=source.mine,
                quota=number,
                lot_code=lot_code,
                mass_kg=kg,
                composition=dict(comp),
                occurred_at=at,
                actor=source.actor,
            )
        )
        self.batches += 1
        return Lot(f"{source.actor}/{lot_code}", "ore", kg, comp, source.actor, source.mine, at)

    def transform(
        self,
        actor: str,
        facility: str,
        process: str,
        planned: datetime,
        inputs: Sequence[tuple[Lot, Decimal]],
        outputs: Sequence[tuple[str, str, Decimal, dict[str, Decimal]]],
        untraced: Sequence[UntracedInput] = (),
        quota: LicenceSpec | None = None,
    ) -> list[Lot]:
        """``outputs`` are (lot code prefix, material, kg, composition)."""
        at = self.when(planned, (lot for lot, _ in inputs))
        made = [(self.code(prefix), material, kg, comp) for prefix, material, kg, comp in outputs]
        number = None
        if quota is not None:
            number = self.licence(quota, _total(reo_kg(kg, comp) for _, _, kg, comp in made))
        self.emit(
            c.Transform(
                facility=facility,
                process=process,
                reference=self.code(process.upper()[:4]),
                inputs=[(lot.ref, kg) for lot, kg in inputs],
                outputs=[OutputSpec(code, m, kg, dict(comp)) for code, m, kg, comp in made],
                untraced_inputs=list(untraced),
                quota=number,
                occurred_at=at,
                actor=actor,
            )
        )
        for lot, kg in inputs:
            lot.kg, lot.last = lot.kg - kg, at
        self.batches += len(made)
        return [
            Lot(f"{actor}/{code}", material, kg, comp, actor, facility, at)
            for code, material, kg, comp in made
        ]

    def merge(self, prefix: str, planned: datetime, lots: Sequence[Lot]) -> Lot:
        first = lots[0]
        at = self.when(planned, lots)
        lot_code = self.code(prefix)
        self.emit(
            c.Merge(
                lot_code=lot_code,
                inputs=[(lot.ref, lot.kg) for lot in lots],
                occurred_at=at,
                actor=first.holder,
            )
        )
        comp = blend((lot.kg, lot.comp) for lot in lots)
        merged = Lot(
            f"{first.holder}/{lot_code}",
            first.material,
            _total(lot.kg for lot in lots),
            comp,
            first.holder,
            first.facility,
            at,
        )
        for lot in lots:
            lot.kg, lot.last = ZERO, at
        self.batches += 1
        return merged

    def split(self, lot: Lot, planned: datetime, kgs: Sequence[Decimal], prefix: str) -> list[Lot]:
        """Splits parts off ``lot``; the rest stays in ``lot``."""
        at = self.when(planned, [lot])
        codes = [self.code(prefix) for _ in kgs]
        parts: list[tuple[str, object]] = list(zip(codes, kgs, strict=True))
        self.emit(c.Split(batch=lot.ref, parts=parts, occurred_at=at, actor=lot.holder))
        lot.kg, lot.last = lot.kg - _total(kgs), at
        self.batches += len(parts)
        return [
            Lot(f"{lot.holder}/{code}", lot.material, kg, lot.comp, lot.holder, lot.facility, at)
            for code, kg in zip(codes, kgs, strict=True)
        ]

    def sell(
        self,
        lot: Lot,
        buyer: str,
        to: str,
        planned: datetime,
        price: str,
        discount: Decimal = Decimal(1),
    ) -> None:
        """``discount`` scales the price (an under-invoiced sale)."""
        at = self.when(planned, [lot])
        self.emit(
            c.TransferCustody(
                batch=lot.ref,
                buyer=buyer,
                contract=self.code(f"K-{lot.holder}-{buyer}"),
                to_facility=to,
                price=_cents(self.price(price, lot.kg), discount),
                currency="CNY",
                occurred_at=at,
                actor=lot.holder,
            )
        )
        lot.holder, lot.facility, lot.last = buyer, to, at

    def move(self, lot: Lot, to: str, planned: datetime) -> None:
        """The holder moves a batch to another of its own sites."""
        at = self.when(planned, [lot])
        self.emit(c.MoveBatch(batch=lot.ref, to_facility=to, occurred_at=at, actor=lot.holder))
        lot.facility, lot.last = to, at

    def ship(
        self,
        lot: Lot,
        client: Client,
        planned: datetime,
        customs_code: str,
        elements: tuple[str, ...] = (),
        end_user: str | None = None,
    ) -> None:
        """Exports ``lot`` to ``client`` under the exporter's licence and has it received
        ``client.transit_days`` later. ``end_user``: as the shipment names it (by default
        as the licence does)."""
        exporter = lot.holder
        at = self.when(planned, [lot])
        spec = LicenceSpec(
            f"{COUNTRIES[exporter]}-EXL-2026-{exporter}-{client.code}",
            "export_licence",
            exporter,
            EXPORT_TRANCHE[lot.material],
            ((lot.material, customs_code, elements),),
            client,
        )
        self.emit(
            c.ExportShipment(
                batch=lot.ref,
                # A bill of lading number per shipment, as a forwarder would issue it.
                shipment=f"BL-{COUNTRIES[exporter]}-2026-{len(self.out):06d}",
                licence=self.licence(spec, lot.kg),
                consignee=client.code,
                destination_country=COUNTRIES[client.code],
                end_user=end_user or NAMES[client.code],
                customs_code=customs_code,
                occurred_at=at,
                actor=exporter,
            )
        )
        arrived = at + timedelta(days=client.transit_days)
        received: Decimal | None = None
        if lot.kg > 100 and self.rng.random() < 0.1:  # a little lost or damaged in transit
            received = lot.kg - self.uniform("0.5", "3", 3)
        self.emit(
            c.ReceiveShipment(
                batch=lot.ref,
                facility=client.facility,
                received_kg=received,
                occurred_at=arrived,
                actor=client.code,
            )
        )
        lot.kg = lot.kg if received is None else received
        lot.holder, lot.facility, lot.last = client.code, client.facility, arrived

    # --- the stages ----------------------------------------------------------------------------

    def mine(self, source: Source, cycle: int) -> list[Lot]:
        lots = [
            self.extract(source, self.at(cycle, 5 * n))
            for n in range(self.rng.randint(*source.lots))
        ]
        if source is PANGWA and cycle in self.irregular.surge:
            lots += self.surge(source, cycle, len(lots))
        return lots

    def surge(self, source: Source, cycle: int, after: int) -> list[Lot]:
        """Lots that bring a month's extraction to about six times the mine's rate so
        far (the illegal-mining signal)."""
        history = self.mined.get(source.mine, [])
        start = self.at(cycle, 0)
        days = Decimal((start - history[0][0]).total_seconds()) / 86400 if history else ZERO
        if days <= 0:
            return []
        total = _total(reo for _, reo in history)
        target = 6 * total / days * 30  # kg REO
        per_lot = total / len(history)
        # At least three lots, none more than 20 times the usual mass. A large demo packs
        # many cycles into each day, so "six times the usual month" would be months of
        # mining: there the surge stops at SURGE_MAX_LOTS lots (still a surge to the rule).
        lots = min(SURGE_MAX_LOTS, max(3, int(-(-target // (20 * per_lot)))))
        factor = min(Decimal(20), max(Decimal(1), target / (lots * per_lot)))
        factor = factor.quantize(Decimal("0.001"))
        # Five hours apart like the mine's other lots, unless that would run past the
        # beneficiation (a large demo has many cycles a day): then closer together.
        first = self.at(cycle, 5 * after)
        gap = min(HOUR * 5, (self.at(cycle, SURGE_HOURS) - first) / lots)
        return [self.extract(source, first + gap * n, factor) for n in range(lots)]

    def beneficiate(self, source: Source, ores: Sequence[Lot], planned: datetime) -> Lot:
        """Ore -> 50-65 % REO concentrate at the mine (flotation, or leaching for clay)."""
        recovery = self.uniform(*source.recovery, places=3)
        grade = self.uniform("0.50", "0.65", 3)
        held = _elements((lot.kg, lot.comp) for lot in ores)
        kept = {e: EXACT.multiply(kg, recovery) for e, kg in held.items() if e in RARE_EARTHS}
        reo = _total(EXACT.multiply(kg, OXIDE_FACTOR[e]) for e, kg in kept.items())
        kg = _kg(EXACT.divide(reo, grade))
        (concentrate,) = self.transform(
            source.actor,
            source.mine,
            "beneficiation",
            planned,
            [(lot, lot.kg) for lot in ores],
            [("CON", "concentrate", kg, _fractions(kept, kg))],
        )
        return concentrate

    def oxides(
        self,
        feed: Sequence[tuple[Lot, Decimal]],
        products: Sequence[tuple[str, tuple[str, ...]]],
        recovery: tuple[str, str],
        purity: str = "0.995",
    ) -> list[tuple[str, str, Decimal, dict[str, Decimal]]]:
        """Oxide outputs holding ``recovery`` of the named elements of ``feed``; the rest
        of each oxide's mass is its oxygen and impurities."""
        held = _elements((kg, lot.comp) for lot, kg in feed)
        outputs = []
        for prefix, elements in products:
            share = self.uniform(*recovery, places=3)
            kept = {e: EXACT.multiply(held[e], share) for e in elements if e in held}
            oxide = _total(EXACT.multiply(kg, OXIDE_FACTOR[e]) for e, kg in kept.items())
            kg = _kg(EXACT.divide(oxide, Decimal(purity)))
            if kg >= Decimal("0.001"):
                outputs.append((prefix, "oxide", kg, _fractions(kept, kg)))
        return outputs

    def separate(
        self,
        actor: str,
        plant: str,
        products: Sequence[tuple[str, tuple[str, ...]]],
        planned: datetime,
    ) -> dict[str, Lot]:
        """Solvent extraction of every concentrate at ``plant`` into individual oxides,
        drawing the separation quota; the oxides made, by lot code prefix."""
        feed = self.take(f"{plant}:concentrate", planned)
        taken = [(lot, lot.kg) for lot in feed]
        acid = _kg(_total(lot.kg for lot in feed) * self.uniform("0.3", "0.5", 3))
        quota = LicenceSpec(
            f"{COUNTRIES[actor]}-SQ-2026-{actor}",
            "separation_quota",
            actor,
            SEPARATION_TRANCHE[actor],
        )
        outputs = self.oxides(taken, products, ("0.94", "0.98"))
        made = self.transform(
            actor,
            plant,
            "separation",
            planned,
            taken,
            outputs,
            [UntracedInput("hydrochloric acid (37 %)", acid, {"Cl": Decimal("0.36")})],
            quota,
        )
        return {prefix: lot for (prefix, _, _, _), lot in zip(outputs, made, strict=True)}

    def reduce(
        self,
        actor: str,
        plant: str,
        lot: Lot,
        kg: Decimal,
        prefix: str,
        planned: datetime,
        recovery: str | None = None,
    ) -> Lot:
        """Molten-salt electrolysis: oxide -> 99.5 % metal, the oxygen leaves.
        ``recovery``: of the rare earths, if not the usual 97.5-99 % (a stressed step)."""
        usual = self.uniform("0.975", "0.99", 3)
        recovery_ = Decimal(recovery) if recovery is not None else usual
        held = _elements([(kg, lot.comp)])
        kept = {e: EXACT.multiply(v, recovery_) for e, v in held.items() if e in RARE_EARTHS}
        metal = _kg(EXACT.divide(_total(kept.values()), Decimal("0.995")))
        (made,) = self.transform(
            actor,
            plant,
            "reduction",
            planned,
            [(lot, kg)],
            [(prefix, "metal", metal, _fractions(kept, metal))],
        )
        return made

    def alloy(
        self, ndpr: Lot, heavy: list[Lot], planned: datetime, ev: bool, dealer: bool = False
    ) -> Lot:
        """NdPr metal + Dy/Tb metal + iron, ferroboron and additives -> NdFeB alloy with
        29-32 wt% rare earth and about 1 % B. Dy+Tb 2-6 % for EV grades (as far as the
        Dy and Tb in stock go), none for N52 (one alloy in five, unless ``ev``).
        ``dealer``: three quarters of the Dy and Tb come from a scrap dealer's lot."""
        rare = self.uniform("0.29", "0.32", 3)
        n52 = self.rng.random() < 0.2 and not ev
        target = self.uniform("0.02", "0.06", 3) if not n52 else ZERO
        light = _total(v for e, v in ndpr.comp.items() if e in ("Nd", "Pr")) * ndpr.kg
        alloy_kg = light / (rare - target)
        need = alloy_kg * target
        if dealer and need > 0:
            heavy.insert(0, self.dealer_scrap(need * Decimal("0.75"), planned))
        available = _total(
            _total(lot.comp.get(e, ZERO) for e in ("Dy", "Tb")) * lot.kg for lot in heavy
        )
        if available < need:
            need = available
            alloy_kg = (light + need) / rare
        inputs: list[tuple[Lot, Decimal]] = [(ndpr, ndpr.kg)]
        if dealer and heavy and need > 0:  # the dealer's scrap first, all of it
            scrap = heavy[0]
            share = _total(scrap.comp.get(e, ZERO) for e in ("Dy", "Tb"))
            kg = min(scrap.kg, _kg(need / share))
            inputs.append((scrap, kg))
            need -= kg * share
            heavy = heavy[1:]
        # The rest from every heavy-metal lot in stock in proportion to its Dy and Tb, so
        # that an alloy carries both (a Dy lot alone would cover most needs).
        stock = [(lot, _total(lot.comp.get(e, ZERO) for e in ("Dy", "Tb"))) for lot in heavy]
        held = _total(lot.kg * share for lot, share in stock)
        for lot, share in stock:
            if need <= 0 or share == 0 or held == 0:
                continue
            kg = min(lot.kg, _kg(need * (lot.kg * share / held) / share))
            if kg > 0:
                inputs.append((lot, kg))
        boron = self.uniform("0.0095", "0.0105", 4)
        ferroboron = _kg(alloy_kg * boron / Decimal("0.18"))
        additives = _kg(alloy_kg * Decimal("0.012"))
        traced = _total(kg for _, kg in inputs)
        iron = _kg(alloy_kg - traced - ferroboron - additives)
        added: list[tuple[str, Decimal, dict[str, Decimal]]] = [
            ("electrolytic iron", iron, {"Fe": Decimal("0.998")}),
            ("ferroboron", ferroboron, {"B": Decimal("0.18"), "Fe": Decimal("0.81")}),
            ("additives (Co, Cu, Al, Ga)", additives, ADDITIVES),
        ]
        untraced = [UntracedInput(name, kg, dict(comp)) for name, kg, comp in added]
        parts = [(kg, lot.comp) for lot, kg in inputs] + [(kg, comp) for _, kg, comp in added]
        total_in = _total(kg for kg, _ in parts)
        out = _kg(total_in * (1 - self.uniform("0.002", "0.006", 4)))
        comp = _fractions(_elements(parts), total_in)
        (made,) = self.transform(
            "BTMETAL",
            "BTMETAL-PLANT",
            "alloying",
            planned,
            inputs,
            [(f"ALLOY-{_grade(comp)}", "alloy", out, comp)],
            untraced,
        )
        return made

    def magnets(self, maker: str, alloy: Lot, planned: datetime) -> tuple[list[Lot], Lot]:
        """Sintered magnets (machining loses 15-30 %) and the swarf, as scrap."""
        loss = self.uniform("0.15", "0.30", 3)
        total = _kg(alloy.kg * (1 - loss))
        swarf = _kg(alloy.kg * loss * self.uniform("0.6", "0.85", 3))
        first = _kg(total * self.uniform("0.35", "0.65", 3)) if self.rng.random() < 0.5 else total
        sizes = [first] if first == total else [first, total - first]
        grade = _grade(alloy.comp)
        comp = _fractions(_elements([(alloy.kg, alloy.comp)]), alloy.kg)
        made = self.transform(
            maker,
            f"{maker}-PLANT",
            "magnet_making",
            planned,
            [(alloy, alloy.kg)],
            [(f"MAG-{grade}", "magnet", kg, comp) for kg in sizes]
            + [("SWARF", "scrap", swarf, comp)],
        )
        return made[:-1], made[-1]

    def dealer_scrap(self, heavy_kg: Decimal, planned: datetime) -> Lot:
        """A scrap dealer collects Dy-rich magnet scrap at its yard and sells it to the
        Baotou alloy maker; then it corrects its intake down to 60 % of what it sold.
        The lot (as corrected) carries ``heavy_kg`` of Dy and Tb."""
        comp = {e: Decimal(share) for e, share in sorted(DEALER_SCRAP.items())}
        kept = _kg(heavy_kg / (comp["Dy"] + comp["Tb"]))
        declared = _kg(kept / Decimal("0.6"))
        lot_code = self.code("DSCRAP")
        ref = f"GZDEALER/{lot_code}"
        collected = planned - 220 * HOUR
        self.emit(
            c.CollectScrap(
                facility="GZDEALER-YARD",
                lot_code=lot_code,
                mass_kg=declared,
                composition=dict(comp),
                source="sorted EV magnet scrap bought from small workshops",
                occurred_at=collected,
                actor="GZDEALER",
            )
        )
        self.batches += 1
        lot = Lot(ref, "scrap", declared, comp, "GZDEALER", "GZDEALER-YARD", collected)
        self.sell(lot, "BTMETAL", "BTMETAL-PLANT", planned - 170 * HOUR, "swarf")
        self.emit(
            c.CorrectEvent(
                batch=ref,
                version=1,
                reason="incorrect-data",
                facts={"mass_kg": kept},
                note="intake re-weighed at the yard",
            ),
            at=planned - 70 * HOUR,
        )
        lot.kg = kept
        return lot

    def distribute(self, magnet: Lot, cycle: int, featured: bool, misspelt: bool = False) -> None:
        """Splits a magnet lot into shipments: exported by the maker, sold to the trader
        who exports it, or sold at home. The first part always goes abroad directly;
        ``misspelt``: its shipment names the end user in other letters than the licence."""
        count = 2 if featured else self.rng.choice((1, 2, 2, 3))
        kgs = [_kg(magnet.kg * self.uniform("0.2", "0.45", 3)) for _ in range(count - 1)]
        parts = self.split(magnet, self.at(cycle, 1632), kgs, "SHIP") if kgs else []
        ev = _grade(magnet.comp) not in ("N52", "N48H")
        for n, unit in enumerate([*parts, magnet]):
            client = self.rng.choice(EV_CLIENTS) if ev else ELECTRONICS_CLIENT
            route = "direct" if n == 0 else self.rng.choice(("direct", "direct", "trader", "home"))
            shipped = self.at(cycle, 1656)
            if route == "home":
                home = DOMESTIC_CLIENT
                self.sell(unit, home.code, home.facility, shipped, "magnet")
                continue
            if route == "trader":
                self.sell(unit, "SHTRADE", "SHTRADE-PORT", shipped, "magnet")
                shipped += 72 * HOUR
            end_user = _respelt(NAMES[client.code]) if misspelt and n == 0 else None
            self.ship(unit, client, shipped, "8505.11", ("Dy", "Tb"), end_user)
            if featured and n == 0:
                self.marks.exported, self.marks.end_client = unit.ref, client.code

    def recycle(self, cycle: int) -> None:
        """Swarf from both magnet makers and collected end-of-life magnets become NdPr and
        Dy-Tb oxide again, which go back to the metal makers."""
        sold = self.at(cycle, 1584)
        swarf = self.take("NBMAG-PLANT:scrap", sold) + self.take("GZMAG-PLANT:scrap", sold)
        for lot in swarf:
            self.sell(lot, "GZRECYCLE", "GZRECYCLE-PLANT", sold, "swarf")
        collected = self.at(cycle, 1440)
        # As much end-of-life feed as 10-30 % of the swarf: most of what is recycled was
        # mined under a quota, so recycled oxide is not "largely from outside any quota"
        # (the anomaly rule's 50 %), even after Dy and Tb have gone round a few times.
        feed = _total(lot.kg for lot in swarf)
        kg = max(Decimal("50"), _kg(feed * self.uniform("0.1", "0.3", 3)))
        comp = {}
        for element, share in sorted(END_OF_LIFE_MAGNETS.items()):
            spread = self.uniform("0.95", "1.05", 3) if element in RARE_EARTHS else Decimal(1)
            comp[element] = _share(Decimal(share) * spread)
        lot_code = self.code("EOL")
        self.emit(
            c.CollectScrap(
                facility="GZRECYCLE-PLANT",
                lot_code=lot_code,
                mass_kg=kg,
                composition=dict(comp),
                source="end-of-life EV traction motors, Ganzhou dismantling network",
                occurred_at=collected,
                actor="GZRECYCLE",
            )
        )
        self.batches += 1
        scrap = Lot(
            f"GZRECYCLE/{lot_code}", "scrap", kg, comp, "GZRECYCLE", "GZRECYCLE-PLANT", collected
        )
        taken = [(lot, lot.kg) for lot in [*swarf, scrap]]
        products = [("RNDPR-OX", ("Nd", "Pr")), ("RDYTB-OX", ("Dy", "Tb"))]
        outputs = self.oxides(taken, products, ("0.88", "0.95"), "0.99")
        recycled_at = self.at(cycle, 1728)
        ndpr, dytb = self.transform(
            "GZRECYCLE", "GZRECYCLE-PLANT", "recycling", recycled_at, taken, outputs
        )
        self.marks.recycled = self.marks.recycled or ndpr.ref
        self.sell(ndpr, "BTMETAL", "BTMETAL-PLANT", self.at(cycle, 1800), "ndpr-oxide")
        self.put("BTMETAL-PLANT:ndpr-oxide", ndpr)
        self.sell(dytb, "JXMETAL", "JXMETAL-PLANT", self.at(cycle, 1800), "dy-oxide")
        reduced_at = self.at(cycle, 1848)
        metal = self.reduce("JXMETAL", "JXMETAL-PLANT", dytb, dytb.kg, "DYTB-METAL", reduced_at)
        self.sell(metal, "BTMETAL", "BTMETAL-PLANT", self.at(cycle, 1896), "dytb-metal")
        self.put("BTMETAL-PLANT:heavy-metal", metal)

    def cycle(self, cycle: int) -> None:
        def at(hours: int) -> datetime:
            return self.at(cycle, hours)

        # Mining under quotas, then beneficiation at each mine.
        ores = {source.mine: self.mine(source, cycle) for source in SOURCES}
        if cycle == 0:
            held = ores[PANGWA.mine].pop()
            reason = "held at the border: mining permit under review (suspected illegal mining)"
            self.emit(c.Quarantine(batch=held.ref, reason=reason, occurred_at=at(30)))
            self.marks.quarantined, held.last = held.ref, at(30)
        concentrates = {s.mine: self.beneficiate(s, ores[s.mine], at(72)) for s in SOURCES}

        # Foreign concentrates are exported to separation plants in China and Malaysia.
        for source, client, customs_code in (
            (PANGWA, MM_TO_CN, "2846.90"),
            (MOUNTAIN_PASS, US_TO_CN, "2530.90"),
            (MOUNT_WELD, AU_TO_MY, "2530.90"),
        ):
            lot = concentrates[source.mine]
            controlled = tuple(sorted(set(source.reo) & CONTROLLED))
            self.ship(lot, client, at(120), customs_code, controlled)
            self.put(f"{client.facility}:concentrate", lot)
        # Domestic concentrates are sold by the mining companies to the separators.
        for source, buyer, plant, kind in (
            (BAYAN_OBO, "NREG", "NREG-BAOTOU-SEP", "rock-concentrate"),
            (LONGNAN, "CREG", "CREG-GANZHOU-SEP", "clay-concentrate"),
            (XUNWU, "CREG", "CREG-GANZHOU-SEP", "clay-concentrate"),
        ):
            lot = concentrates[source.mine]
            self.sell(lot, buyer, plant, at(96), kind)
            self.put(f"{plant}:concentrate", lot)

        # Separation into oxides.
        north = self.separate("NREG", "NREG-BAOTOU-SEP", NORTH_OXIDES, at(840))
        south = self.separate("CREG", "CREG-GANZHOU-SEP", SOUTH_OXIDES, at(840))
        kuantan = self.separate("KUANTAN", "KUANTAN-SEP", [("NDPR-OX", ("Nd", "Pr"))], at(840))

        # Oxide trade: NdPr to the Baotou metal maker (Kuantan's by export), Dy and Tb to
        # the Jiangxi metal maker, which reduces them and sells the metal on to Baotou;
        # La, Ce and Y to the trader.
        if cycle in self.irregular.cheap:
            self.cheap_round_trip(north["NDPR-OX"], at(870))
        for lot in (north["NDPR-OX"], south["NDPR-OX"]):
            self.sell(lot, "BTMETAL", "BTMETAL-PLANT", at(888), "ndpr-oxide")
            self.put("BTMETAL-PLANT:ndpr-oxide", lot)
        self.ship(kuantan["NDPR-OX"], MY_TO_CN, at(900), "2846.90")
        self.put("BTMETAL-PLANT:ndpr-oxide", kuantan["NDPR-OX"])
        for oxides, prefix, kind in (
            (north, "LA-OX", "la-oxide"),
            (north, "CE-OX", "ce-oxide"),
            (south, "Y-OX", "y-oxide"),
        ):
            if prefix in oxides:
                self.sell(oxides[prefix], "SHTRADE", "SHTRADE-BAOTOU-WH", at(888), kind)
        if "CE-OX" in north:
            self.put("SHTRADE-BAOTOU-WH:ceria", north["CE-OX"])
        for prefix, kind, metal in (("DY-OX", "dy", "DY-METAL"), ("TB-OX", "tb", "TB-METAL")):
            if prefix in south:
                oxide = south[prefix]
                self.sell(oxide, "JXMETAL", "JXMETAL-PLANT", at(888), f"{kind}-oxide")
                stressed = self.irregular.element.get(cycle) == prefix
                recovery = self.irregular.stress[cycle] if stressed else None
                reduced = self.reduce(
                    "JXMETAL", "JXMETAL-PLANT", oxide, oxide.kg, metal, at(960), recovery
                )
                self.sell(reduced, "BTMETAL", "BTMETAL-PLANT", at(1008), f"{kind}-metal")
                self.put("BTMETAL-PLANT:heavy-metal", reduced)

        # Now and then the trader moves its cerium oxide from its Baotou warehouse to the
        # port and exports it for glass polishing.
        if cycle % CERIA_EVERY == 0:
            ceria = self.take("SHTRADE-BAOTOU-WH:ceria", at(1032))
            for lot in ceria:
                self.move(lot, "SHTRADE-PORT", at(1032))
            if ceria:
                lot = ceria[0] if len(ceria) == 1 else self.merge("CE-LOT", at(1080), ceria)
                self.ship(lot, CERIA_CLIENT, at(1080), "2846.10")

        # The NdPr silo, NdPr metal and the NdFeB alloy, split between two magnet makers.
        feed = self.take("BTMETAL-PLANT:ndpr-oxide", at(1200))
        if self.silo is not None and self.silo.kg > 0:
            feed.insert(0, self.silo)
        silo = feed[0] if len(feed) == 1 else self.merge("NDPR-SILO", at(1200), feed)
        emptied = cycle % SILO_CYCLES == SILO_CYCLES - 1 or cycle == self.cycles - 1
        draw = silo.kg if emptied else _kg(silo.kg * self.uniform("0.75", "0.92", 3))
        ndpr = self.reduce("BTMETAL", "BTMETAL-PLANT", silo, draw, "NDPR-METAL", at(1248))
        self.silo = None if emptied else silo
        heavy = self.take("BTMETAL-PLANT:heavy-metal", at(1320))
        # The first alloy is an EV grade: the first recycling's Dy comes from its swarf.
        dealer = cycle in self.irregular.dealer
        ev = cycle in (0, self.featured_cycle) or dealer
        alloy = self.alloy(ndpr, heavy, at(1320), ev=ev, dealer=dealer)
        for lot in heavy:
            if lot.kg > 0:
                self.put("BTMETAL-PLANT:heavy-metal", lot)
        half = _kg(alloy.kg * self.uniform("0.4", "0.6", 3))
        (first,) = self.split(alloy, at(1368), [half], "ALLOY-PART")
        self.sell(first, "NBMAG", "NBMAG-PLANT", at(1368), "alloy")
        self.sell(alloy, "GZMAG", "GZMAG-PLANT", at(1368), "alloy")

        # Magnets and swarf, recycling now and then, and the shipments.
        made: dict[str, list[Lot]] = {}
        for maker, lot in (("NBMAG", first), ("GZMAG", alloy)):
            made[maker], swarf = self.magnets(maker, lot, at(1488))
            self.put(f"{maker}-PLANT:scrap", swarf)
        if cycle % RECYCLE_EVERY == 0:
            self.recycle(cycle)
        for maker, magnets in made.items():
            for n, magnet in enumerate(magnets):
                featured = cycle == self.featured_cycle and maker == "NBMAG" and n == 0
                if featured:
                    self.marks.magnet = magnet.ref
                misspelt = cycle in self.irregular.misspelt and maker == "GZMAG" and n == 0
                self.distribute(magnet, cycle, featured, misspelt)

    def cheap_round_trip(self, oxide: Lot, planned: datetime) -> None:
        """A tenth of the Baotou separator's NdPr oxide is sold to the Shanghai trader at
        a fifth of the price, exported to Kuantan and sent straight back."""
        (part,) = self.split(oxide, planned, [_kg(oxide.kg / 10)], "NDPR-PART")
        self.sell(
            part, "SHTRADE", "SHTRADE-BAOTOU-WH", planned + 18 * HOUR, "ndpr-oxide", Decimal("0.2")
        )
        self.ship(part, CN_TO_MY, planned + 30 * HOUR, "2846.90")
        self.ship(part, MY_TO_TRADER, part.last + 48 * HOUR, "2846.90")

    def highlights(self) -> Highlights:
        m = self.marks
        return Highlights(
            m.magnet, m.exported, m.end_client, m.recycled, m.quarantined, self.batches, self.cycles
        )


#: Tranche sizes (kg REO for quotas, kg of goods for export licences): quotas come in
#: batches during the year, export licences per contract.
MINING_TRANCHE = {
    "BAOGANG": Decimal("70000000"),
    "GZMINING": Decimal("10000000"),
    "KACHIN": Decimal("20000000"),
    "MTPASS": Decimal("45000000"),
    "WELD": Decimal("12000000"),
}
SEPARATION_TRANCHE = {
    "NREG": Decimal("60000000"),
    "CREG": Decimal("10000000"),
    "KUANTAN": Decimal("10000000"),
}
EXPORT_TRANCHE = {
    "concentrate": Decimal("20000000"),
    "oxide": Decimal("5000000"),
    "magnet": Decimal("500000"),
}


# --- the public API ------------------------------------------------------------------------------


def cycles_for(size: int) -> int:
    """How many cycles make about ``size`` commands (one at the least)."""
    return max(1, round((size - REGISTRATIONS_ESTIMATE) / COMMANDS_PER_CYCLE))


@dataclass(frozen=True)
class Report:
    """A command and the time the ledger records it at (shortly after its step)."""

    recorded_at: datetime
    command: c.Command


class DemoChain:
    """The demo's commands for one seed and size, generated lazily, in the order their
    steps happened.

    ``reports()``, ``commands()`` and ``chunks()`` may be iterated more than once and
    always yield the same; ``highlights`` is set once an iteration has finished."""

    def __init__(self, seed: int, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.seed = seed
        self.size = size
        self.cycles = cycles_for(size)
        self.highlights: Highlights | None = None

    def reports(self) -> Iterator[Report]:
        """Registrations (recorded on ``REGISTERED_AT``), then every step in the order it
        happened, each recorded when its reporting window closes plus a delay."""
        # First pass: how many tranches of each quota and licence the chain draws.
        measure = _Simulation(self.seed, self.cycles, None)
        for _ in measure.run():
            pass
        counts = {prefix: t.used for prefix, t in measure.licences.items()}
        for code, name, country, roles in ACTORS:
            yield Report(REGISTERED_AT, c.RegisterActor(code, name, country, list(roles)))
        for code, name, kind, owner, location in FACILITIES:
            registered = c.RegisterFacility(code, name, kind, owner, COUNTRIES[owner], location)
            yield Report(REGISTERED_AT, registered)
        for tranche in measure.licences.values():
            for n in range(1, tranche.used + 1):
                yield Report(REGISTERED_AT, tranche.spec.issue(n))
        # Second pass: the same draws, now with every licence issued. Cycles overlap in
        # time, so their commands wait in a heap until no later cycle can come before
        # them: every cycle's steps happen at or after its start. Ties keep the order of
        # emission, in which a step always follows the steps it needs.
        simulation = _Simulation(self.seed, self.cycles, counts)
        waiting: list[tuple[datetime, int, c.Command]] = []
        emitted = 0
        for cycle, commands in enumerate(simulation.run()):
            for when, command in commands:
                heapq.heappush(waiting, (when, emitted, command))
                emitted += 1
            next_start = simulation.at(cycle + 1, 0) if cycle + 1 < self.cycles else None
            while waiting and (next_start is None or waiting[0][0] < next_start):
                when, _, command = heapq.heappop(waiting)
                yield Report(self._recorded(when), command)
        self.highlights = simulation.highlights()

    def _recorded(self, when: datetime) -> datetime:
        """The close of the step's reporting window plus a delay drawn from the seed and
        the window: later windows are always recorded later."""
        window = (when - START) // REPORTING_WINDOW
        low, high = (int(d.total_seconds()) for d in REPORTING_DELAY)
        delay = random.Random(f"{self.seed}:{window}").randint(low, high)
        return START + REPORTING_WINDOW * (window + 1) + timedelta(seconds=delay)

    def commands(self) -> Iterator[c.Command]:
        for report in self.reports():
            yield report.command

    def chunks(self, chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[c.Command]]:
        """The commands in lists of at most ``chunk_size`` (one bulk request each)."""
        if not 1 <= chunk_size <= MAX_BULK:
            raise ValueError(f"chunk_size must be between 1 and {MAX_BULK}")
        chunk: list[c.Command] = []
        for command in self.commands():
            chunk.append(command)
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def generate(seed: int, size: int, chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[c.Command]]:
    """About ``size`` ledger commands building a realistic chain, in chunks of at most
    ``chunk_size``, to run in order with ``Ledger.execute(ADMIN, chunk, bulk=True)``."""
    return DemoChain(seed, size).chunks(chunk_size)


@dataclass(frozen=True)
class DemoSummary:
    """What ``load`` recorded, with a few batches worth tracing."""

    seed: int
    size: int
    commands: int
    chunks: int
    batches: int
    cycles: int
    magnet: str  # ACTOR/LOT of a magnet lot with many ancestors
    magnet_ancestors: int  # as counted in the ledger
    exported: str  # part of that magnet lot, exported and received abroad
    end_client: str  # the actor code that received it
    recycled: str  # a recycled NdPr oxide lot
    quarantined: str  # a held ore lot


def load(
    ledger: Ledger,
    seed: int,
    size: int,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Generates the demo and records it as ``ADMIN`` at the times it was reported: the
    commands of one reporting window in one transaction (or several of at most
    ``chunk_size``), with the ledger's "now" at the window's record time, so that every
    step is recorded shortly after it happened. ``progress`` is told how many commands
    each transaction held."""
    if not 1 <= chunk_size <= MAX_BULK:
        raise ValueError(f"chunk_size must be between 1 and {MAX_BULK}")
    chain = DemoChain(seed, size)
    commands = chunks = 0

    def record(at: datetime, chunk: list[c.Command]) -> None:
        nonlocal commands, chunks
        ledger.execute(ADMIN, chunk, bulk=True, now=at)
        commands += len(chunk)
        chunks += 1
        if progress is not None:
            progress(len(chunk))

    pending: list[c.Command] = []
    pending_at: datetime | None = None
    for report in chain.reports():
        if pending and (report.recorded_at != pending_at or len(pending) == chunk_size):
            assert pending_at is not None
            record(pending_at, pending)
            pending = []
        pending_at = report.recorded_at
        pending.append(report.command)
    if pending:
        assert pending_at is not None
        record(pending_at, pending)
    marks = chain.highlights
    assert marks is not None
    return DemoSummary(
        seed=seed,
        size=size,
        commands=commands,
        chunks=chunks,
        batches=marks.batches,
        cycles=marks.cycles,
        magnet=marks.magnet,
        magnet_ancestors=len(ancestors(ledger, marks.magnet)),
        exported=marks.exported,
        end_client=marks.end_client,
        recycled=marks.recycled,
        quarantined=marks.quarantined,
    )


def ancestors(ledger: Ledger, ref: str) -> set[UUID]:
    """Every batch upstream of ``ref`` (ACTOR/LOT), read from the ledger."""
    seen: set[UUID] = set()
    todo: list[UUID] = [p["batch_id"] for p in ledger.batch(ref).parents]
    while todo:
        batch_id = todo.pop()
        if batch_id in seen:
            continue
        seen.add(batch_id)
        parent: Any = ledger.repository.get(batch_id)
        todo.extend(p["batch_id"] for p in parent.parents)
    return seen
