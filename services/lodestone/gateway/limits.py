"""Limits applied before a request reaches a route."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from lodestone.gateway.problems import problem


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit`` bytes is refused with 413
    before it is read whole. A declared Content-Length over the limit is answered at once;
    a body without one is counted as it arrives and refused once it passes the limit (the
    route then answers the problem, nothing having been parsed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the body is larger than {self.limit:,} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            answer = problem(
                413, "Content too large", detail, "too-large", instance=scope.get("path", "")
            )
            answer.headers["connection"] = "close"
            await answer(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)
