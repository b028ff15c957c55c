"""Weekly data intervals: the unit of work of `lead_data` and `lead_inference`.

A run processes exactly one interval ``[start, end)``: Monday 00:00 UTC to the next Monday 00:00 UTC, the week that
just ended. Scores are dated by the interval's end. No function here reads the clock: callers pass the moment a run
was due (Airflow's ``run_after``) when a run has no data interval (a manual or asset-triggered run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

WEEKLY_CRON = "0 0 * * 1"  # Monday 00:00 UTC: each run covers the Monday-to-Monday week that just ended
MONTHLY_CRON = "0 3 1 * *"


@dataclass(frozen=True)
class Interval:
    """A half-open interval [start, end) of naive UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @property
    def key(self) -> str:
        """The interval's file key, e.g. ``20261116_20261123``."""
        return f"{self.start:%Y%m%d}_{self.end:%Y%m%d}"

    @property
    def end_date(self) -> date:
        """The scoring date of the interval (its end)."""
        return self.end.date()

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def to_naive_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to naive UTC; a naive one is taken as UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def week_ending_on_or_before(moment: datetime) -> Interval:
    """The Monday-to-Monday week that ended most recently at or before ``moment``."""
    moment = to_naive_utc(moment)
    monday = datetime(moment.year, moment.month, moment.day) - timedelta(days=moment.weekday())
    return Interval(monday - timedelta(days=7), monday)


def week_starting(day: date | datetime) -> Interval:
    """The week that starts on the Monday of ``day``'s week (``make backfill FROM=...`` style dates)."""
    d = day.date() if isinstance(day, datetime) else day
    monday = datetime(d.year, d.month, d.day) - timedelta(days=d.weekday())
    return Interval(monday, monday + timedelta(days=7))


def weeks_between(first: date, last: date) -> list[Interval]:
    """Every week whose start lies in [Monday of ``first``, ``last``], in order (the weeks a backfill covers)."""
    if last < first:
        raise ValueError(f"backfill range is empty: TO {last} is before FROM {first}")
    out: list[Interval] = []
    current = week_starting(first)
    while current.start.date() <= last:
        out.append(current)
        current = Interval(current.end, current.end + timedelta(days=7))
    return out


def resolve_interval(
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime | None,
    as_of_override: str | None = None,
) -> Interval:
    """The interval a run processes.

    Args:
        data_interval_start, data_interval_end: the run's data interval, when it has one (scheduled, backfill, dags test).
        run_after: when the run was due; used for runs with no data interval (manual without a logical date).
        as_of_override: an ISO date from a manual trigger's ``as_of`` param: process the week ending on or before it.
    Returns:
        The Interval. Scheduled runs get exactly their data interval; manual runs without one get the most recently
        ended week.
    Raises:
        ValueError: no way to determine the interval, or an unparsable ``as_of``.
    """
    if as_of_override:
        try:
            as_of = datetime.fromisoformat(as_of_override)
        except ValueError as exc:
            raise ValueError(f"param as_of={as_of_override!r} is not an ISO date (YYYY-MM-DD)") from exc
        return week_ending_on_or_before(as_of)
    if data_interval_start is not None and data_interval_end is not None:
        start, end = to_naive_utc(data_interval_start), to_naive_utc(data_interval_end)
        if end > start:
            return Interval(start, end)
    if run_after is not None:
        return week_ending_on_or_before(run_after)
    raise ValueError("the run has no data interval and no run_after: pass the `as_of` param (YYYY-MM-DD)")
