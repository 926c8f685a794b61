"""Errors raised by the pLTV models.

Hierarchy::

    ModelError
    ├── InputDataError      a canonical table with a missing column or a bad value
    ├── TrainingError       too little or unusable data to fit a model
    ├── ModelLoadError      an artefact that is missing, or of another schema or version
    ├── ScoringError        inputs that cannot be scored (e.g. as-of before any sign-up)
    └── RegistryError       a model registry that is unreadable or inconsistent
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every error raised by the models package."""


class InputDataError(ModelError, ValueError):
    """A canonical table misses a column or holds a value the model cannot use."""


class TrainingError(ModelError):
    """Too little or unusable data to fit a model."""


class ModelLoadError(ModelError):
    """A model artefact is missing, or was written for another schema or version."""


class ScoringError(ModelError):
    """Inputs that cannot be scored."""


class RegistryError(ModelError):
    """A model registry directory that is unreadable or inconsistent."""
