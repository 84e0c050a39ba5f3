"""Rows for bulk inserts that bypass the ORM, with every column the ORM would have filled.

Model defaults live in Python (``default=``), not in the database, so a raw insert must supply
them. :class:`TableRows` reads them from the table once: the seeder names the columns it
chooses, and every other required column gets its model default. A required column without a
default fails at once, naming the column, rather than half-way through a seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.sql.schema import ColumnDefault


def _default_value(column: Any) -> Any:
    default = column.default
    if not isinstance(default, ColumnDefault):
        raise ValueError(f"{column.table.name}.{column.name} is required and has no default")
    value = default.arg(None) if default.is_callable else default.arg
    if isinstance(column.type, JSON):
        return json.dumps(value)
    return value


class TableRows:
    """Column names and the constant tail of each row for one table."""

    def __init__(self, table: Table, chosen: Sequence[str]) -> None:
        self.table = table
        unknown = set(chosen) - set(table.columns.keys())
        if unknown:
            raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
        defaulted: list[str] = []
        values: list[Any] = []
        for column in table.columns:
            if column.name in chosen or column.nullable:
                continue
            defaulted.append(column.name)
            values.append(_default_value(column))
        self.columns: tuple[str, ...] = (*chosen, *defaulted)
        self.tail: tuple[Any, ...] = tuple(values)

    @property
    def name(self) -> str:
        return self.table.name

    def row(self, *values: Any) -> tuple[Any, ...]:
        return values + self.tail
