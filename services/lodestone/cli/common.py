"""What the commands that read a data directory share: its option, the settings it
gives, and the stores they open from those settings and close when done."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Protocol

import typer

from lodestone.bootstrap.settings import Settings

DataDir = Annotated[
    Path | None, typer.Option(help="Data directory (default: LODESTONE_DATA_DIR or ./var)")
]


def settings_for(data_dir: Path | None) -> Settings:
    """The settings of ``--data-dir`` if given, else of the environment."""
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


class Closable(Protocol):
    def close(self) -> None: ...


@contextlib.contextmanager
def closed_after(*opened: Closable) -> Iterator[None]:
    """Closes what a command opened when it is done, the last opened first."""
    try:
        yield
    finally:
        for thing in reversed(opened):
            thing.close()
