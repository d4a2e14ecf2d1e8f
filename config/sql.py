"""SQL for the sign-in hot path: statements built once from the models' metadata and run on
a plain cursor, so a request does not pay the ORM's query compilation on every call.

Measured on PostgreSQL (``bench/profile.py``): a user looked up by tenant and id with the
ORM costs ~0.7 ms of CPU, the same statement here ~0.09 ms; an ORM ``create`` ~0.22 ms, an
INSERT here ~0.09 ms. The sign-in, MFA and refresh endpoints make several of these per
request, against an empty view's 0.1 ms. Everything else uses the ORM.

Only what those paths need: a row by equality (``get``), ``insert`` of an unsaved instance,
``write_together`` for writes that belong to one event (INSERTs and UPDATEs by primary
key; one statement on PostgreSQL), and ``write_if``: the same, only if a conditional UPDATE
(a guard) matched a row. Values go through each field's ``get_db_prep_*`` and rows
come back through the backend's and the fields' converters, exactly as the ORM does, so
SQLite and PostgreSQL both work. Statements are cached per
model and columns; they hold no values.
"""
from functools import lru_cache

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction


def prepared_cursor(conn):
    """A cursor for the hot path's statements: on PostgreSQL one that binds on the server, so
    each statement is prepared once per connection (``config.postgresql``); else the usual."""
    prepared = getattr(conn, "prepared_cursor", None)
    return prepared() if prepared is not None else conn.cursor()


def _conn(model, *, write: bool):
    return connections[router.db_for_write(model) if write else router.db_for_read(model)]


def columns(model, alias: str = "") -> str:
    """The model's concrete columns in field order (what ``load`` expects), optionally qualified."""
    return _columns(model, alias)


@lru_cache(maxsize=None)
def _columns(model, alias: str) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + f'"{f.column}"' for f in model._meta.concrete_fields)


def width(model) -> int:
    """How many columns ``columns(model)`` has: to slice a joined row."""
    return len(model._meta.concrete_fields)


@lru_cache(maxsize=None)
def _converters(model, alias: str):
    conn = connections[alias]
    out = []
    for field in model._meta.concrete_fields:
        col = field.get_col(model._meta.db_table)
        out.append((col, conn.ops.get_db_converters(col) + field.get_db_converters(conn)))
    return out


def load(model, row, conn=None):
    """An instance from a row of ``columns(model)``, as the ORM would build it (``Model.from_db``)."""
    conn = conn or _conn(model, write=False)
    values = []
    for value, (col, converters) in zip(row, _converters(model, conn.alias)):
        for convert in converters:
            value = convert(value, col, conn)
        values.append(value)
    return model.from_db(conn.alias, None, values)


def load_joined(row, *models, conn=None) -> list:
    """One instance per model from a row of their ``columns`` one after another (a join);
    None for a model whose columns are all NULL (an outer join without a match)."""
    out, at = [], 0
    for model in models:
        part = row[at:at + width(model)]
        at += len(part)
        out.append(None if all(v is None for v in part) else load(model, part, conn))
    return out


def _field(model, name: str):
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def prep(model, name: str, value, conn):
    """A Python value as the database takes it for the field ``name`` (lookups and SET)."""
    return _field(model, name).get_db_prep_value(value, conn, prepared=False)


@lru_cache(maxsize=None)
def _select(model, keys: tuple) -> str:
    where = " AND ".join(f'"{_field(model, k).column}" = %s' for k in keys)
    return f'SELECT {columns(model)} FROM "{model._meta.db_table}" WHERE {where}'


def get(model, **where):
    """The one row matching every ``field=value`` (a unique key), or None."""
    conn = _conn(model, write=False)
    keys = tuple(where)
    with prepared_cursor(conn) as cursor:
        cursor.execute(_select(model, keys), [prep(model, k, where[k], conn) for k in keys])
        row = cursor.fetchone()
    return load(model, row, conn) if row is not None else None


@lru_cache(maxsize=None)
def _update(model, keys: tuple) -> str:
    opts = model._meta
    sets = ", ".join(f'"{_field(model, k).column}" = %s' for k in keys)
    return f'UPDATE "{opts.db_table}" SET {sets} WHERE "{opts.pk.column}" = %s'


def update_statement(model, pk, conn=None, **values) -> tuple[str, list]:
    """``UPDATE … SET field = value … WHERE pk = pk`` and its parameters."""
    conn = conn or _conn(model, write=True)
    keys = tuple(values)
    return _update(model, keys), [prep(model, k, values[k], conn) for k in keys] + [prep(model, "pk", pk, conn)]


