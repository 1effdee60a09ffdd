"""The errors training raises that a user can act on, in a module that imports nothing
heavy: the command line catches them without loading scikit-learn, ONNX or pandas."""

from __future__ import annotations

__all__ = ["FeatureError", "ParityError", "RegistryError", "TrainingError"]


class FeatureError(RuntimeError):
    """The feature relation does not have what the spec names."""


class ParityError(RuntimeError):
    """The exported model disagrees with scikit-learn beyond the tolerance."""


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown model or version, nothing to roll back to)."""


class TrainingError(ValueError):
    """A model cannot be trained on this data; the message names it and what to change."""
