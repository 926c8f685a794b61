"""Versioned model artefacts and which one is current."""

from __future__ import annotations

import logging
from pathlib import Path

from models.exceptions import ModelLoadError
from models.pltv import PLTVModel

logger = logging.getLogger(__name__)


class ModelRegistry:
    """Model versions under ``root``; ``root/CURRENT`` names the one in use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def current(self) -> PLTVModel | None:
        """The model in use, or ``None`` before the first one passes its gate."""
        pointer = self.root / "CURRENT"
        if not pointer.exists():
            return None
        version = pointer.read_text(encoding="utf-8").strip()
        return PLTVModel.load(self.root / version)

    def register(self, model: PLTVModel) -> bool:
        """Save ``model``; make it current only if it passes its gate."""
        try:
            current = self.current()
        except ModelLoadError:
            logger.warning("current model unreadable; the new one replaces it")
            current = None
        model.save(self.root)
        if not model.passes_gate(current):
            logger.info(
                "model %s kept but not made current: gate failed", model.version
            )
            return False
        (self.root / "CURRENT").write_text(model.version + "\n", encoding="utf-8")
        logger.info("model %s is now current", model.version)
        return True

    def versions(self) -> list[str]:
        """Every saved version, oldest first."""
        if not self.root.exists():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if (p / "metadata.json").exists()
        )
