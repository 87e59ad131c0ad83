"""Request bodies read exactly: JSON numbers from their text, no duplicate keys, no text
that the stores cannot keep.

The standard ``json.loads`` reads ``100.000000000000000000000000001`` as the float 100
before any rule sees it, and keeps the last of two equal keys silently. Every route that
takes a JSON body uses :class:`ExactJSONRoute`, whose request parses numbers with a
fraction or exponent as ``Decimal`` (integers stay ``int``), so the same decimal rules
apply whatever the spelling. It answers 415 to a body sent as anything but JSON, and
refuses (422 problem+json naming the field and the rule):

- a body that is not UTF-8 text (``encoding``);
- a key given twice in one object (``duplicate-key``);
- ``NaN`` / ``Infinity`` (``decimal``), an integer too long to read (``number-too-long``),
  nesting too deep to read (``nesting-depth``);
- a NUL character (PostgreSQL cannot store it, SQLite can: both answer the same) or a lone
  surrogate (not a character; it cannot be hashed as UTF-8) anywhere (``text``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException


class BodyRefused(HTTPException):
    """A body that cannot be read as exact JSON: 422, naming the field and the rule."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(422, detail)
        self.field = field
        self.rule = rule


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise BodyRefused(key, "duplicate-key", f"{key!r} is given twice in one object")
        found[key] = value
    return found


def _constant(name: str) -> Any:
    raise BodyRefused("", "decimal", f"{name} is not a number JSON allows")


def _check_text(value: Any, path: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise BodyRefused(path, "text", "text may not contain the NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BodyRefused(path, "text", "text may not contain a lone surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path or key)
            _check_text(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_text(item, f"{path}[{n}]")


def parse(body: bytes) -> Any:
    """The body as exact JSON, or BodyRefused. A syntax error stays a JSONDecodeError,
    which FastAPI answers as ``json-invalid`` with its position."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyRefused(
            "", "encoding", f"the body is not UTF-8 text (byte {error.start})"
        ) from None
    try:
        value = json.loads(
            text, parse_float=Decimal, parse_constant=_constant, object_pairs_hook=_unique
        )
    except RecursionError:
        raise BodyRefused("", "nesting-depth", "the body is nested too deeply to read") from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # int() refuses more than sys.get_int_max_str_digits()
        raise BodyRefused("", "number-too-long", str(error)) from None
    # NUL and lone surrogates can only arrive escaped (\u0000, \ud800): raw NUL is not
    # valid JSON and UTF-8 cannot encode a surrogate. Walk only bodies that escape.
    if "\\u" in text:
        _check_text(value, "")
    return value


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`parse`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def exact(request: Request) -> Response:
            if takes_json and not _is_json(request.headers.get("content-type", "")):
                raise HTTPException(415, "send the body as application/json")
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact
