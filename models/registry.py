"""A directory of versioned pLTV models and the pointer to the current one.

Layout under the root::

    <version>/metadata.json, model.pkl
    CURRENT                   the current version id, one line
    decisions.jsonl           one line per registration: accepted or why not
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.exceptions import ModelLoadError, RegistryError
from models.pltv import IDENTITY_KEYS, PLTVModel

logger = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
DECISIONS_FILE = "decisions.jsonl"


def is_registry(directory: Path) -> bool:
    """Whether ``directory`` is the root of a model registry.

    Parameters
    ----------
    directory : pathlib.Path
        Any path.

    Returns
    -------
    bool
        True when it holds the current-version pointer or the decision log
        that every registration appends to.
    """
    root = Path(directory)
    return (root / CURRENT_FILE).is_file() or (root / DECISIONS_FILE).is_file()


@dataclass(frozen=True)
class Decision:
    """Outcome of one registration."""

    version: str
    accepted: bool
    reasons: tuple[str, ...]
    decided_at: str


class ModelRegistry:
    """Versioned model store; a model becomes current only if it passes its gate.

    Parameters
    ----------
    root : pathlib.Path
        Directory of the registry; created on first registration.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def _current_file(self) -> Path:
        return self.root / CURRENT_FILE

    @property
    def _decisions_file(self) -> Path:
        return self.root / DECISIONS_FILE

    def versions(self) -> list[str]:
        """Every stored version id, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if (p / "metadata.json").is_file()
        )

    def current(self) -> PLTVModel | None:
        """The current model, or None before any model passed its gate.

        Raises
        ------
        RegistryError
            The pointer names a version that is not stored.
        ModelLoadError
            The current artefact no longer loads (see :meth:`PLTVModel.load`).
        """
        if not self._current_file.exists():
            return None
        version = self._current_file.read_text().strip()
        path = self.root / version
        if not path.is_dir():
            raise RegistryError(
                f"{self._current_file}: names missing version {version!r}"
            )
        return PLTVModel.load(path)

    def decisions(self) -> list[Decision]:
        """Every registration decision, oldest first."""
        if not self._decisions_file.exists():
            return []
        lines = self._decisions_file.read_text().splitlines()
        return [
            Decision(d["version"], d["accepted"], tuple(d["reasons"]), d["decided_at"])
            for d in map(json.loads, filter(None, lines))
        ]

    def register(self, model: PLTVModel) -> bool:
        """Store ``model``; make it current if it passes its gate.

        Parameters
        ----------
        model : PLTVModel
            A fitted model.

        Returns
        -------
        bool
            True when the model became current. The reasons of a refusal are
            recorded in ``decisions.jsonl`` and :meth:`decisions`.

        Raises
        ------
        RegistryError
            The model is unfitted, or its version is stored already as
            another model, whose files are never written over.
        """
        if not model.version:
            raise RegistryError("cannot register an unfitted model")
        try:
            current = self.current()
        except (ModelLoadError, RegistryError) as error:
            # A current artefact that no longer loads (older schema, other
            # scikit-learn) must not block its replacement.
            logger.warning("current model unreadable (%s); judged without it", error)
            current = None
        self._store(model)
        accepted = model.passes_gate(current)
        decision = Decision(
            version=model.version,
            accepted=accepted,
            reasons=tuple(model.gate_failures),
            decided_at=pd.Timestamp.now(tz="UTC").isoformat(),
        )
        with self._decisions_file.open("a") as log:
            log.write(
                json.dumps(decision.__dict__ | {"reasons": list(decision.reasons)})
            )
            log.write("\n")
        if accepted:
            staged = self._current_file.with_suffix(".tmp")
            staged.write_text(model.version + "\n")
            os.replace(staged, self._current_file)
            logger.info("model %s is now current", model.version)
        else:
            logger.warning(
                "model %s refused: %s", model.version, "; ".join(model.gate_failures)
            )
        return accepted

    def _store(self, model: PLTVModel) -> None:
        """Save ``model`` under its version, never over another model.

        A version id hashes what the model was trained from and how
        (:data:`models.pltv.IDENTITY_KEYS`), so a stored version with the
        same metadata under those keys is the same model, retrained: the
        stored files are kept. A folder without metadata.json is a save cut
        short and is written over, with a warning.

        Raises
        ------
        RegistryError
            The version's folder holds a model that differs under one of
            those keys, or metadata that cannot be read.
        """
        folder = self.root / model.version
        meta_path = folder / "metadata.json"
        if not meta_path.is_file():
            if folder.exists():
                logger.warning(
                    "%s: incomplete model folder (no metadata.json); written over",
                    folder,
                )
            model.save(folder)
            return
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise RegistryError(
                f"{meta_path}: unreadable; version {model.version} is not "
                "overwritten: move that folder aside to register this model"
            ) from error
        ours = json.loads(json.dumps(model.metadata))
        differ = [
            key
            for key in IDENTITY_KEYS
            if not isinstance(stored, dict) or stored.get(key) != ours.get(key)
        ]
        if differ:
            raise RegistryError(
                f"{folder}: version {model.version} is stored already as another "
                f"model (its {', '.join(differ)} differ); it is not overwritten: "
                "move that folder aside to register this model"
            )
        logger.info(
            "model %s is stored already, trained on the same data the same "
            "way; the stored files are kept",
            model.version,
        )
