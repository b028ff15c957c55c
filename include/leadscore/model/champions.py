"""The history of the ``champion`` alias, so a past week is scored by the version that served it.

MLflow aliases have no history of their own: moving ``@champion`` forgets where it pointed. Every move LeadScore
makes (the training gate, ``python -m leadscore champion --set``) therefore also writes one *alias event* as a tag
of the registered model, ``champion_history.<promoted_at>`` = JSON::

    {"version": "3", "promoted_at": "2026-12-01T03:12:09.123456", "effective_from": "2026-11-30T00:00:00",
     "as_of": "2026-11-30T00:00:00", "reason": "gate", "previous": "2"}

The rule (README "Which champion scores a week"): the week ending at ``E`` is scored by the version of the latest
event, in promotion (wall-clock) order, whose ``effective_from`` is at or before ``E``. ``effective_from`` is the
later of the version's training ``as_of`` (a model never scores a week that ended before the data it was fitted on)
and the day after the last week already scored when the alias moved (a promotion never changes a week that was
already written); the first champion of a fresh install, promoted before any week was scored, serves every week
(the catch-up after unpausing). A backfilled or re-run week therefore gets exactly the version, and so the file, it had. The
scheduled run uses the same rule as a backfill, so both always agree.

Pure wall-clock keying ("the alias at instant ``E``") would also reproduce delivered files, but no model trained
today could ever score a week that ended before today: a first install, the sandbox and the demo (which train as of
the latest extract and then score that week) would have no champion for any week.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

TAG_PREFIX = "champion_history."
_STAMP = "%Y%m%dT%H%M%S%f"


class NoChampionError(LookupError):
    """No registered model version carries the alias ``champion``."""


class NoChampionForWeekError(NoChampionError):
    """No version held ``@champion`` for the week asked for (it ended before the first champion took effect)."""


class ChampionHistoryError(NoChampionError):
    """The alias history is missing or disagrees with the alias (it was moved outside LeadScore)."""


@dataclass(frozen=True)
class AliasEvent:
    """One move of ``@champion``.

    Attributes:
        version: the version the alias moved to.
        promoted_at: wall-clock time of the move (naive UTC, ISO).
        effective_from: first week end (naive UTC, ISO) this version may score; see the module doc.
        as_of: the version's training as_of (ISO), or "" when unknown.
        reason: "gate" (training), "set" (the champion CLI) or "manual".
        previous: the version the alias pointed to before, or "".
    """

    version: str
    promoted_at: str
    effective_from: str
    as_of: str = ""
    reason: str = "manual"
    previous: str = ""

    @property
    def tag_key(self) -> str:
        return TAG_PREFIX + datetime.fromisoformat(self.promoted_at).strftime(_STAMP)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def effective_from(as_of: datetime | None, last_scored: date | None) -> datetime:
    """The first week end a newly promoted version may score.

    Args:
        as_of: the version's training as_of (naive UTC), or None when unknown.
        last_scored: the latest week end already scored, or None when none is.
    Returns:
        The later of ``as_of`` and the day after ``last_scored``; ``datetime.min`` when both are unknown.
    """
    bounds = [datetime.min]
    if as_of is not None:
        bounds.append(as_of)
    if last_scored is not None:
        bounds.append(datetime.combine(last_scored, datetime.min.time()) + timedelta(days=1))
    return max(bounds)


def parse_history(tags: dict[str, str]) -> list[AliasEvent]:
    """Alias events from a registered model's tags, in promotion order (tags of other keys are ignored).

    Raises:
        ChampionHistoryError: a history tag does not hold an alias event.
    """
    events = []
    for key in sorted(k for k in tags if k.startswith(TAG_PREFIX)):
        try:
            events.append(AliasEvent(**json.loads(tags[key])))
        except (TypeError, ValueError) as exc:
            raise ChampionHistoryError(f"registered-model tag {key} is not an alias event: {exc}") from exc
    return events


def resolve(events: list[AliasEvent], week_end: datetime, alias_version: str | None, model_name: str) -> AliasEvent:
    """The alias event whose version scores the week ending at ``week_end`` (see the module doc).

    Args:
        events: the history, in promotion order.
        week_end: the week's end (naive UTC).
        alias_version: where ``@champion`` points now (None when it is unset).
        model_name: for messages.
    Raises:
        NoChampionError: no champion at all.
        ChampionHistoryError: the alias is set but the history is empty, or its last event names another version.
        NoChampionForWeekError: the week ended before the first champion took effect.
    """
    fix = "record the current alias with `python -m leadscore champion --set <version>`"
    if not events:
        if alias_version is None:
            raise NoChampionError(f"no model has alias champion (registered model {model_name}); run lead_training")
        raise ChampionHistoryError(
            f"{model_name}@champion points at version {alias_version} but has no alias history, so it is unknown "
            f"which version served past weeks; {fix} (weeks already scored keep their files)"
        )
    if alias_version != events[-1].version:
        raise ChampionHistoryError(
            f"{model_name}@champion points at version {alias_version} but its last recorded move was to version "
            f"{events[-1].version} at {events[-1].promoted_at}: the alias was moved outside LeadScore; {fix}"
        )
    held = [e for e in events if datetime.fromisoformat(e.effective_from) <= week_end]
    if not held:
        first = min(events, key=lambda e: e.effective_from)
        raise NoChampionForWeekError(
            f"no champion for the week ending {week_end:%Y-%m-%d}: the first champion of {model_name} (version "
            f"{first.version}, trained as of {first.as_of[:10] or 'an unknown date'}) scores weeks ending from "
            f"{first.effective_from[:10]} on. A week before the first champion cannot be scored without using data "
            "from after it: score later weeks only, or, before any later week is scored, train as of this week's "
            "end (`python -m leadscore train --as-of <date>`) to give it a champion"
        )
    return held[-1]


def _naive_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        from datetime import UTC

        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def read_history(client, model_name: str) -> list[AliasEvent]:
    """The alias events recorded on registered model ``model_name`` (empty when it is not registered)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags
    except MlflowException:
        return []
    return parse_history(dict(tags))


def move_alias(
    client,
    model_name: str,
    alias: str,
    version: str,
    *,
    now: datetime,
    last_scored: date | None,
    reason: str,
    effective: datetime | None = None,
) -> AliasEvent:
    """Point ``alias`` at ``version`` and record the move as an alias event (written first, removed again if the
    alias cannot be set, so the history never names a move that did not happen).

    Args:
        client: an MlflowClient on the registry.
        now: the wall-clock time of the move (naive UTC).
        last_scored: the latest week end already scored (see :func:`effective_from`).
        reason: "gate", "set" or "manual".
        effective: an explicit ``effective_from`` (an operator re-issuing weeks, tests); default from the rule.
    Returns:
        The recorded event.
    """
    mv = client.get_model_version(model_name, str(version))
    as_of_text = client.get_run(mv.run_id).data.params.get("as_of", "") if mv.run_id else ""
    as_of = _naive_utc(as_of_text) if as_of_text else None
    from mlflow.exceptions import MlflowException

    try:
        previous = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:  # the alias is not set yet
        previous = ""
    if effective is not None:
        start = effective
    elif not previous and last_scored is None:
        # The first champion of a fresh install, before any file: nothing was delivered to reproduce and no other
        # model exists, so it serves the catch-up weeks too (every week since the start date gets its file).
        start = datetime.min
    else:
        start = effective_from(as_of, last_scored)
    event = AliasEvent(
        version=str(version),
        promoted_at=now.isoformat(timespec="microseconds"),
        effective_from=start.isoformat(),
        as_of=as_of.isoformat() if as_of else "",
        reason=reason,
        previous=previous,
    )
    client.set_registered_model_tag(model_name, event.tag_key, event.to_json())
    try:
        client.set_registered_model_alias(model_name, alias, str(version))
    except BaseException:
        client.delete_registered_model_tag(model_name, event.tag_key)
        raise
    return event
