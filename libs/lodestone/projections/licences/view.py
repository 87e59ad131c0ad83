"""What the licences projection writes and reads back while it writes (``Writer``) and
what its readers ask of a view (``LicencesView``), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Protocol
from uuid import UUID

from lodestone.projections.base import View
from lodestone.projections.licences.rows import Draw, LicenceRow, Party


class Writer(Protocol):
    """Inside one transaction of the view. A draw adds to what the licence had drawn, so
    the projection reads the licence back: what this transaction wrote, else what is
    stored. A licence's events arrive in order (one aggregate, one Kafka partition)."""

    def licence(self, id: UUID) -> LicenceRow | None: ...
    def draws(self, licence_id: UUID) -> list[Draw]: ...
    def save_licence(self, row: LicenceRow) -> None: ...
    def save_draw(self, draw: Draw) -> None: ...
    def save_party(self, party: Party) -> None: ...


class LicencesView(View[Writer]):
    """One implementation per database (``sqlite``, ``postgres`` beside this module)."""

    @abstractmethod
    def licences(self) -> list[LicenceRow]:
        """Every licence and quota, by number."""

    @abstractmethod
    def licences_by_id(self, ids: Iterable[UUID]) -> dict[UUID, LicenceRow]: ...

    @abstractmethod
    def draws_of(self, ids: Iterable[UUID]) -> list[Draw]:
        """The draws of these licences, by licence and version."""

    @abstractmethod
    def parties(self, ids: Iterable[UUID]) -> dict[UUID, Party]: ...
