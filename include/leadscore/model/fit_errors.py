"""Why a candidate model could not be fitted, and one line that says so.

A candidate that cannot be fitted (an inner split without one of the outcomes, a solver that does not converge, any
library error) is skipped by training while the others compete; ``describe_failure`` turns the exception into the
reason shown in the log, the MLflow run and the training report, never a library traceback.
"""

from __future__ import annotations

import numpy as np

MAX_REASON = 300


class CandidateFitError(ValueError):
    """One candidate cannot be fitted on this data (the message says what the data lacks)."""


class InvalidProbabilityError(ValueError):
    """A fitted model returned probabilities that are NaN or outside [0, 1]."""


def require_both_classes(label: np.ndarray, where: str) -> None:
    """Raise CandidateFitError unless ``label`` (NaN = unknown) holds both 0 and 1.

    Args:
        label: 0/1 outcomes, NaN where unknown. where: which rows these are, for the message.
    """
    label = np.asarray(label, dtype=float)
    known = label[~np.isnan(label)]
    positives = int((known == 1).sum())
    if positives == 0 or positives == len(known):
        raise CandidateFitError(
            f"{where}: {len(known)} labelled rows, {positives} of them with an application within the horizon; "
            "both outcomes are needed"
        )


def check_probabilities(p: np.ndarray, what: str) -> np.ndarray:
    """Return ``p`` as float64 when every value is in [0, 1]; else raise InvalidProbabilityError naming how many
    values are NaN or out of range (never clip: a model answering nonsense must not look plausible)."""
    p = np.asarray(p, dtype=np.float64)
    bad = ~((p >= 0.0) & (p <= 1.0))  # NaN compares False, so it is bad
    if bad.any():
        example = p[bad][:3].tolist()
        raise InvalidProbabilityError(
            f"{what} returned {int(bad.sum())} of {len(p)} probabilities that are NaN or outside [0, 1] "
            f"(e.g. {example})"
        )
    return p


def describe_failure(exc: BaseException) -> str:
    """One line: our own errors as they are, a library's as ``<Type> from <module>: <first line>``."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, CandidateFitError | InvalidProbabilityError):
        reason = text
    else:
        module = type(exc).__module__.split(".")[0]
        reason = f"{type(exc).__name__} from {module}: {text}" if text else f"{type(exc).__name__} from {module}"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"
