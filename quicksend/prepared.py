"""A queryset compiled to SQL once per process, then run with new values.

Building and compiling a rich ORM query (annotations, subqueries, joins) costs several times more CPU than
running it, and some run on every request (the token's membership, the sender choice of every send). A
``Prepared`` query keeps the ORM as the one place the query is written: it builds the queryset once with
stand-in values (``sentinels``: an id or a text no real row has), compiles it, and remembers which
parameters were the stand-ins; each run fills them with the real values and reads the rows the way
``QuerySet`` does (its ``select_related`` rows and annotations included, the fields' converters applied).

Only values passed as stand-ins vary between runs: anything else the builder reads (a role, a flag) must
be part of the ``shape`` that picks the compiled form. Nothing is cached but SQL: every run reads the
database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


class _Compiled:
    __slots__ = ("compiler", "sql", "slots", "names", "init_list", "span", "populators", "annotations")

    def __init__(self, queryset: QuerySet, sentinels: dict[str, object]) -> None:
        compiler = queryset.query.get_compiler(using=queryset.db)
        try:
            self.sql, params = compiler.as_sql()
        except EmptyResultSet:  # ``.none()``: no row whatever the values
            self.sql, params = "", []
        by_value = {value: name for name, value in sentinels.items()}
        # Each parameter: (the name of the value that fills it, or None; the constant otherwise).
        self.slots = [(by_value.get(p) if isinstance(p, int | str) else None, p) for p in params]
        self.names = frozenset(name for name, _p in self.slots if name)
        self.compiler = compiler
        if not self.sql:
            return
        info = compiler.klass_info
        first, last = info["select_fields"][0], info["select_fields"][-1] + 1
        self.span = (first, last)
        self.init_list = [column[0].target.attname for column in compiler.select[first:last]]
        self.populators = get_related_populators(info, compiler.select, queryset.db)
        self.annotations = dict(compiler.annotation_col_map or {})


class Prepared:
    """``Prepared(build, **sentinels)``: ``build(shape, **values)`` returns the queryset (of model
    instances) for ``shape``; ``first(shape, **values)`` runs it with ``values`` and returns its first
    instance or None. Thread-safe: what is shared is read only once compiled."""

    def __init__(self, build: Callable[..., QuerySet], **sentinels) -> None:
        self.build = build
        self.sentinels = sentinels
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, shape: Hashable, using: str) -> _Compiled:
        key = (shape, using)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    queryset = self.build(shape, **self.sentinels).using(using)
                    compiled = self._compiled[key] = _Compiled(queryset, self.sentinels)
        return compiled

    def first(self, shape: Hashable = None, *, using: str = "default", **values) -> Model | None:
        compiled = self._for(shape, using)
        if compiled.sql and not compiled.names >= values.keys():
            # A value the compiled SQL does not carry (it was folded into the SQL): it would be ignored.
            raise ValueError(f"the query does not take {sorted(values.keys() - compiled.names)} as values")
        if not compiled.sql:
            return None
        params = [values[name] if name else constant for name, constant in compiled.slots]
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        (row,) = compiled.compiler.results_iter([[row]])
        first, last = compiled.span
        model = compiled.compiler.klass_info["model"]
        obj = model.from_db(using, compiled.init_list, row[first:last])
        for populator in compiled.populators:
            populator.populate(row, obj)
        for name, position in compiled.annotations.items():
            setattr(obj, name, row[position])
        return obj
