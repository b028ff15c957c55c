"""The champion: load the version behind alias ``champion`` (now, or the one a week had), and move the alias.

The registered model is ``settings.model_name``; ``model.champions`` holds the alias history and the rule of which
version scores a week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from leadscore.model import champions
from leadscore.model.champions import NoChampionError
from leadscore.model.lead_model import LeadModel
from leadscore.model.tracking import ALIAS
from leadscore.model.tracking import mlflow_client as _client
from leadscore.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Champion:
    """The current champion: its LeadModel, registry version and the run that produced it."""

    model: LeadModel
    version: str
    run_id: str


def load_champion(settings: Settings) -> Champion:
    """Load the model with alias ``champion`` of ``settings.model_name`` (the current champion: the gate compares
    with it; scoring uses :func:`champion_for_week`).

    Raises:
        NoChampionError: no version has the alias (or the model is not registered).
    """
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        mv = client.get_model_version_by_alias(settings.model_name, ALIAS)
    except MlflowException as exc:
        raise NoChampionError(
            f"no model has alias {ALIAS} in {settings.tracking_uri} (registered model {settings.model_name}); "
            "run lead_training first"
        ) from exc
    return _load_version(settings, str(mv.version), str(mv.run_id))


def _load_version(settings: Settings, version: str, run_id: str) -> Champion:
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    return Champion(loaded.unwrap_python_model().lead_model, version, run_id)


def _alias_version(client, settings: Settings) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(settings.model_name, ALIAS).version)
    except MlflowException:
        return None


def alias_history(settings: Settings) -> list[champions.AliasEvent]:
    """Every recorded move of ``@champion``, in promotion order (see ``model.champions``)."""
    return champions.read_history(_client(settings), settings.model_name)


def champion_for_week(settings: Settings, week_end: datetime) -> Champion:
    """Load the version that held ``@champion`` for the week ending at ``week_end`` (the rule of
    ``model.champions``): a backfill or re-run of a week scores with the version the week had.

    Raises:
        NoChampionError: no champion at all (run lead_training first).
        NoChampionForWeekError: the week ended before the first champion took effect.
        ChampionHistoryError: the alias has no recorded history or was moved outside LeadScore.
    """
    client = _client(settings)
    event = champions.resolve(
        champions.read_history(client, settings.model_name),
        week_end,
        _alias_version(client, settings),
        settings.model_name,
    )
    mv = client.get_model_version(settings.model_name, event.version)
    return _load_version(settings, event.version, str(mv.run_id))


def has_champion(settings: Settings) -> bool:
    """Whether a version of ``settings.model_name`` has the alias ``champion`` (no model is loaded).

    Raises:
        MlflowException: the tracking server cannot be reached (an outage is not "no champion").
    """
    from mlflow.exceptions import MlflowException

    try:
        _client(settings).get_model_version_by_alias(settings.model_name, ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise
    return True


def _last_scored(settings: Settings):
    from leadscore.scoring.files import previous_manifest

    latest = previous_manifest(settings.scores_dir, date.max)
    return latest.scored_on_date if latest else None


def promote(
    version: str, settings: Settings, reason: str = "manual", effective: datetime | None = None
) -> champions.AliasEvent:
    """Point alias ``champion`` at ``version`` of ``settings.model_name`` and record the move in the alias history.

    The version scores weeks ending from the later of its training ``as_of`` and the day after the last week already
    scored under ``settings.scores_dir`` (``model.champions``), unless ``effective`` says otherwise.
    Returns:
        The recorded alias event.
    """
    event = champions.move_alias(
        _client(settings),
        settings.model_name,
        ALIAS,
        str(version),
        now=datetime.now(UTC).replace(tzinfo=None),  # the audit time of the move; never used to pick a week's model
        last_scored=_last_scored(settings),
        reason=reason,
        effective=effective,
    )
    log.info(
        "%s@%s -> version %s, scores weeks ending from %s", settings.model_name, ALIAS, version, event.effective_from
    )
    return event


def rollback(version: str, settings: Settings, effective: datetime | None = None) -> champions.AliasEvent:
    """Move alias ``champion`` back (or forward) to another ``version``: a manual operation, logged and recorded in
    the alias history. Weeks already scored keep their version."""
    log.warning("rolling back %s alias %s to version %s", settings.model_name, ALIAS, version)
    return promote(version, settings, reason="set", effective=effective)
