"""The plan: one row per campaign, and how it is written for people and tools."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PlanRow:
    """One campaign's decision, with every number it was made from."""

    campaign_id: str
    campaign_name: str
    market: str
    current_strategy: str
    current_target_cpa: float | None
    current_target_roas: float | None
    current_roas_equivalent: float | None
    observed_roas: float | None
    conversions_in_window: float
    cost_in_window: float
    mean_value: float | None
    paying_share: float | None
    floor_break_even: float | None
    floor_ltv_cac: float | None
    floor_payback: float | None
    floor_cac_cap: float | None
    economic_troas: float | None
    binding_constraint: str | None
    action: str
    new_troas: float | None
    change_pct: float | None
    guardrail: str | None
    reason: str
    campaign_type: str = "OTHER"
    volume_required: int | None = None
    ltv_horizon_ratio: float | None = None
    payback_share: float | None = None
    cac_max: float | None = None
    cpa_cap: float | None = None
    implied_cpa: float | None = None
    implied_cac: float | None = None
    economics_met: bool | None = None
    binding_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready mapping."""
        return asdict(self)


PLAN_COLUMNS = tuple(f.name for f in fields(PlanRow))
#: Columns the CSV adds to every row: whether the plan is held back, and why.
HOLD_COLUMNS = ("held_back", "held_reason")


def write_plan(
    rows: Sequence[PlanRow],
    directory: Path,
    meta: dict[str, Any],
    *,
    held_reason: str | None = None,
) -> None:
    """Write ``plan.json`` and ``plan.csv`` into ``directory``, atomically.

    Each file is written beside its final name and renamed into place, so a
    crash leaves either the previous plan or the new one, never half of one.

    A plan held back (``held_reason`` given: its day's values jumped, or a
    later start of its day failed) says so in both files: ``held_back`` and
    ``held_reason`` at the top of the JSON and as the last two CSV columns,
    so a file read on its own is not taken for a plan that may be applied.
    """
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "held_back": held_reason is not None,
        "held_reason": held_reason,
        "campaigns": [row.to_dict() for row in rows],
    }
    _atomic_write(
        directory / "plan.json",
        json.dumps(document, indent=2, default=str, allow_nan=False) + "\n",
    )
    _atomic_write(directory / "plan.csv", _csv_text(rows, held_reason))


def mark_plan_held(directory: Path, held_reason: str | None) -> bool:
    """Rewrite the plan files in ``directory`` with their held-back mark.

    Used when a recorded run's plan becomes held back (or is released) after
    its files were written. Returns ``False`` when there is no plan file.
    """
    path = directory / "plan.json"
    if not path.exists():
        return False
    document = json.loads(path.read_text(encoding="utf-8"))
    rows = [PlanRow(**row) for row in document.pop("campaigns")]
    meta = {k: v for k, v in document.items() if k not in HOLD_COLUMNS}
    write_plan(rows, directory, meta, held_reason=held_reason)
    return True


def read_plan(directory: Path) -> list[PlanRow]:
    """Read back the rows of a plan written by :func:`write_plan`."""
    document = json.loads((directory / "plan.json").read_text(encoding="utf-8"))
    return [PlanRow(**row) for row in document["campaigns"]]


def _csv_text(rows: Iterable[PlanRow], held_reason: str | None) -> str:
    held = {
        "held_back": "true" if held_reason is not None else "false",
        "held_reason": held_reason or "",
    }
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as buffer:
        writer = csv.DictWriter(buffer, fieldnames=PLAN_COLUMNS + HOLD_COLUMNS)
        writer.writeheader()
        for row in rows:
            cells = {k: ("" if v is None else v) for k, v in row.to_dict().items()}
            writer.writerow({**cells, **held})
        buffer.seek(0)
        return buffer.read()


def _atomic_write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
