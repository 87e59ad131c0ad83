"""Every threshold of the anomaly rules, in one place, with its default.

``Thresholds()`` are the defaults; a deployment overrides any of them by name with the
``LODESTONE_ANOMALY_THRESHOLDS`` setting (JSON, e.g. ``{"stress_share": "0.998"}``),
read once per process (``Thresholds.with_overrides``). The rules are evaluated when the
view is read, so a changed threshold applies at the next query, with no rebuild.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Thresholds:
    #: mass-balance-stress: a step whose outputs carry more than this share of what its
    #: inputs carried of a rare earth (the write side refuses more than 1 + tolerance).
    stress_share: Decimal = Decimal("0.999")
    #: mass-balance-stress: elements carried in smaller amounts are not judged.
    stress_min_kg: Decimal = Decimal("0.001")
    #: smuggling-cover: sold or exported more than (1 + margin) x produced and bought.
    smuggling_margin: Decimal = Decimal("0")
    #: licence-refusals: this many refused attempts on one licence or quota (or by one
    #: actor with none named) for licence or quota rules.
    refusal_count: int = 3
    #: untraced-content: more than this share of a rare earth from outside any quota.
    untraced_share: Decimal = Decimal("0.5")
    #: untraced-content: elements carried in smaller amounts are not judged.
    untraced_min_kg: Decimal = Decimal("1")
    #: extraction-surge: the window the rate is measured over, in days...
    extraction_window_days: int = 30
    #: ...the history a mine needs before the window, in days...
    extraction_history_days: int = 60
    #: ...and how many times its historical rate the window's must exceed.
    extraction_factor: Decimal = Decimal("3")
    #: under-invoicing: a price per kg of rare-earth content below this share of the
    #: median of its group...
    price_share: Decimal = Decimal("0.5")
    #: ...in a group of at least this many priced sales (itself included).
    price_min_sales: int = 3
    #: round-trip: goods that come back within this many days.
    round_trip_days: int = 365

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, object]) -> Thresholds:
        """The defaults with ``overrides`` applied; an unknown name or a value of the
        wrong kind is refused (ValueError), so a typo cannot silently keep a default."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for name, raw in overrides.items():
            if name not in fields:
                raise ValueError(f"no anomaly threshold {name!r}; there are: {', '.join(fields)}")
            default = getattr(cls(), name)
            try:
                if isinstance(default, Decimal):
                    if isinstance(raw, float):
                        raise ValueError("give decimals as strings, not floats")
                    number = Decimal(str(raw))
                    if not number.is_finite() or number < 0:
                        raise ValueError("a finite number, not negative")
                    values[name] = number
                else:
                    if isinstance(raw, bool) or not isinstance(raw, int | str):
                        raise ValueError("a whole number")
                    whole = int(raw)
                    if whole < 0:
                        raise ValueError("not negative")
                    values[name] = whole
            except (InvalidOperation, ValueError) as error:
                raise ValueError(f"anomaly threshold {name}: {raw!r}: {error}") from None
        return cls(**values)  # type: ignore[arg-type]

    def as_text(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in dataclasses.fields(self)}
