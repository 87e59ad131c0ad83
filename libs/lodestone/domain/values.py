"""Value rules of the rare-earth world: elements, materials, processes, exact masses,
and the shape of the plain values every command carries (codes, times, enum names).

Masses are ``Decimal`` kilograms, never floats; compositions are mass fractions per
element (an oxide declares its element fractions, so Nd2O3 is about 0.857 Nd), which
makes per-element mass balance hold from oxide to metal without special cases.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from lodestone.domain import ids
from lodestone.domain.refusals import InvalidInput

E = TypeVar("E", bound=StrEnum)

#: Enough digits that sums of products of masses (6 dp) and fractions (9 dp) stay exact.
EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)

MASS_PLACES = 6  # milligram resolution on kilogram figures
FRACTION_PLACES = 9
MAX_BATCH_KG = Decimal("100000000")  # 100,000 t: more than a year's output of any plant
MAX_PRICE = Decimal("1000000000000")  # a trillion in any currency: a typo, not a contract
ZERO = Decimal(0)
ONE = Decimal(1)

#: The seventeen rare-earth elements (lanthanides plus Sc and Y).
RARE_EARTHS = frozenset(
    [
        "Sc",
        "Y",
        "La",
        "Ce",
        "Pr",
        "Nd",
        "Pm",
        "Sm",
        "Eu",
        "Gd",
        "Tb",
        "Dy",
        "Ho",
        "Er",
        "Tm",
        "Yb",
        "Lu",
    ]
)
#: Medium/heavy rare earths under China's 2025 export licensing.
CONTROLLED = frozenset(["Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y"])
#: In a magnet only these make it controlled: samarium (SmCo magnets), terbium and
#: dysprosium (the grain-boundary additions of high-coercivity NdFeB).
CONTROLLED_IN_MAGNETS = frozenset(["Sm", "Tb", "Dy"])

#: Elements a composition may name: rare earths plus what magnets, ores and oxides carry.
KNOWN_ELEMENTS = RARE_EARTHS | frozenset(
    [
        "Fe",
        "B",
        "Co",
        "Cu",
        "Al",
        "Ga",
        "Nb",
        "Zr",
        "Ti",
        "Ni",
        "O",
        "C",
        "Si",
        "Ca",
        "Mg",
        "Th",
        "U",
        "P",
        "F",
        "S",
        "Mn",
        "Cr",
        "Zn",
        "Mo",
        "W",
        "V",
        "Na",
        "K",
        "H",
        "N",
        "Cl",
    ]
)

#: kg of the usual oxide per kg of element (stoichiometric molar-mass ratios), used to
#: state rare-earth content as REO, the unit quotas are written in.
OXIDE_FACTOR: Mapping[str, Decimal] = {
    "Sc": Decimal("1.5338"),  # Sc2O3
    "Y": Decimal("1.2699"),  # Y2O3
    "La": Decimal("1.1728"),  # La2O3
    "Ce": Decimal("1.2284"),  # CeO2
    "Pr": Decimal("1.2082"),  # Pr6O11
    "Nd": Decimal("1.1664"),  # Nd2O3
    "Pm": Decimal("1.1655"),  # Pm2O3
    "Sm": Decimal("1.1596"),  # Sm2O3
    "Eu": Decimal("1.1579"),  # Eu2O3
    "Gd": Decimal("1.1526"),  # Gd2O3
    "Tb": Decimal("1.1762"),  # Tb4O7
    "Dy": Decimal("1.1477"),  # Dy2O3
    "Ho": Decimal("1.1455"),  # Ho2O3
    "Er": Decimal("1.1435"),  # Er2O3
    "Tm": Decimal("1.1421"),  # Tm2O3
    "Yb": Decimal("1.1387"),  # Yb2O3
    "Lu": Decimal("1.1372"),  # Lu2O3
}


class Material(StrEnum):
    ORE = "ore"
    CONCENTRATE = "concentrate"
    OXIDE = "oxide"
    METAL = "metal"
    ALLOY = "alloy"
    MAGNET = "magnet"
    SCRAP = "scrap"


class FacilityKind(StrEnum):
    MINE = "mine"
    SEPARATION_PLANT = "separation_plant"
    METAL_PLANT = "metal_plant"
    ALLOY_PLANT = "alloy_plant"
    MAGNET_PLANT = "magnet_plant"
    WAREHOUSE = "warehouse"
    PORT = "port"


class Process(StrEnum):
    BENEFICIATION = "beneficiation"
    SEPARATION = "separation"
    REDUCTION = "reduction"
    ALLOYING = "alloying"
    MAGNET_MAKING = "magnet_making"
    RECYCLING = "recycling"


class ProcessRule:
    """What a process may take and make, where it runs, and the tolerance it may declare."""

    def __init__(
        self,
        inputs: Iterable[Material],
        outputs: Iterable[Material],
        facilities: Iterable[FacilityKind],
        default_tolerance: str,
    ) -> None:
        self.inputs = frozenset(inputs)
        self.outputs = frozenset(outputs)
        self.facilities = frozenset(facilities)
        self.default_tolerance = Decimal(default_tolerance)


M, F = Material, FacilityKind
PROCESS_RULES: Mapping[Process, ProcessRule] = {
    Process.BENEFICIATION: ProcessRule(
        [M.ORE], [M.CONCENTRATE], [F.MINE, F.SEPARATION_PLANT], "0.005"
    ),
    Process.SEPARATION: ProcessRule(
        [M.ORE, M.CONCENTRATE], [M.OXIDE], [F.SEPARATION_PLANT], "0.005"
    ),
    Process.REDUCTION: ProcessRule([M.OXIDE], [M.METAL], [F.METAL_PLANT], "0.005"),
    Process.ALLOYING: ProcessRule(
        [M.METAL, M.ALLOY, M.SCRAP], [M.ALLOY], [F.ALLOY_PLANT, F.METAL_PLANT], "0.005"
    ),
    Process.MAGNET_MAKING: ProcessRule([M.ALLOY], [M.MAGNET, M.SCRAP], [F.MAGNET_PLANT], "0.005"),
    Process.RECYCLING: ProcessRule(
        [M.SCRAP, M.MAGNET],
        [M.OXIDE, M.METAL, M.ALLOY, M.SCRAP],
        [F.SEPARATION_PLANT, F.ALLOY_PLANT, F.MAGNET_PLANT, F.METAL_PLANT],
        "0.005",
    ),
}
del M, F

#: The most any step may declare: measurement error, not a licence to create material.
MAX_TOLERANCE = Decimal("0.02")

#: Customs headings by material (HS 2022): a shipment's code must start with one of them.
CUSTOMS_HEADINGS: Mapping[Material, tuple[str, ...]] = {
    Material.ORE: ("2530.90",),
    Material.CONCENTRATE: ("2530.90", "2846"),
    Material.OXIDE: ("2846",),
    Material.METAL: ("2805.30",),
    Material.ALLOY: ("2805.30", "7202.99"),
    Material.MAGNET: ("8505.11",),
    Material.SCRAP: ("8505.11", "2846", "8112"),
}


@dataclass(frozen=True)
class ExportControls:
    """Which exports need a licence (MOFCOM's 2025 controls): the metals, alloys, oxides
    and compounds of the seven controlled elements, SmCo magnets, and NdFeB magnets
    containing Tb or Dy. So a batch is controlled when it carries a controlled element
    above ``threshold`` (mass fraction) and, for a magnet, when that element is Sm, Tb or
    Dy. Ores, concentrates and scrap are treated like compounds (the cautious reading).
    A plain NdFeB magnet, or a La/Ce product, ships without a licence."""

    threshold: Decimal = Decimal("0.0001")  # 0.01 wt%: traces below are not "containing"

    def carried(self, material: Material, composition: Mapping[str, Decimal]) -> list[str]:
        """The controlled elements that make this batch controlled (none: uncontrolled)."""
        which = CONTROLLED_IN_MAGNETS if material is Material.MAGNET else CONTROLLED
        return sorted(
            e for e, share in composition.items() if e in which and share > self.threshold
        )


#: An HS / CN tariff code as declared: a 4-digit heading and up to three pairs of digits,
#: each pair after a dot, a space or nothing ("8505.11", "850511", "8505 11 10 00").
TARIFF_CODE = re.compile(r"\A\d{4}([. ]?\d{2}){0,3}\Z")


def tariff_digits(code: str) -> str:
    """The digits of a tariff code: how headings compare, whatever the punctuation."""
    return "".join(c for c in code if c.isdigit())


def tariff_covers(heading: str, code: str) -> bool:
    """A heading covers its subheadings: 8505.11 covers 850511 and 8505111000."""
    return tariff_digits(code).startswith(tariff_digits(heading))


def mass(
    value: object, field: str, *, allow_zero: bool = False, limit: Decimal = MAX_BATCH_KG
) -> Decimal:
    """An exact kilogram figure: finite, positive, at most 6 decimal places."""
    number = _decimal(value, field)
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidInput(field, "mass-positive", f"must be greater than 0 kg, got {number}")
    if number > limit:
        raise InvalidInput(field, "mass-bounded", f"must be at most {limit} kg")
    if -number.as_tuple().exponent > MASS_PLACES:  # type: ignore[operator]
        raise InvalidInput(
            field, "mass-precision", f"at most {MASS_PLACES} decimal places (milligrams)"
        )
    return number


def price(value: object, field: str) -> Decimal:
    """A contract's total price: exact, not negative, at most 2 decimal places."""
    number = _decimal(value, field)
    if number < 0:
        raise InvalidInput(field, "price-not-negative", f"must not be negative, got {number}")
    if number > MAX_PRICE:
        raise InvalidInput(field, "price-bounded", f"must be at most {MAX_PRICE}")
    if -number.as_tuple().exponent > 2:  # type: ignore[operator]
        raise InvalidInput(field, "price-precision", "at most 2 decimal places")
    return number


def fraction(value: object, field: str) -> Decimal:
    number = _decimal(value, field)
    if not ZERO <= number <= ONE:
        raise InvalidInput(field, "fraction-range", f"must be between 0 and 1, got {number}")
    if -number.as_tuple().exponent > FRACTION_PLACES:  # type: ignore[operator]
        raise InvalidInput(field, "fraction-precision", f"at most {FRACTION_PLACES} decimals")
    return number


def composition(value: Mapping[str, object], field: str) -> dict[str, Decimal]:
    """Mass fraction per element; the fractions may sum to less than 1 (the rest is
    untraced: gangue, moisture), never to more."""
    if not value:
        raise InvalidInput(field, "composition-required", "name at least one element")
    result: dict[str, Decimal] = {}
    for element, share in value.items():
        if element not in KNOWN_ELEMENTS:
            raise InvalidInput(
                f"{field}.{element}", "element-symbol", f"{element!r} is not a known element symbol"
            )
        share_ = fraction(share, f"{field}.{element}")
        if share_ > 0:
            result[element] = share_
    total = sum(result.values(), ZERO)
    if total > ONE:
        raise InvalidInput(field, "composition-sum", f"fractions sum to {total}, more than 1")
    if not result:
        raise InvalidInput(field, "composition-required", "name at least one element above 0")
    return result


def element_masses(kg: Decimal, comp: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {element: EXACT.multiply(kg, share) for element, share in comp.items()}


def reo_kg(kg: Decimal, comp: Mapping[str, Decimal]) -> Decimal:
    """Rare-earth content stated as oxide (REO) kilograms, the unit of quotas."""
    total = ZERO
    for element, share in comp.items():
        factor = OXIDE_FACTOR.get(element)
        if factor is not None:
            total = EXACT.add(total, EXACT.multiply(EXACT.multiply(kg, share), factor))
    return total.quantize(Decimal(1).scaleb(-MASS_PLACES), rounding=decimal.ROUND_HALF_EVEN)


def rare_earth_fraction(comp: Mapping[str, Decimal]) -> Decimal:
    return sum((s for e, s in comp.items() if e in RARE_EARTHS), ZERO)


def blend(parts: Iterable[tuple[Decimal, Mapping[str, Decimal]]]) -> dict[str, Decimal]:
    """Mass-weighted composition of a merge. Rounded DOWN to 9 places so that a merged
    batch never claims a gram more of any element than its inputs held."""
    parts = list(parts)
    total = sum((kg for kg, _ in parts), ZERO)
    sums: dict[str, Decimal] = {}
    for kg, comp in parts:
        for element, share in comp.items():
            sums[element] = EXACT.add(sums.get(element, ZERO), EXACT.multiply(kg, share))
    quantum = Decimal(1).scaleb(-FRACTION_PLACES)
    return {
        element: EXACT.divide(s, total).quantize(quantum, rounding=decimal.ROUND_DOWN)
        for element, s in sorted(sums.items())
        if s > 0
    }


def code(value: str, field: str, rule: str = "code") -> str:
    """An actor or facility code, a licence number or a lot code, as given."""
    if not ids.CODE.match(value or ""):
        raise InvalidInput(
            field, rule, "1-64 letters, digits or . _ : - starting with a letter or digit"
        )
    return value


def lot_code(value: str, field: str) -> str:
    """A lot code: the code an actor gives its batch (kept as given, unlike registry codes)."""
    return code(value, field, "lot-code")


#: Reports may be stamped a little ahead of the server clock, never a day ahead.
CLOCK_SKEW = timedelta(minutes=5)


def aware(value: datetime, field: str) -> datetime:
    """A time with its time zone: without one it names a different instant in every zone."""
    if value.tzinfo is None:
        raise InvalidInput(field, "timezone", "give a time zone (e.g. Z or +08:00)")
    return value


def occurred(value: datetime, now: datetime, field: str) -> datetime:
    """When a step happened: with a time zone, and not after the server's ``now``."""
    aware(value, field)
    if value > now + CLOCK_SKEW:
        raise InvalidInput(field, "not-in-future", f"{value.isoformat()} is in the future")
    return value


def one_of(kind: type[E], value: str, field: str, rule: str, *, what: str = "") -> E:
    """The member of ``kind`` named ``value``. The refusal lists the members, or says
    ``value`` is not a ``what`` (the wording material refusals have always had)."""
    try:
        return kind(value)
    except ValueError:
        detail = (
            f"{value!r} is not a {what}"
            if what
            else f"{value!r} is not one of {', '.join(k.value for k in kind)}"
        )
        raise InvalidInput(field, rule, detail) from None


#: A decimal as text: digits with an optional sign, point and exponent. Python's Decimal
#: also reads "1_0_0", " 5 ", "NaN" and "Infinity"; none of them is a mass.
DECIMAL_TEXT = re.compile(r"\A[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, str) and not DECIMAL_TEXT.match(value):
        raise InvalidInput(field, "decimal", f"{value!r} is not a decimal number")
    if isinstance(value, float):
        # Floats cannot say 0.1 exactly; refuse rather than guess.
        raise InvalidInput(field, "exact-decimal", "give masses as exact decimals, not floats")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (decimal.InvalidOperation, ValueError):
        raise InvalidInput(field, "decimal", f"{value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidInput(field, "decimal", "must be a finite number")
    return number
