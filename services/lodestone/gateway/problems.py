"""The one place where errors become RFC 9457 problem+json responses.

Every problem names the field and the rule broken, so a client can show the person who
made the report exactly what to fix.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from lodestone.domain.refusals import Refusal
from lodestone.gateway import refused
from lodestone.gateway.body import BodyRefused
from lodestone.gateway.schemas.events import EVENT_PATHS

#: The bulk envelope's union puts the event type in the error location; a client wants
#: ``events[1].mass_kg``, not ``events[1].OreExtracted.mass_kg``.
UNION_TAGS = frozenset(model.__name__ for model in EVENT_PATHS.values())

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

STATUS = {"invalid": 422, "rule": 422, "not-found": 404, "forbidden": 403, "conflict": 409}
TITLES = {
    "invalid": "Invalid value",
    "rule": "Business rule broken",
    "not-found": "Not found",
    "forbidden": "Not allowed",
    "conflict": "Conflict",
}


class Problem(BaseModel):
    """RFC 9457 problem details, as every 4xx and 5xx of the API is answered."""

    type: str = Field(examples=["urn:lodestone:problem:mass-available"])
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="The field at fault, as a path: inputs[0].kg")
    rule: str = Field(description="The rule broken, e.g. mass-available, custody, role")
    instance: str | None = None
    errors: list[dict[str, str]] | None = Field(
        None, description="Every invalid field (422), each with field, rule and detail"
    )


def _described(description: str) -> dict[str, Any]:
    # Inline schema under the problem media type (a model in ``responses`` would be
    # documented as application/json, which these answers never are).
    schema = Problem.model_json_schema()
    return {"description": description, "content": {MEDIA_TYPE: {"schema": schema}}}


#: What a read can answer besides its 2xx, for the OpenAPI document.
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _described("No key, or an unknown or revoked one"),
    403: _described("This role may not read this"),
    404: _described("No such batch, actor, facility or licence"),
    422: _described("A parameter is invalid: the problem names it and the rule"),
}
#: What a read that accepts ``wait_for``/``If-Position`` can answer besides.
WAIT_ERRORS: dict[int | str, dict[str, Any]] = {
    503: _described("The read models did not reach the asked position in time; Retry-After"),
}
#: What a write can answer besides its 201.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    404: _described("A reference in the path does not exist"),
    409: _described("A conflicting write (a lot code taken, a concurrent change); nothing stored"),
    422: _described("Invalid input or a business rule broken; nothing stored"),
}


def problem(
    status: int, title: str, detail: str, rule: str, field: str = "", **extra: Any
) -> JSONResponse:
    body = {
        "type": f"urn:lodestone:problem:{rule}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field:
        body["field"] = field
    body["rule"] = rule
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _counted(request: Request, response: JSONResponse, rule: str, field: str) -> JSONResponse:
    """A refused write is also recorded, so that it can be counted (``refused``); a
    failure to record it is logged and never changes the answer."""
    try:
        refused.record(request, response.status_code, rule, field)
    except Exception:
        log.warning("a refused attempt on %s was not recorded", request.url.path, exc_info=True)
    return response


def _refusal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    status = STATUS[exc.kind]
    if exc.kind == "not-found" and exc.field:
        status = 422  # the body names something that does not exist: fix the request
    response = problem(
        status, TITLES[exc.kind], exc.detail, exc.rule, exc.field, instance=request.url.path
    )
    return _counted(request, response, exc.rule, exc.field)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        rule = str(error.get("type", "invalid")).replace("_", "-")
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ""
        if rule != "json-invalid":  # there the location is a byte offset, not a field
            for part in loc:
                if part in UNION_TAGS:
                    continue
                field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
        errors.append({"field": field, "rule": rule, "detail": error.get("msg", "")})
    first = errors[0] if errors else {"field": "", "rule": "invalid", "detail": "invalid request"}
    response = problem(
        422,
        "Invalid request",
        f"{first['field'] or 'request'}: {first['detail']}",
        first["rule"],
        first["field"],
        errors=errors,
        instance=request.url.path,
    )
    return _counted(request, response, first["rule"], first["field"])


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, BodyRefused):
        return problem(
            422, "Invalid request", exc.detail, exc.rule, exc.field, instance=request.url.path
        )
    rule = {
        401: "authentication",
        403: "role",
        404: "not-found",
        405: "method",
        413: "too-large",
        415: "media-type",
        429: "too-many-attempts",
        503: "position-not-reached",  # the only 503 raised: see deps.read_after
    }.get(exc.status_code, "http")
    response = problem(
        exc.status_code, str(exc.detail), str(exc.detail), rule, instance=request.url.path
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return _counted(request, response, rule, "")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Called outside the ``except`` block: the exception is passed explicitly.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500, "Internal error", "the request was not completed; nothing was stored", "internal"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(Refusal, _refusal)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
