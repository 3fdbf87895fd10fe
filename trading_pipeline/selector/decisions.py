"""The decisions table: every selector decision, per bot, in an embedded SQLite file.

One row per bot and tick: when, on which inputs (a hash of the bars used), in which regime,
the model's probabilities over the bot's eligible candidates, the choice in force after
hysteresis, the model version and run that made it, whether it changed what the bot should
run, and why. The latest row of a bot is the choice in force (``current``), and it carries
the hysteresis state (``proposed``: the model's own top pick; ``streak``: for how many ticks
with new inputs that pick has challenged the choice in force), so the next tick needs nothing
but this table.

The file is ``<data_dir>/selector/decisions.sqlite`` in WAL mode: the sensor writes while the
CLI, the deployment job or a notebook read. A tick's rows are inserted in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading_pipeline.settings import DataLayout

_COLUMNS = (
    "id",
    "decided_at_us",
    "bot",
    "choice",
    "family",
    "version",
    "params",
    "series",
    "symbols",
    "regime",
    "probabilities",
    "inputs_hash",
    "model_name",
    "model_version",
    "model_run_id",
    "changed",
    "reason",
    "proposed",
    "streak",
    "fee",
    "slippage",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    decided_at_us INTEGER NOT NULL,
    bot TEXT NOT NULL,
    choice TEXT NOT NULL,
    family TEXT NOT NULL,
    version INTEGER NOT NULL,
    params TEXT NOT NULL,
    series TEXT NOT NULL,
    symbols TEXT NOT NULL,
    regime TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    inputs_hash TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER,
    model_run_id TEXT,
    changed INTEGER NOT NULL,
    reason TEXT NOT NULL,
    proposed TEXT,
    streak INTEGER NOT NULL DEFAULT 0,
    fee REAL,
    slippage REAL
);
CREATE INDEX IF NOT EXISTS decisions_bot_time ON decisions (bot, decided_at_us, id);
"""
# Columns added after the first release: a table created before gets them on open (NULL).
_ADDED_COLUMNS = (("fee", "REAL"), ("slippage", "REAL"))

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "decided_at": pl.Datetime("us", "UTC"),
    "bot": pl.String(),
    "choice": pl.String(),
    "family": pl.String(),
    "version": pl.Int64(),
    "params": pl.String(),
    "series": pl.String(),
    "symbols": pl.String(),
    "regime": pl.String(),
    "probabilities": pl.String(),
    "inputs_hash": pl.String(),
    "model_name": pl.String(),
    "model_version": pl.Int64(),
    "model_run_id": pl.String(),
    "changed": pl.Boolean(),
    "reason": pl.String(),
    "proposed": pl.String(),
    "streak": pl.Int64(),
    "fee": pl.Float64(),
    "slippage": pl.Float64(),
}


