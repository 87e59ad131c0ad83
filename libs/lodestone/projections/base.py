"""What every projection and every view is, whatever it projects.

A projection has a name and a version and turns each event into rows through a writer;
it routes events by class through a table built from ``@handles`` marks, so adding an
event kind to a projection is one marked method. A view is one projection's tables in
one database: it writes a batch's rows and the positions reached in one transaction,
keeps those positions under the projection's name (two projections in one database
never share them), and can be emptied and rebuilt alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Generic, Protocol, TypeVar

W = TypeVar("W")
Method = TypeVar("Method", bound=Callable[..., None])
Handler = Callable[[Any, Any, Any], None]


class Projection(Protocol):
    name: str  # keys its positions and its consumer group
    version: int  # bump when its rows change meaning: a rebuild from position 0 follows

    def process_event(self, event: Any, writer: Any) -> None: ...


def handles(*event_classes: type) -> Callable[[Method], Method]:
    """Marks a method of a :class:`Dispatching` projection as the handler of these event
    classes and of their subclasses that have no handler of their own."""

    def mark(method: Method) -> Method:
        method.__handles__ = event_classes  # type: ignore[attr-defined]
        return method

    return mark


class Dispatching:
    """``process_event`` through a table keyed by event class: the handler marked for
    the event's class, or else for its nearest base class (``Batch.OreExtracted`` falls
    back to ``Batch.Created``). Events no handler claims change nothing."""

    _table: ClassVar[dict[type, Handler]] = {}
    _resolved: ClassVar[dict[type, Handler | None]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, Handler] = {}
        for klass in reversed(cls.__mro__):  # a subclass's marks override its bases'
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "__handles__", ()):
                    table[event_class] = attribute
        cls._table = table
        cls._resolved = {}

    @classmethod
    def handled(cls) -> frozenset[type]:
        """The event classes with a handler of their own."""
        return frozenset(cls._table)

    @classmethod
    def handler(cls, event_class: type) -> Handler | None:
        try:
            return cls._resolved[event_class]
        except KeyError:
            found = next((cls._table[k] for k in event_class.__mro__ if k in cls._table), None)
            cls._resolved[event_class] = found
            return found

    def process_event(self, event: Any, writer: Any) -> None:
        handler = self.handler(type(event))
        if handler is not None:
            handler(self, event, writer)


class ModelReplaced(Exception):
    """The projection's rows were replaced (reset, or a rebuilt copy switched in) after
    this writer read its positions: nothing was written; read the positions again."""

    def __init__(self, projection: str, generation: int) -> None:
        super().__init__(f"read model {projection} was replaced (generation {generation})")
        self.projection = projection
        self.generation = generation


class ModelUpgraded(Exception):
    """The projection's rows are now of another version than this writer's: nothing was
    written, and nothing this process writes would be right (restart it on that release)."""


class View(ABC, Generic[W]):
    """One projection's rows in one database (one implementation per database)."""

    @abstractmethod
    def transaction(self, positions: Mapping[str, int]) -> AbstractContextManager[W]:
        """Rows written through the writer and the new tracking ``positions`` (per
        source: the notification log, or a Kafka topic partition) commit together or
        not at all. Raises :class:`ModelReplaced` (nothing written) if the rows were
        replaced since this view last read its positions."""

    def at(self, source: str, position: int) -> None:
        """The events given to the open transaction's writer from now on come from this
        position of ``source`` (what the change log records of the rows they write).
        Views without a change log ignore it."""
        return None

    @abstractmethod
    def position(self, source: str) -> int:
        """How far this projection has come in ``source`` (0: not started)."""

    @abstractmethod
    def reset(self) -> None:
        """Empty this projection's rows and positions, and no other projection's: the
        next run rebuilds it from position 0."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A digest of every row, to prove a rebuild ends in the same state."""

    def close(self) -> None:
        return None
