"""What one gateway process runs: the ledger, the read-model view and, on the embedded
default, the projector thread that follows the event store's notification log."""

from __future__ import annotations

import threading

from lodestone.infra.settings import Settings
from lodestone.infra.wiring import build_genealogy_view, build_ledger
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import GenealogyView
from lodestone.streaming.projector import Projector, genealogy_projector


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger: Ledger = build_ledger(settings)
        self.view: GenealogyView = build_genealogy_view(settings)
        self.projector: Projector | None = (
            genealogy_projector(self.ledger, self.view) if settings.embedded_projector else None
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.projector is not None:
            self._thread = threading.Thread(
                target=self.projector.run,
                args=(self._stop, self.settings.projector_interval),
                name="genealogy-projector",
                daemon=True,
            )
            self._thread.start()

    def fresh_view(self) -> GenealogyView:
        """The view, caught up with every event recorded so far (read-your-writes on
        the embedded default)."""
        if self.projector is not None:
            self.projector.catch_up()
        return self.view

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.view.close()
        self.ledger.close()
