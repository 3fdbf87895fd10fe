"""The deployment store: each bot's current assignment in a file, with an append-only history.

Layout under ``bots_dir`` (``TP_BOTS_DIR``, default ``<data dir>/bots``; ``/srv/trading-bots`` in
production)::

    <bots_dir>/<bot>/assignment.json   the assignment in force (replaced atomically)
    <bots_dir>/<bot>/history.jsonl     every deploy and every refusal, one JSON object a line
    <bots_dir>/HALT                    the fleet kill switch: present = halted, content = reason

Runners only read ``assignment.json`` and ``HALT``; a runner never sees a half-written file
because every file is published by rename. A refused candidate changes nothing but the history:
its bot keeps trading on the assignment it has. Deploys take an exclusive lock, so a Dagster run
and a command line cannot interleave their read-validate-write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trading_pipeline.bots.assignment import (
    FRACTION_TOLERANCE,
    Assignment,
    fleet_total,
    opposite_assignments,
    utc_now_iso,
    validate_assignment,
)
from trading_pipeline.bots.spec import Fleet, current_fleet
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_text
from trading_pipeline.settings import BotsLayout

HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".deploy.lock"


@dataclass(frozen=True)
class Refusal:
    bot: str
    reason: str
    candidate: Assignment


@dataclass
class DeployReport:
    """What a deploy did: written (new version), unchanged (same fingerprint), refused."""

    deployed: list[Assignment] = field(default_factory=list)
    unchanged: list[Assignment] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployed": [
                {
                    "bot": a.bot,
                    "version": a.version,
                    "family": a.family,
                    "fingerprint": a.fingerprint,
                }
                for a in self.deployed
            ],
            "unchanged": [{"bot": a.bot, "version": a.version} for a in self.unchanged],
            "refused": [{"bot": r.bot, "reason": r.reason} for r in self.refused],
        }


def halt_path(bots_dir: str | Path) -> Path:
    return BotsLayout(Path(bots_dir)).halt_path


def read_halt(bots_dir: str | Path) -> dict[str, Any] | None:
    """The kill switch's content (``{"reason", "at", "by"}``) when halted, else None."""
    path = halt_path(bots_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        data = {"reason": text.strip()[:200]}
    return data if isinstance(data, dict) else {"reason": str(data)}


class DeploymentStore:
    """Assignments of the fleet under ``bots_dir``; ``clock`` stamps deploys (UTC).

    ``fleet`` is the fleet the assignments are validated against (default: the fleet in force,
    :func:`~trading_pipeline.bots.spec.current_fleet`, read at each use)."""

    def __init__(
        self,
        bots_dir: str | Path,
        *,
        clock: Callable[[], datetime] | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.bots_dir = Path(bots_dir)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._fleet = fleet

    @property
    def fleet(self) -> Fleet:
        return self._fleet or current_fleet()

    # -- paths -------------------------------------------------------------------------------
    def _bot_dir(self, bot: str) -> Path:
        names = self.fleet.names
        if bot not in names:  # names become folder names: only the fleet's
            raise UserInputError(f"unknown bot {bot!r}; known: {', '.join(names)}")
        return BotsLayout(self.bots_dir).bot_dir(bot)

    def assignment_path(self, bot: str) -> Path:
        self._bot_dir(bot)  # only the fleet's names
        return BotsLayout(self.bots_dir).assignment_path(bot)

    def history_path(self, bot: str) -> Path:
        return self._bot_dir(bot) / HISTORY_FILE

    # -- reading -----------------------------------------------------------------------------
    def current(self, bot: str) -> Assignment | None:
        """The assignment in force for ``bot`` (None before its first deploy)."""
        path = self.assignment_path(bot)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            return Assignment.from_json(text)
        except UserInputError as exc:
            raise UserInputError(f"{path}: {exc}") from None

    def all_current(self) -> dict[str, Assignment]:
        """Every bot's assignment in force, for the bots that have one."""
        out = {}
        for bot in self.fleet.names:
            a = self.current(bot)
            if a is not None:
                out[bot] = a
        return out

    def history(self, bot: str) -> list[dict[str, Any]]:
        """Every deploy and refusal of ``bot``, oldest first (a torn last line is skipped)."""
        path = self.history_path(bot)
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.bots_dir.mkdir(parents=True, exist_ok=True)
        with open(self.bots_dir / LOCK_FILE, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _append(self, bot: str, event: Mapping[str, Any]) -> None:
        path = self.history_path(bot)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(dict(event), sort_keys=True, default=str) + "\n"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def record_refusal(self, bot: str, reason: str, **detail: Any) -> None:
        """Append a refusal decided before any candidate was built (e.g. a decision older
        than its horizon) to ``bot``'s history; its assignment in force is kept."""
        with self._locked():
            prev = self.current(bot)
            self._append(
                bot,
                {
                    "event": "refused",
                    "at": utc_now_iso(self._clock()),
                    "reason": reason,
                    "kept_version": prev.version if prev else None,
                    **detail,
                },
            )

    def deploy(self, candidates: Sequence[Assignment]) -> DeployReport:
        """Validate ``candidates`` against the fleet they would form and write the valid ones.

        Each candidate is checked against the others of the batch and the current assignments of
        bots not in the batch. A refused candidate leaves its bot on its old assignment; if the
        accepted ones together would put the fleet over 100%, those that raise their bot's
        fraction are refused too (the batch never half-applies a re-allocation into an
        over-committed fleet). A valid candidate whose fingerprint equals the current one is
        reported unchanged and not rewritten; otherwise it is written as version previous + 1.
        """
        report = DeployReport()
        with self._locked():
            now = self._clock()
            current = self.all_current()
            seen: set[str] = set()
            batch: dict[str, Assignment] = {}
            for cand in candidates:
                if cand.bot in seen:
                    report.refused.append(
                        Refusal(
                            cand.bot, f"{cand.bot}: more than one candidate in one deploy", cand
                        )
                    )
                    continue
                seen.add(cand.bot)
                batch[cand.bot] = cand

            accepted = self._validate_batch(batch, current, report)
            for bot, a in accepted.items():
                prev = current.get(bot)
                if prev is not None and prev.fingerprint == a.fingerprint:
                    report.unchanged.append(prev)
                    continue
                final = replace(
                    a,
                    version=(prev.version if prev else 0) + 1,
                    created_at=utc_now_iso(now),
                )
                atomic_write_text(self.assignment_path(bot), final.to_json())
                self._append(
                    bot,
                    {
                        "event": "deployed",
                        "at": utc_now_iso(now),
                        "version": final.version,
                        "fingerprint": final.fingerprint,
                        "previous_version": prev.version if prev else None,
                        "assignment": final.to_dict(),
                    },
                )
                report.deployed.append(final)
            names = self.fleet.names
            for r in report.refused:
                if r.bot in names:
                    prev = current.get(r.bot)
                    self._append(
                        r.bot,
                        {
                            "event": "refused",
                            "at": utc_now_iso(now),
                            "reason": r.reason,
                            "kept_version": prev.version if prev else None,
                            "candidate": r.candidate.to_dict(),
                        },
                    )
        return report

    def _validate_batch(
        self,
        batch: dict[str, Assignment],
        current: Mapping[str, Assignment],
        report: DeployReport,
    ) -> dict[str, Assignment]:
        # 1. everything but the fleet total, each candidate on its own
        accepted: dict[str, Assignment] = {}
        for bot, cand in batch.items():
            try:
                accepted[bot] = validate_assignment(cand, others={}, fleet=self.fleet)
            except UserInputError as exc:
                report.refused.append(Refusal(bot, str(exc), cand))
        # 2. no two bots may hold a symbol in opposite directions
        for bot in list(accepted):
            why = opposite_assignments(accepted[bot], {**current, **accepted})
            if why is not None:
                report.refused.append(Refusal(bot, why, batch[bot]))
                del accepted[bot]
        # 3. the fleet total over what would be in force
        while True:
            fleet = {**current, **accepted}
            total = fleet_total({b: a.capital_fraction for b, a in fleet.items()})
            if total <= 1.0 + FRACTION_TOLERANCE:
                break
            raising = [
                b
                for b, a in accepted.items()
                if a.capital_fraction > (current[b].capital_fraction if b in current else 0.0)
            ]
            if not raising:  # the fleet on disk is already over: refuse every candidate
                raising = list(accepted)
            if not raising:
                break
            for b in raising:
                cand = accepted.pop(b)
                report.refused.append(
                    Refusal(
                        b,
                        f"{b}: capital fractions of all bots would total {total:.1%} "
                        f"(over 100%); {b} asked for {cand.capital_fraction:.1%}",
                        batch[b],
                    )
                )
        # 4. the contract's full check, each against the fleet it joins
        for bot in list(accepted):
            fleet = {**current, **accepted}
            accepted[bot] = validate_assignment(accepted[bot], others=fleet, fleet=self.fleet)
        return accepted

    # -- kill switch -------------------------------------------------------------------------
    def halt(
        self, reason: str, *, by: str = "fleet", extra: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the HALT file (every runner closes positions and opens nothing while it exists)."""
        if not reason.strip():
            raise UserInputError("a halt needs a reason")
        payload = {
            "reason": reason.strip(),
            "at": utc_now_iso(self._clock()),
            "by": by,
            **dict(extra or {}),
        }
        return atomic_write_text(
            halt_path(self.bots_dir), json.dumps(payload, sort_keys=True) + "\n"
        )

    def resume(self) -> bool:
        """Remove the HALT file; False when the fleet was not halted."""
        try:
            halt_path(self.bots_dir).unlink()
        except FileNotFoundError:
            return False
        return True

    def halted(self) -> dict[str, Any] | None:
        return read_halt(self.bots_dir)
