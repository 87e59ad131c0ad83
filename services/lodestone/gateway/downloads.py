"""File answers: the Content-Disposition header of every download, built one way."""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def disposition(kind: str, filename: str) -> dict[str, str]:
    """``{"Content-Disposition": ...}`` for ``kind`` (inline | attachment): a plain ASCII
    ``filename`` (anything else becomes ``_``, so no quote, newline or control character
    can break the header) and the exact name as RFC 6266 / RFC 5987 ``filename*``."""
    plain = _UNSAFE.sub("_", filename)
    return {
        "Content-Disposition": f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename)}"
    }
