"""The page for analysts and regulators: one HTML file, its script and stylesheet, and
the charting library, all served by the gateway (no CDN: the machine may have no
internet). The files are public; the data is not: the page signs in with an API key
and calls the API like any other client, so it shows what the key's role may see.

The page's own files are package data beside this package (``gateway/page/``); the
charting library is Plotly's ``plotly.min.js``, read from the installed ``plotly``
distribution (pinned in pyproject), never copied into the repository."""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

#: The page's own files: name -> media type. Anything else is 404.
ASSETS = {
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}
#: Scripts, styles, pictures and requests from the gateway only; the genealogy is shown
#: as a blob: picture (an <img> runs no script); Plotly sets inline styles.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page_file(name: str) -> Path:
    return Path(str(resources.files("lodestone.gateway").joinpath("page", name)))


@cache
def plotly_js() -> Path:
    """``plotly.min.js`` as the installed plotly distribution ships it."""
    found = Path(
        str(metadata.distribution("plotly").locate_file("plotly/package_data/plotly.min.js"))
    )
    if not found.is_file():
        raise FileNotFoundError(f"{found}: is the plotly package installed?")
    return found


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/page", status_code=307)


@router.get("/page")
def page() -> FileResponse:
    return FileResponse(
        _page_file("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS
    )


@router.get("/page/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no page asset {name!r}")
    return FileResponse(_page_file(name), media_type=ASSETS[name], headers=HEADERS)


@router.get("/page/vendor/plotly.min.js")
def plotly() -> FileResponse:
    headers = {**HEADERS, "Cache-Control": "public, max-age=3600"}
    return FileResponse(plotly_js(), media_type="text/javascript; charset=utf-8", headers=headers)
