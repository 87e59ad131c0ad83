"""How the report spells masses, shares and times for people: in its sentences, in the
drawn genealogy and as the templates' filters. The JSON keeps the exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lodestone.reads.json import plain


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def format_kg(text: Any) -> str:
    """``"10000.5"`` -> ``"10,000.5"``: grouped for reading, never rounded."""
    value = _decimal(text) if text is not None else None
    return "" if value is None else format(value, ",f")


def format_share(text: Any) -> str:
    value = _decimal(text)
    return "" if value is None else f"{(value * 100).quantize(Decimal('0.01'))} %"


def format_time(text: Any) -> str:
    if not text:
        return ""
    moment = datetime.fromisoformat(str(text)).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def kg(value: Any) -> str:
    """A mass in a sentence: ``Decimal("10000")`` -> ``"10,000 kg"``."""
    return f"{format_kg(plain(value))} kg"
