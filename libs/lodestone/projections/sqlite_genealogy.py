"""The genealogy view on SQLite (the embedded default).

Masses stay exact: decimals are stored as text and compositions as JSON with string
values. One connection, guarded by a lock: the projector thread writes, request
threads read; WAL lets readers of other processes go on while it writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from lodestone.projections.genealogy import BatchRow, Edge, GenealogyView, Name, Trade, Writer

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, reference TEXT, material TEXT,
    initial_kg TEXT, remaining_kg TEXT, composition TEXT, facility_id TEXT,
    custodian_id TEXT, reporter_id TEXT, status TEXT, origin_kind TEXT,
    origin_facility_id TEXT, origin_licence_id TEXT, origin_country TEXT, created_at TEXT,
    corrections INTEGER
);
CREATE TABLE IF NOT EXISTS edges (
    parent_id TEXT NOT NULL, child_id TEXT NOT NULL, kg TEXT NOT NULL,
    operation TEXT NOT NULL, operation_id TEXT NOT NULL, PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child_id);
CREATE TABLE IF NOT EXISTS trades (
    batch_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, from_id TEXT,
    to_id TEXT, kg TEXT NOT NULL, contract TEXT, price TEXT, currency TEXT,
    destination_country TEXT, occurred_at TEXT, PRIMARY KEY (batch_id, version)
);
CREATE TABLE IF NOT EXISTS names (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, code TEXT NOT NULL, name TEXT, country TEXT
);
CREATE TABLE IF NOT EXISTS tracking (source TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""
TABLES = ("batches", "edges", "trades", "names", "tracking")
BATCH_COLUMNS = [
    "reference",
    "material",
    "initial_kg",
    "remaining_kg",
    "composition",
    "facility_id",
    "custodian_id",
    "reporter_id",
    "status",
    "origin_kind",
    "origin_facility_id",
    "origin_licence_id",
    "origin_country",
    "created_at",
    "corrections",
]


class SQLiteGenealogyView(GenealogyView):
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "PRAGMA synchronous=NORMAL"
        )  # WAL + NORMAL: durable at checkpoint; rows are rebuildable
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(batches)")}
        if "corrections" not in columns:  # a view made before corrections existed
            self._db.execute("ALTER TABLE batches ADD COLUMN corrections INTEGER")

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Writer(self._db)
                self._db.executemany(
                    "INSERT INTO tracking (source, position) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    list(positions.items()),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def position(self, source: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM tracking WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0]) if row else 0

    def reset(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("COMMIT")

    def batches(self, ids: Iterable[UUID]) -> dict[UUID, BatchRow]:
        result: dict[UUID, BatchRow] = {}
        for chunk in _chunks([str(i) for i in ids]):
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM batches WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            for row in rows:
                batch = _batch(row)
                result[batch.id] = batch
        return result

    def ancestors(self, batch_id: UUID) -> list[Edge]:
        return self._walk(
            "WITH RECURSIVE up(id) AS (SELECT ? UNION SELECT e.parent_id FROM edges e "
            "JOIN up ON e.child_id = up.id) "
            "SELECT e.* FROM edges e WHERE e.child_id IN (SELECT id FROM up)",
            batch_id,
        )

    def descendants(self, batch_id: UUID) -> list[Edge]:
        return self._walk(
            "WITH RECURSIVE down(id) AS (SELECT ? UNION SELECT e.child_id FROM edges e "
            "JOIN down ON e.parent_id = down.id) "
            "SELECT e.* FROM edges e WHERE e.parent_id IN (SELECT id FROM down)",
            batch_id,
        )

    def _walk(self, sql: str, batch_id: UUID) -> list[Edge]:
        with self._lock:
            rows = self._db.execute(sql, (str(batch_id),)).fetchall()
        return [
            Edge(
                _parse_uuid(r["parent_id"]),
                _parse_uuid(r["child_id"]),
                Decimal(r["kg"]),
                r["operation"],
                _parse_uuid(r["operation_id"]),
            )
            for r in rows
        ]

    def trades(self, ids: Iterable[UUID]) -> list[Trade]:
        result = []
        for chunk in _chunks([str(i) for i in ids]):
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM trades WHERE batch_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY occurred_at, batch_id, version",
                    chunk,
                ).fetchall()
            result += [
                Trade(
                    UUID(r["batch_id"]),
                    r["version"],
                    r["kind"],
                    _uuid(r["from_id"]),
                    _uuid(r["to_id"]),
                    Decimal(r["kg"]),
                    r["contract"] or "",
                    Decimal(r["price"]) if r["price"] else None,
                    r["currency"] or "",
                    r["destination_country"] or "",
                    datetime.fromisoformat(r["occurred_at"]),
                )
                for r in rows
            ]
        return result

    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]:
        result = {}
        for chunk in _chunks([str(i) for i in ids]):
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM names WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            for r in rows:
                result[UUID(r["id"])] = Name(
                    UUID(r["id"]), r["kind"], r["code"], r["name"] or "", r["country"] or ""
                )
        return result

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with self._lock:
            for table in TABLES[:-1]:
                for row in self._db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                    digest.update(json.dumps(list(row), default=str).encode())
        return digest.hexdigest()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Writer:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def upsert_batch(self, row: BatchRow) -> None:
        values = {c: _text(getattr(row, c)) for c in BATCH_COLUMNS if getattr(row, c) is not None}
        columns = ["id", "version", *values]
        updates = ", ".join(f"{c} = excluded.{c}" for c in ["version", *values])
        # Only a newer version of the batch changes the row: a repeat is a no-op.
        self._db.execute(
            f"INSERT INTO batches ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE excluded.version > batches.version",
            [str(row.id), row.version, *values.values()],
        )

    def add_edges(self, edges: Sequence[Edge]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?, ?)",
            [
                (str(e.parent_id), str(e.child_id), str(e.kg), e.operation, str(e.operation_id))
                for e in edges
            ],
        )

    def add_trade(self, t: Trade) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(t.batch_id),
                t.version,
                t.kind,
                _text(t.from_id),
                _text(t.to_id),
                str(t.kg),
                t.contract,
                _text(t.price),
                t.currency,
                t.destination_country,
                t.occurred_at.isoformat(),
            ),
        )

    def upsert_name(self, n: Name) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO names VALUES (?, ?, ?, ?, ?)",
            (str(n.id), n.kind, n.code, n.name, n.country),
        )


def _text(value: Any) -> Any:
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, dict):
        return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _uuid(value: str | None) -> UUID | None:
    return _parse_uuid(value) if value else None


@functools.lru_cache(maxsize=1 << 18)
def _parse_uuid(value: str) -> UUID:
    # Parsing a UUID costs microseconds and the same ids (facilities, actors, batches
    # met again as edge ends) recur in every trace: parse each once.
    return UUID(value)


def _batch(r: sqlite3.Row) -> BatchRow:
    return BatchRow(
        id=_parse_uuid(r["id"]),
        version=r["version"],
        reference=r["reference"],
        material=r["material"],
        initial_kg=Decimal(r["initial_kg"]) if r["initial_kg"] else None,
        remaining_kg=Decimal(r["remaining_kg"]) if r["remaining_kg"] else None,
        composition={k: Decimal(v) for k, v in json.loads(r["composition"]).items()}
        if r["composition"]
        else None,
        facility_id=_uuid(r["facility_id"]),
        custodian_id=_uuid(r["custodian_id"]),
        reporter_id=_uuid(r["reporter_id"]),
        status=r["status"],
        origin_kind=r["origin_kind"],
        origin_facility_id=_uuid(r["origin_facility_id"]),
        origin_licence_id=_uuid(r["origin_licence_id"]),
        origin_country=r["origin_country"],
        created_at=datetime.fromisoformat(r["created_at"]) if r["created_at"] else None,
        corrections=r["corrections"],
    )


def _chunks(items: list[str], size: int = 900) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