@dataclass(frozen=True)
class Decision:
    """What one bot should run from ``decided_at`` on, and the evidence for it.

    ``choice`` is the candidate id in force after hysteresis (or ``"cash"``); ``proposed`` is
    the model's own top eligible candidate at this tick and ``streak`` how many consecutive
    ticks with new inputs it has been on top while differing from ``choice`` (0 when equal).
    """

    decided_at: datetime
    bot: str
    choice: str
    family: str
    version: int
    params: dict[str, Any]
    series: str
    symbols: tuple[str, ...]
    regime: str
    probabilities: dict[str, float]
    inputs_hash: str
    model_name: str
    model_version: int | None
    model_run_id: str | None
    changed: bool
    reason: str
    id: int | None = None
    proposed: str | None = None
    streak: int = 0
    fee: float | None = None  # the chosen candidate's tuned cost model (None: cash/unknown)
    slippage: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO UTC time, lists for tuples)."""
        out = asdict(self)
        out["decided_at"] = _utc(self.decided_at).isoformat()
        out["symbols"] = list(self.symbols)
        return out


def decisions_path(data_dir: str | Path) -> Path:
    """The decisions file under ``data_dir`` (``DataLayout.decisions_path``)."""
    return DataLayout.under(data_dir).decisions_path


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"decision times must be timezone-aware UTC, got naive {t.isoformat()}")
    return t.astimezone(UTC)


def _to_us(t: datetime) -> int:
    delta = _utc(t) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _row(d: Decision) -> tuple[Any, ...]:
    return (
        _to_us(d.decided_at),
        d.bot,
        d.choice,
        d.family,
        int(d.version),
        _dumps(d.params),
        d.series,
        _dumps(list(d.symbols)),
        d.regime,
        _dumps({k: float(v) for k, v in d.probabilities.items()}),
        d.inputs_hash,
        d.model_name,
        d.model_version,
        d.model_run_id,
        int(bool(d.changed)),
        d.reason,
        d.proposed,
        int(d.streak),
        d.fee,
        d.slippage,
    )


def _decision(row: Sequence[Any]) -> Decision:
    r = dict(zip(_COLUMNS, row, strict=True))
    return Decision(
        decided_at=_from_us(int(r["decided_at_us"])),
        bot=r["bot"],
        choice=r["choice"],
        family=r["family"],
        version=int(r["version"]),
        params=json.loads(r["params"]),
        series=r["series"],
        symbols=tuple(json.loads(r["symbols"])),
        regime=r["regime"],
        probabilities=json.loads(r["probabilities"]),
        inputs_hash=r["inputs_hash"],
        model_name=r["model_name"],
        model_version=r["model_version"],
        model_run_id=r["model_run_id"],
        changed=bool(r["changed"]),
        reason=r["reason"],
        id=int(r["id"]),
        proposed=r["proposed"],
        streak=int(r["streak"]),
        fee=None if r["fee"] is None else float(r["fee"]),
        slippage=None if r["slippage"] is None else float(r["slippage"]),
    )


class DecisionStore:
    """The decisions table in one SQLite file (WAL, one transaction per insert batch)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            conn = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.executescript(_SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    try:
                        conn.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
            yield conn
        finally:
            conn.close()

    def record(self, d: Decision) -> int:
        """Insert one decision; its row id."""
        saved = self.record_all([d])
        assert saved[0].id is not None
        return saved[0].id

    def record_all(self, decisions: Iterable[Decision]) -> list[Decision]:
        """Insert a tick's decisions in one transaction (all or none); they come back with ids."""
        batch = list(decisions)
        placeholders = ",".join("?" * (len(_COLUMNS) - 1))
        sql = f"INSERT INTO decisions ({','.join(_COLUMNS[1:])}) VALUES ({placeholders})"
        out: list[Decision] = []
        with self._connect(write=True) as conn, conn:
            for d in batch:
                cursor = conn.execute(sql, _row(d))
                out.append(replace(d, id=int(cursor.lastrowid or 0)))
        return out

    def latest(self, bot: str, *, before: datetime | None = None) -> Decision | None:
        """The bot's most recent decision (strictly before ``before`` when given)."""
        sql = f"SELECT {','.join(_COLUMNS)} FROM decisions WHERE bot = ?"
        args: list[Any] = [bot]
        if before is not None:
            sql += " AND decided_at_us < ?"
            args.append(_to_us(before))
        sql += " ORDER BY decided_at_us DESC, id DESC LIMIT 1"
        with self._connect(write=False) as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else _decision(row)

    def current(self, *, before: datetime | None = None) -> dict[str, Decision]:
        """The choice in force per bot: each bot's latest decision (before ``before``)."""
        where = ""
        args: list[Any] = []
        if before is not None:
            where, args = "WHERE decided_at_us < ?", [_to_us(before)]
        sql = (
            f"SELECT {','.join(_COLUMNS)} FROM (SELECT *, ROW_NUMBER() OVER ("
            f"PARTITION BY bot ORDER BY decided_at_us DESC, id DESC) AS rn FROM decisions {where})"
            " WHERE rn = 1 ORDER BY bot"
        )
        with self._connect(write=False) as conn:
            rows = conn.execute(sql, args).fetchall()
        return {d.bot: d for d in map(_decision, rows)}

    def get(self, ids: Sequence[int]) -> list[Decision]:
        """The decisions with these row ids (in id order)."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql = f"SELECT {','.join(_COLUMNS)} FROM decisions WHERE id IN ({marks}) ORDER BY id"
        with self._connect(write=False) as conn:
            rows = conn.execute(sql, [int(i) for i in ids]).fetchall()
        return [_decision(r) for r in rows]

    def history(self, bot: str | None = None, since: datetime | None = None) -> pl.DataFrame:
        """Every decision (of ``bot``, from ``since`` inclusive) as a frame, oldest first.

        ``params``, ``symbols`` and ``probabilities`` stay JSON strings (their keys differ
        from row to row); ``decided_at`` is a UTC datetime.
        """
        clauses: list[str] = []
        args: list[Any] = []
        if bot is not None:
            clauses.append("bot = ?")
            args.append(bot)
        if since is not None:
            clauses.append("decided_at_us >= ?")
            args.append(_to_us(since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {','.join(_COLUMNS)} FROM decisions {where} ORDER BY decided_at_us, id"
        with self._connect(write=False) as conn:
            rows = conn.execute(sql, args).fetchall()
        data = {c: [r[i] for r in rows] for i, c in enumerate(_COLUMNS)}
        data["decided_at"] = data.pop("decided_at_us")
        frame = pl.DataFrame(
            data, schema={**HISTORY_SCHEMA, "decided_at": pl.Int64(), "changed": pl.Int64()}
        )
        return frame.with_columns(
            pl.from_epoch("decided_at", "us").dt.replace_time_zone("UTC"),
            pl.col("changed").cast(pl.Boolean),
        ).select(list(HISTORY_SCHEMA))


def inputs_hash(bars: Mapping[str, pl.DataFrame], *, extra: Mapping[str, Any] | None = None) -> str:
    """A SHA-256 over the bars a decision used (per series: open times and OHLCV), plus ``extra``.

    Two ticks on the same closed candles hash the same, so a replay can prove it saw what the
    live tick saw, and the hysteresis can tell new evidence from the same evidence re-read.
    """
    h = hashlib.sha256()
    for key in sorted(bars):
        df = bars[key]
        h.update(key.encode())
        h.update(df.height.to_bytes(8, "little"))
        if df.height:
            cols = [c for c in ("open_time", "open", "high", "low", "close", "volume") if c in df]
            arrays = df.select(
                [
                    pl.col(c).dt.epoch("us") if c == "open_time" else pl.col(c).cast(pl.Float64)
                    for c in cols
                ]
            )
            for c in cols:
                h.update(arrays.get_column(c).to_numpy().tobytes())
    if extra:
        h.update(_dumps(dict(extra)).encode())
    return h.hexdigest()
