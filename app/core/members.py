"""``column IN (values)`` with SQL that does not change with the number of values.

SQLAlchemy renders ``in_`` with one bind parameter per value, so a batch of a
thousand ids is a new statement text each time: the driver prepares it again
and PostgreSQL parses and plans it again. The statistics projector's batches
vary in size with every run, and that cost rose per event as batches grew
(bench/README.md). On PostgreSQL the values go as one array (``= ANY``), so
the statement is prepared once; other backends keep ``IN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, any_, literal
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement


def one_of(session: AsyncSession, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    listed = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(listed, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(listed)  # type: ignore[no-any-return]
