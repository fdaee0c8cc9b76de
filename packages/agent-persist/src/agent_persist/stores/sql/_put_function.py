"""The PostgreSQL function that runs a whole ``put`` on the server, and the DDL creating it.

    create_put_function(conn, schema="agents", version=2)   # DDL step 4, inside migrate()
    statement = put_call("agents")    # SELECT ... FROM "agents".agent_persist_put_2($1, ...)

The body runs the statements of ``checkpoints.put`` in the same order (see
:mod:`._server_put` for why a function and how it is called). It is created in the store's
schema with the table names qualified by it (quoted), so schema-per-namespace deployments
each get their own; without ``schema=``, it and the tables it names are found through
``search_path``, like every other statement of the store. Its name carries a number: a
later change appends a DDL step creating the next; a body, once released, is never edited
(a database may hold it, and an older release of the store may still call it).

Version 2 (DDL step 4) takes ``p_firsts``: on an encrypted store each log item is sealed
bound to its position, so the caller says where each log's first item must land, and the
function refuses (``AP005``, the positions it would give now as the DETAIL) when another
writer moved a log since. ``NULL`` checks nothing, as version 1 did.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

__all__ = [
    "HEAD_MOVED",
    "ID_TAKEN",
    "LEASE_LOST",
    "POSITIONS_MOVED",
    "PUT_FUNCTION",
    "PUT_PARAMETERS",
    "SLOW",
    "create_put_function",
    "put_call",
]

_NAME = "agent_persist_put_{}"
PUT_FUNCTION = _NAME.format(2)
"""The function the store calls."""

LEASE_LOST = "AP001"
HEAD_MOVED = "AP002"
ID_TAKEN = "AP003"
SLOW = "AP004"
POSITIONS_MOVED = "AP005"

_BODY = """
DECLARE
    v_head text;
    v_updated double precision;
    v_next bigint;
    v_log record;
    v_version bigint;
BEGIN
    IF p_lease_token IS NOT NULL THEN
        PERFORM 1 FROM {leases}
            WHERE key = p_key AND token = p_lease_token AND expires_at > p_now FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '{lease_lost}', MESSAGE = 'agent-persist: lease lost';
        END IF;
    END IF;
    IF p_parent_id IS NULL THEN
        SELECT pk, head_id, updated_at INTO o_pk, v_head, v_updated
            FROM {threads} WHERE key = p_key FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO {threads} (key, namespace, thread_id, head_id, kind, schema_version,
                step, status, metadata, checkpoint_count, next_position, updated_at)
            VALUES (p_key, p_namespace, p_thread_id, NULL, NULL, NULL, -1, NULL, '{{}}',
                0, 0, p_now)
            ON CONFLICT (key) DO NOTHING RETURNING pk INTO o_pk;
            IF o_pk IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = '{slow}', MESSAGE = 'agent-persist: thread raced';
            END IF;
        ELSIF p_ttl IS NOT NULL AND p_now - v_updated >= p_ttl THEN
            RAISE EXCEPTION USING ERRCODE = '{slow}', MESSAGE = 'agent-persist: thread expired';
        ELSIF v_head IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '{head_moved}', MESSAGE = 'agent-persist: conflict',
                DETAIL = to_jsonb(v_head)::text;
        END IF;
        UPDATE {threads} SET head_id = p_head_id, kind = p_kind,
                schema_version = p_schema_version, step = p_step, status = p_status,
                metadata = p_metadata, checkpoint_count = checkpoint_count + 1,
                next_position = next_position + 1, updated_at = p_now
            WHERE pk = o_pk
            RETURNING checkpoint_count, next_position INTO o_count, v_next;
    ELSE
        UPDATE {threads} SET head_id = p_head_id, kind = p_kind,
                schema_version = p_schema_version, step = p_step, status = p_status,
                metadata = p_metadata, checkpoint_count = checkpoint_count + 1,
                next_position = next_position + 1, updated_at = p_now
            WHERE key = p_key AND head_id = p_parent_id AND updated_at > p_alive_after
            RETURNING pk, checkpoint_count, next_position INTO o_pk, o_count, v_next;
        IF NOT FOUND THEN
            SELECT head_id INTO v_head
                FROM {threads} WHERE key = p_key AND updated_at > p_alive_after;
            RAISE EXCEPTION USING ERRCODE = '{head_moved}', MESSAGE = 'agent-persist: conflict',
                DETAIL = coalesce(to_jsonb(v_head)::text, 'null');
        END IF;
    END IF;
    FOR v_log IN SELECT pk, version, pinned FROM {logs}
            WHERE thread_pk = o_pk AND name_key = ANY (p_clear_keys) AND length <> 0
            ORDER BY pk
    LOOP
        v_version := v_log.version + 1;
        UPDATE {logs} SET version = v_version, length = 0 WHERE pk = v_log.pk;
        DELETE FROM {items} WHERE log_pk = v_log.pk AND removed_at IS NULL
            AND seq >= 0 AND seq > v_log.pinned;
        UPDATE {items} SET removed_at = v_version
            WHERE log_pk = v_log.pk AND removed_at IS NULL AND seq >= 0;
    END LOOP;
    IF cardinality(p_name_keys) > 0 THEN
        WITH bumped AS (
            INSERT INTO {logs} AS l (thread_pk, name_key, name, version, pinned, length)
            SELECT o_pk, w.name_key, w.name, w.n, 0, w.n
                FROM unnest(p_name_keys, p_names, p_counts) AS w (name_key, name, n)
            ON CONFLICT (thread_pk, name_key) DO UPDATE
                SET version = l.version + excluded.version, length = l.length + excluded.length
            RETURNING l.pk, l.name_key, l.version
        )
        INSERT INTO {items} (log_pk, seq, data)
        SELECT b.pk, b.version - i.back, i.data
            FROM bumped AS b
            JOIN unnest(p_item_keys, p_datas, p_backs) AS i (name_key, data, back)
                ON i.name_key = b.name_key;
    END IF;
    WITH pinned_logs AS (
        UPDATE {logs} SET pinned = version WHERE thread_pk = o_pk RETURNING name, version
    )
    SELECT coalesce('{{' || string_agg(to_json(name)::text || ':' || version::text, ','
            ORDER BY name COLLATE "C") || '}}', '{{}}')
        INTO o_logs FROM pinned_logs;
    INSERT INTO {checkpoints} (thread_pk, id_key, checkpoint_id, position, created_at,
        metadata, header, logs, payload)
    VALUES (o_pk, p_id_key, p_head_id, v_next - 1, p_created_at, p_metadata, p_header,
        o_logs, p_payload)
    ON CONFLICT (thread_pk, id_key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '{id_taken}', MESSAGE = 'agent-persist: id taken';
    END IF;
END
"""
"""Version 1's body (``{names}`` filled in); SQLSTATEs of class ``AP`` are our refusals."""

_APPENDS = "    IF cardinality(p_name_keys) > 0 THEN\n"
_CHECK_POSITIONS = """    IF p_firsts IS NOT NULL THEN
        SELECT string_agg(to_json(w.name)::text || ':' || (coalesce(l.version, 0) + 1)::text,
                ','), coalesce(bool_or(coalesce(l.version, 0) + 1 <> w.want), false)
            INTO v_moved, v_bad
            FROM unnest(p_name_keys, p_names, p_firsts) AS w (name_key, name, want)
            LEFT JOIN {logs} AS l ON l.thread_pk = o_pk AND l.name_key = w.name_key;
        IF v_bad THEN
            RAISE EXCEPTION USING ERRCODE = '{positions_moved}',
                MESSAGE = 'agent-persist: positions moved', DETAIL = '{{' || v_moved || '}}';
        END IF;
    END IF;
"""
_BODY_2 = _BODY.replace(
    "    v_version bigint;\n", "    v_version bigint;\n    v_moved text;\n    v_bad boolean;\n"
).replace(_APPENDS, _CHECK_POSITIONS + _APPENDS)
"""Version 2: version 1, and the check of the positions after the logs are cleared."""

_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("key", "bytea"),
    ("namespace", "text"),
    ("thread_id", "text"),
    ("alive_after", "double precision"),
    ("ttl", "double precision"),
    ("now", "double precision"),
    ("lease_token", "text"),
    ("parent_id", "text"),
    ("head_id", "text"),
    ("id_key", "bytea"),
    ("kind", "text"),
    ("schema_version", "integer"),
    ("step", "integer"),
    ("status", "text"),
    ("metadata", "jsonb"),
    ("created_at", "double precision"),
    ("header", "text"),
    ("payload", "bytea"),
    ("clear_keys", "bytea[]"),
    ("name_keys", "bytea[]"),
    ("names", "text[]"),
    ("counts", "bigint[]"),
    ("item_keys", "bytea[]"),
    ("datas", "bytea[]"),
    ("backs", "bigint[]"),
)
"""Version 1's parameters in order: name (``p_`` prefixed in SQL) and SQL type."""
_PARAMETERS_2 = (*_PARAMETERS, ("firsts", "bigint[]"))
_VERSIONS = {1: (_BODY, _PARAMETERS), 2: (_BODY_2, _PARAMETERS_2)}
PUT_PARAMETERS = tuple(name for name, _ in _PARAMETERS_2)
"""The names of :data:`PUT_FUNCTION`'s parameters, in order."""


