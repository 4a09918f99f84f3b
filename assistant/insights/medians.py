"""Medians of waits computed in the database: only the one or two middle values of each group are read, not
every wait of a year (a window function ranks them; SQLite and PostgreSQL alike)."""

from __future__ import annotations

from sqlalchemy import Float, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from assistant.records.reports import median


class seconds_between(FunctionElement):
    """`later` - `earlier` in seconds, for two timestamp columns."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"


def median_minutes(session, later, earlier, where, group=None) -> dict:
    """The median minutes from `earlier` to `later` (rounded to a tenth, as `reports.median`) of the rows
    `where` selects, per value of `group` (one group, keyed None, without)."""
    wait = seconds_between(later, earlier)
    key = (group if group is not None else literal(None)).label("key")
    partition = {"partition_by": group} if group is not None else {}
    ranked = select(
        key,
        wait.label("wait"),
        func.row_number().over(order_by=wait, **partition).label("n"),
        func.count().over(**partition).label("size"),
    ).where(where)
    ranked = ranked.subquery()
    middle = select(ranked.c.key, ranked.c.wait).where(
        ranked.c.n * 2 >= ranked.c.size, ranked.c.n * 2 <= ranked.c.size + 2
    )
    values: dict = {}
    for k, seconds in session.execute(middle):
        values.setdefault(k, []).append(float(seconds) / 60)
    return {k: median(v) for k, v in values.items()}
