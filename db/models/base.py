"""The base class of every table model: SQLModel, with the `__table__` that SQLModel sets but does not declare."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Table
from sqlmodel import SQLModel

if TYPE_CHECKING:

    class TableModel(SQLModel):
        # SQLModel gives every `table=True` class its Table as `__table__` (queries use `Model.__table__.c`),
        # but its types do not say so; this declares it for the type checker.
        __table__: ClassVar[Table]

else:
    # At run time the models derive from SQLModel itself, exactly as before.
    TableModel = SQLModel
