"""Fake ad accounts passed to the apply code in place of Google Ads.

``MemoryAccount`` lives in one process. ``FileAccount`` keeps its state in a
JSON file under an exclusive file lock, so several processes see one
account; each push is appended to a log the tests count. ``RecordingSink``
takes the values the feed sends, as Google would, and keeps them.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from connectors.value_feed import ConversionEvent, Outcome, RowResult
from optimizer.apply import CampaignTarget, TargetUpdate, UpdateOutcome


class SimulatedCrash(BaseException):
    """The process dies mid-apply: nothing after the push is recorded."""


class MemoryAccount:
    """An in-memory account: targets by campaign and a log of every push."""

    def __init__(
        self,
        targets: dict[str, CampaignTarget],
        *,
        reject: set[str] | None = None,
        crash_after: int | None = None,
    ) -> None:
        self.targets = dict(targets)
        self.pushes: list[str] = []
        self.reject = set(reject or ())
        self.crash_after = crash_after
        self._lock = threading.Lock()

    def read_targets(self, campaign_ids: Sequence[str]) -> dict[str, CampaignTarget]:
        with self._lock:
            return {c: self.targets[c] for c in campaign_ids if c in self.targets}

    def apply(self, updates: Sequence[TargetUpdate]) -> list[UpdateOutcome]:
        outcomes = []
        for number, update in enumerate(updates, start=1):
            with self._lock:
                self.pushes.append(update.campaign_id)
                if update.campaign_id in self.reject:
                    outcomes.append(
                        UpdateOutcome(
                            update.campaign_id,
                            "rejected",
                            "TARGET_ROAS_OUT_OF_RANGE",
                            f"req-{len(self.pushes)}",
                        )
                    )
                    continue
                self.targets[update.campaign_id] = update.target
            outcomes.append(
                UpdateOutcome(
                    update.campaign_id, "applied", None, f"req-{len(self.pushes)}"
                )
            )
            if self.crash_after is not None and number >= self.crash_after:
                raise SimulatedCrash(f"crash after {number} push(es)")
        return outcomes


class FileAccount:
    """An account shared by processes through a JSON file."""

    def __init__(self, path: Path, push_delay_seconds: float = 0.0) -> None:
        self.path = path
        self.push_delay_seconds = push_delay_seconds

    @staticmethod
    def create(path: Path, targets: dict[str, CampaignTarget]) -> FileAccount:
        document = {"targets": {c: asdict(t) for c, t in targets.items()}, "log": []}
        path.write_text(json.dumps(document), encoding="utf-8")
        return FileAccount(path)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with self.path.open("r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            document = json.loads(handle.read())
            yield document
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(document))

    def read_targets(self, campaign_ids: Sequence[str]) -> dict[str, CampaignTarget]:
        with self._locked() as document:
            targets = document["targets"]
            return {
                c: CampaignTarget(**targets[c]) for c in campaign_ids if c in targets
            }

    def apply(self, updates: Sequence[TargetUpdate]) -> list[UpdateOutcome]:
        outcomes = []
        for update in updates:
            # Widens the window in which a second applier could slip in.
            time.sleep(self.push_delay_seconds)
            with self._locked() as document:
                document["log"].append(update.campaign_id)
                document["targets"][update.campaign_id] = asdict(update.target)
            outcomes.append(UpdateOutcome(update.campaign_id, "applied"))
        return outcomes

    def pushes(self) -> list[str]:
        with self._locked() as document:
            return list(document["log"])

    def targets(self) -> dict[str, CampaignTarget]:
        with self._locked() as document:
            return {c: CampaignTarget(**t) for c, t in document["targets"].items()}


class RecordingSink:
    """A value sink that accepts every conversion and keeps what it was sent."""

    name = "conversion_upload"
    supports_restatement = True

    def __init__(self) -> None:
        self.sent: list[ConversionEvent] = []

    def login(self) -> None:
        pass

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        self.sent.extend(events)
        return [RowResult(e.transaction_id, e.revision, Outcome.SENT) for e in events]
