"""What every request body shares: no unknown fields, and how a body becomes the
ledger command it asks for."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from lodestone.domain.values import DECIMAL_TEXT
from lodestone.ledger.commands import Command


def _decimal_text(value: Any) -> Any:
    # pydantic reads "1_0_0" and " 100" as Decimal (Python's Decimal does): the ledger's
    # rule for decimals as text applies before it does. JSON numbers arrive as Decimal.
    if isinstance(value, str) and not DECIMAL_TEXT.match(value):
        raise PydanticCustomError(
            "decimal_parsing", "{value!r} is not a decimal number", {"value": value}
        )
    return value


#: A decimal sent as a JSON number (read exactly) or as plain decimal text.
ExactDecimal = Annotated[Decimal, BeforeValidator(_decimal_text)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandIn(Strict):
    """A body that asks for one ledger command, field for field."""

    #: The ledger command a body of this model becomes; it also says who may submit it.
    command: ClassVar[type[Command]]
    #: Fields that are the request's and not the command's (the bulk envelope's tag).
    request_only: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A field the command does not take would be lost on the way: refuse at import.
        if "command" in cls.__dict__:
            taken = {f.name for f in dataclasses.fields(cls.command)}
            lost = set(cls.model_fields) - cls.request_only - taken
            if lost:
                raise TypeError(
                    f"{cls.__name__}: {cls.command.__name__} has no field {', '.join(sorted(lost))}"
                )

    def to_command(self) -> Command:
        """Every field passed on by its name, in the form ``converted`` gives, if any."""
        fields = {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name not in self.request_only
        }
        return self.command(**(fields | self.converted()))

    def converted(self) -> dict[str, object]:
        """The fields the command takes in another form (nested models become the
        domain's values)."""
        return {}
