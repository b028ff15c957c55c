"""Render the settings as the README's Markdown table (`python -m leadscore.settings_table`)."""

from __future__ import annotations

from dataclasses import MISSING, fields

from leadscore.settings import Settings


def markdown_table() -> str:
    """One row per setting: environment variable, default, meaning."""
    rows = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else ""
        if isinstance(default, tuple):
            default = ",".join(str(x) for x in default)
        rows.append(f"| `LEADSCORE_{f.name.upper()}` | `{default}` | {f.metadata.get('doc', '')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
