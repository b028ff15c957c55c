"""The HTML pieces the reports share: the page skeleton (:func:`html_page`), the chart encoder
(:func:`figure_data_uri`), the table helper (:func:`html_table`), number formatting and the contact-list sentence.

Self-contained pages: matplotlib charts inlined as base64 PNGs, inline CSS, no external assets.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore.scoring.outreach import ContactPlan

STATUS_COLORS = {"ok": "#1b7837", "warning": "#b35806", "failed": "#b2182b"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.status{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:.9rem}
.summary{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 18px;margin:16px 0}
.summary li{margin:4px 0}.fail{color:#b2182b;font-weight:600}.warn{color:#b35806}
table{border-collapse:collapse;background:#fff;font-size:.85rem;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#eef0f3}
td:first-child,th:first-child{text-align:left}
figure{margin:8px 0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px;display:inline-block}
figure img{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
.grid{display:flex;flex-wrap:wrap;gap:12px}.muted{color:#666;font-size:.85rem}
"""


def esc(value: Any) -> str:
    """HTML-escaped text of a value."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: thousands separators for counts, ``digits`` decimals, "n/a" for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) >= 100:
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage ("n/a" for missing)."""
    if value is None or not isinstance(value, int | float | np.floating) or not math.isfinite(float(value)):
        return "n/a"
    return f"{100 * float(value):.{digits}f} %"


def figure_data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # reports are rendered in workers without a display
    import matplotlib.pyplot as plt

    return plt


def figure_html(uri: str, caption: str) -> str:
    """An inline image with its caption."""
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def html_table(frame: pd.DataFrame, formats: dict[str, Any] | None = None, max_rows: int = 50) -> str:
    """A small HTML table of ``frame`` (index dropped); ``formats`` maps a column to a formatting function."""
    formats = formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for _, row in frame.head(max_rows).iterrows():
        cells = "".join(f"<td>{esc(formats.get(c, fmt)(row[c]))}</td>" for c in frame.columns)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="muted">{len(frame) - max_rows} more rows not shown.</p>' if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def html_page(
    title: str,
    subtitle: str,
    summary_items: Sequence[str],
    sections: Sequence[tuple[str, str]],
    status: str | None = None,
) -> str:
    """A complete self-contained HTML page.

    Args:
        title: the page title (also the h1).
        subtitle: a line under the title.
        summary_items: the text summary at the top, one bullet each (already-escaped HTML allowed).
        sections: (heading, HTML body) pairs.
        status: optional ok/warning/failed badge.
    """
    badge = ""
    if status:
        badge = (
            f' <span class="status" id="status" style="background:{STATUS_COLORS.get(status, "#555")}">'
            f"{esc(status.upper())}</span>"
        )
    items = "".join(f"<li>{item}</li>" for item in summary_items)
    body = "".join(f"<section><h2>{esc(h)}</h2>{content}</section>" for h, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>"
        f'<h1>{esc(title)}{badge}</h1><p class="muted">{esc(subtitle)}</p>'
        f'<div class="summary" id="summary"><strong>Summary</strong><ul>{items}</ul></div>'
        f"{body}</main></body></html>\n"
    )


def contact_sentence(plan: ContactPlan, application_value: float, contact_cost: float) -> str:
    """The best contact list in one sentence: list size, score cut-off, expected applications and net value."""
    economics = (
        f"an application worth {application_value:,.0f} and a contact costing {contact_cost:,.0f}"
        f" (break-even probability {pct(plan.break_even)})"
    )
    if not plan.list_size:
        return f"With {economics}, no lead is worth a contact: no lead's probability is above break-even."
    why = {
        "capacity": "capacity is the limit: more leads are above break-even",
        "break-even": "below that cut-off a contact costs more than it is expected to bring",
        "leads": "every open lead is worth a contact",
    }[plan.limited_by]
    return (
        f"With {economics}, the best list within {plan.capacity:,} contacts is the top {plan.list_size:,} leads, "
        f"down to probability {pct(plan.cutoff, 2)}: {fmt(plan.expected_applications, 1)} expected applications, "
        f"expected net value {plan.expected_net_value:,.0f} ({why})."
    )
