"""Column contracts of the cleaned tables and of the feature frame, shared by every layer.

Cleaned extracts hold timestamps as tz-naive ``datetime64[us]`` in UTC, GUIDs as lower-case strings, and no personal
fields (no names, no e-mail addresses): only what the model needs.
"""

from __future__ import annotations

# Cleaned `leads` table: one row per person (latest version).
LEAD_COLUMNS: dict[str, str] = {
    "person_guid": "string",
    "ref": "Int64",
    "origin_date": "datetime64[us]",
    "source": "string",  # normalized, see data.clean.SOURCE_LABELS
    "college": "string",  # college of interest; <NA> when the lead has none
    "application_created": "datetime64[us]",  # NaT while no application
    "is_test": "bool",
    "updated": "datetime64[us]",
}

# Cleaned `interactions` table: one row per interaction.
INTERACTION_COLUMNS: dict[str, str] = {
    "interaction_guid": "string",
    "person_guid": "string",
    "kind": "string",  # one of slate.queries.INTERACTION_KINDS
    "detail": "string",
    "occurred": "datetime64[us]",
}

# Features of a lead as of a date (data.features.features_as_of). Counts are of events stamped strictly before as_of.
FEATURE_NUMERIC: tuple[str, ...] = (
    "days_as_lead",
    "email_sent",
    "email_open",
    "email_click",
    "email_open_rate",  # opens / sent (0 when none sent; see no_email_sent)
    "email_click_rate",  # clicks / sent
    "email_sent_30d",
    "email_open_30d",
    "email_click_30d",
    "days_since_last_engagement",  # open, click, ping, activity or event; days_as_lead when never (see never_engaged)
    "pings",
    "pings_30d",
    "distinct_urls",
    "ping_apply",
    "ping_visit",
    "ping_aid",
    "ping_program",
    "activity_appointment",
    "activity_chat",
    "activity_email",
    "activity_phone",
    "activity_walkin",
    "events_registered",
    "events_attended",
)
FEATURE_FLAGS: tuple[str, ...] = ("college_missing", "no_email_sent", "never_engaged", "opted_out")
FEATURE_CATEGORICAL: tuple[str, ...] = ("source", "college")
# Features whose missing values are filled in (so models see a value), and the flag that marks where: monitoring
# counts the filled-in rows as missing, so a jump in missing data shows as one.
FILLED_IN: dict[str, str] = {
    "college": "college_missing",  # "Unknown"
    "days_since_last_engagement": "never_engaged",  # days_as_lead
    "email_open_rate": "no_email_sent",  # 0
    "email_click_rate": "no_email_sent",  # 0
}
FEATURE_COLUMNS: tuple[str, ...] = FEATURE_NUMERIC + FEATURE_FLAGS + FEATURE_CATEGORICAL
AGE_COLUMN = "days_as_lead"
