"""Exact JSON: one spelling for every value the API writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson


def decimal_text(value: Decimal) -> str:
    """One spelling per value: "0.5", never "0.500000" or "5E-1"."""
    return format(value.normalize(), "f")


def plain(value: Any) -> Any:
    """Decimals as strings (never floats), ids and times as strings, containers walked."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def encoded(answer: Any) -> bytes:
    """A large answer (a trace, a history, an as-of state) already made of JSON values
    (``plain``: decimals as strings) as compact UTF-8 JSON bytes, as the gateway's own
    serialiser writes them, several times faster. An integer beyond 64 bits, which
    orjson refuses, is written by the standard library instead."""
    try:
        return orjson.dumps(answer)
    except orjson.JSONEncodeError:
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
