"""Errors of scoring, score files and the delivery safety checks.

Each message names what failed (column, row count, share) and what to do next.
"""

from __future__ import annotations


class ScoringError(Exception):
    """Base class of every scoring error."""


class SelectionError(ScoringError, ValueError):
    """The leads or features given to the lead selection break their contract (missing column, duplicate GUID)."""


class ScoreValidationError(ScoringError):
    """The model produced unusable scores (NaN, outside [0, 1], wrong length) or the inputs cannot be scored."""


class DeliverySafetyError(ScoringError):
    """The score set looks empty, truncated or implausibly different from last week: delivery is refused."""


class ScoreFileError(ScoringError):
    """A score file or manifest cannot be written or read as the contract requires."""