@lru_cache(maxsize=None)
def _insert(model, returning: bool) -> tuple[str, tuple]:
    opts = model._meta
    fields = tuple(f for f in opts.concrete_fields if not (f.primary_key and f.db_returning))
    cols = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'INSERT INTO "{opts.db_table}" ({cols}) VALUES ({", ".join(["%s"] * len(fields))})'
    if returning and opts.pk.db_returning:
        sql += f' RETURNING "{opts.pk.column}"'
    return sql, fields


def insert_statement(obj, conn=None, *, returning: bool = False) -> tuple[str, list]:
    """The INSERT of an unsaved instance (see ``insert``) and its parameters."""
    model = type(obj)
    conn = conn or _conn(model, write=True)
    sql, fields = _insert(model, returning)
    return sql, [f.get_db_prep_save(f.pre_save(obj, add=True), conn) for f in fields]


def insert(obj):
    """INSERT an unsaved instance, as ``save(force_insert=True)`` would write it (defaults and
    ``auto_now_add`` applied by each field's ``pre_save``; an auto primary key read back),
    without signals or validation. Returns ``obj``."""
    model = type(obj)
    conn = _conn(model, write=True)
    returning = conn.features.can_return_columns_from_insert
    with prepared_cursor(conn) as cursor:
        cursor.execute(*insert_statement(obj, conn, returning=returning))
        if model._meta.pk.db_returning:  # an auto primary key: the database chose it
            obj.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    obj._state.adding = False
    obj._state.db = conn.alias
    return obj


def write_together(*statements: tuple[str, list]) -> None:
    """Several writes that belong together (each from ``insert_statement`` or
    ``update_statement``, none depending on another's result), atomically.

    On PostgreSQL they are ONE statement, each a data-modifying CTE of the last: one round
    trip, atomic by itself, and inside a caller's transaction part of it. Elsewhere they run
    one after another in a transaction (a savepoint-free ``atomic``)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        *first, (last_sql, last_params) = statements
        ctes = ", ".join(f"w{i} AS ({stmt})" for i, (stmt, _params) in enumerate(first))
        params = [p for _stmt, ps in first for p in ps] + list(last_params)
        with prepared_cursor(conn) as cursor:
            cursor.execute((f"WITH {ctes} " if ctes else "") + last_sql, params)
        return
    with transaction.atomic(savepoint=False), prepared_cursor(conn) as cursor:
        for stmt, params in statements:
            cursor.execute(stmt, params)


def _only_if(statement: str, condition: str) -> str:
    """An ``insert_statement`` or ``update_statement`` that writes nothing unless ``condition``."""
    if statement.startswith("INSERT INTO"):
        head, values = statement.split(" VALUES (", 1)
        return f"{head} SELECT {values[:-1]} WHERE {condition}"
    return f"{statement} AND {condition}"


def write_if(guard: tuple[str, list], *statements: tuple[str, list]) -> bool:
    """``write_together(*statements)``, only if ``guard`` (a conditional ``UPDATE``, its
    check and its write one statement: a replay guard, say) matched a row; all of it or none
    of it. Returns whether the guard matched.

    On PostgreSQL ONE statement: the guard is the first data-modifying CTE and every other
    write is made conditional on its row (``INSERT … SELECT … WHERE EXISTS``, ``UPDATE …
    AND EXISTS``). Elsewhere, in a transaction: the guard, then the rest if it matched. The
    guard and the writes must change different rows: PostgreSQL applies only one of two
    changes to one row within a statement."""
    conn = connections[DEFAULT_DB_ALIAS]
    guard_sql, guard_params = guard
    if conn.vendor == "postgresql":
        matched = "EXISTS (SELECT 1 FROM g)"
        ctes = [f"g AS ({guard_sql} RETURNING 1)"]
        ctes += [f"w{i} AS ({_only_if(stmt, matched)})" for i, (stmt, _params) in enumerate(statements)]
        params = list(guard_params) + [p for _stmt, ps in statements for p in ps]
        with prepared_cursor(conn) as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT count(*) FROM g", params)
            return cursor.fetchone()[0] > 0
    with transaction.atomic(savepoint=False), prepared_cursor(conn) as cursor:
        cursor.execute(guard_sql, guard_params)
        if cursor.rowcount < 1:
            return False
        for stmt, params in statements:
            cursor.execute(stmt, params)
    return True