def _qualifier(schema: str | None) -> str:
    """``"schema".`` quoted for PostgreSQL, or nothing (``search_path`` decides)."""
    if schema is None:
        return ""
    return postgresql.dialect().identifier_preparer.quote_schema(schema) + "."


def create_put_function(conn: Connection, schema: str | None, *, version: int) -> None:
    """Create (or replace) version ``version`` of the function in ``schema``; a no-op on SQLite.

    The body is passed as a standard string literal (quotes doubled), so no schema name
    can end it early.
    """
    if conn.dialect.name != "postgresql":
        return
    q = _qualifier(schema)
    template, parameters = _VERSIONS[version]
    body = template.format(
        leases=f"{q}agent_persist_leases",
        threads=f"{q}agent_persist_threads",
        logs=f"{q}agent_persist_logs",
        items=f"{q}agent_persist_log_items",
        checkpoints=f"{q}agent_persist_checkpoints",
        lease_lost=LEASE_LOST,
        head_moved=HEAD_MOVED,
        id_taken=ID_TAKEN,
        slow=SLOW,
        positions_moved=POSITIONS_MOVED,
    )
    arguments = ", ".join(f"p_{name} {sql}" for name, sql in parameters)
    literal = "'" + body.replace("'", "''") + "'"
    conn.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {q}{_NAME.format(version)}({arguments}, "
        "OUT o_pk bigint, OUT o_logs text, OUT o_count integer) "
        f"LANGUAGE plpgsql VOLATILE AS {literal}"
    )


def put_call(schema: str | None) -> str:
    """The one ``SELECT`` calling :data:`PUT_FUNCTION`, its arguments ``$1``, ``$2``...

    In the order of :data:`PUT_PARAMETERS`; the server knows their types from the
    function's signature. Only the quoted schema and fixed names are formatted in.
    """
    arguments = ", ".join(f"${n}" for n in range(1, len(PUT_PARAMETERS) + 1))
    call = f"{_qualifier(schema)}{PUT_FUNCTION}({arguments})"
    return f"SELECT o_pk, o_logs, o_count FROM {call}"  # noqa: S608
