"""The monthly report: HTML and PDF with plots, aggregates only.

:func:`gather` counts a month's alerts per day and kind, outcomes per
category, the outcome ledger's table and the gunshot incidents' positions;
:func:`render` draws three plots with matplotlib (object API, Agg canvas,
DejaVu fonts shipped with matplotlib) — alerts per day, outcomes per
category, a hotspot map of incidents (hexagonal bins) — and writes
``rtcc-report-YYYY-MM.html`` (plots embedded as PNG) and ``.pdf``
(``PdfPages``). No names, plates or alert titles appear in a report. Every
figure is bounded by the month (alerts that occurred in it, outcomes recorded
in it): a past month's report does not change with later data.

The alerts by status count each alert's status *at the end of the month*, from its ``history``
(:func:`status_at`): closing an October alert in November does not change October's report.
Gunshot incidents keep no history (only their current ``status`` and when they were reviewed,
``reviewed_at``): the hotspot map shows the month's incidents that are ``alerted``, ``confirmed`` or
``pending_review`` *now*, so an incident of the month confirmed or dismissed in review after the
month is shown as it was decided, not as it stood at the month's end.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.errors import ValidationFailed
from rtcc.ops.ledger import OUTCOME_CATEGORIES, outcome_stats
from rtcc.store.tables import GunshotIncidentRow
from rtcc.store.tables_ops import AlertRow

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_range(text: str, *, today: date | None = None) -> tuple[datetime, datetime]:
    """The UTC start and end of month ``YYYY-MM``.

    Raises
    ------
    ValidationFailed
        Not ``YYYY-MM``, a month outside 1-12, before 2000, or in the future.
    """
    m = MONTH_RE.match(text.strip())
    if not m:
        raise ValidationFailed(f"--month {text!r} is not YYYY-MM (e.g. 2026-10)")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise ValidationFailed(f"--month {text!r}: the month must be 01-12")
    today = today or datetime.now(UTC).date()
    if year < 2000 or (year, month) > (today.year, today.month):
        raise ValidationFailed(f"--month {text!r} is outside 2000-01 … {today:%Y-%m}")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass
class ReportData:
    month: str
    start: datetime
    end: datetime
    alerts_per_day: dict[date, Counter[str]] = field(default_factory=dict)
    alerts_by_status: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    incidents: list[tuple[float, float]] = field(default_factory=list)

    @property
    def alert_count(self) -> int:
        return sum(sum(c.values()) for c in self.alerts_per_day.values())


def _step_time(step: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(step["at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def status_at(history: list[Any] | None, end: datetime) -> str:
    """An alert's status just before ``end``: that of its last ``history`` step before it.

    An alert with no step before ``end`` (none recorded, or all later) counts as ``new``.
    """
    status, last = "new", None
    for step in history or []:
        at = _step_time(step)
        if at is None or at >= end or not isinstance(step, dict) or not step.get("status"):
            continue
        if last is None or at >= last:
            status, last = str(step["status"]), at
    return status


def gather(session: Session, month: str, start: datetime, end: datetime) -> ReportData:
    data = ReportData(month=month, start=start, end=end)
    day = start.date()
    while day < end.date():
        data.alerts_per_day[day] = Counter()
        day += timedelta(days=1)
    for occurred_at, kind, history in session.execute(
        select(AlertRow.occurred_at, AlertRow.kind, AlertRow.history).where(
            AlertRow.occurred_at >= start, AlertRow.occurred_at < end
        )
    ):
        data.alerts_per_day.setdefault(occurred_at.date(), Counter())[kind] += 1
        data.alerts_by_status[status_at(history, end)] += 1
    # the ledger of the month only: what was recorded in it, about its alerts (not what came after)
    data.ledger = outcome_stats(session, start, end)
    data.outcomes = {c: int(data.ledger["per_category"].get(c, 0)) for c in OUTCOME_CATEGORIES}
    data.incidents = [
        (float(lat), float(lon))
        for lat, lon in session.execute(
            select(GunshotIncidentRow.lat, GunshotIncidentRow.lon).where(
                GunshotIncidentRow.occurred_at >= start,
                GunshotIncidentRow.occurred_at < end,
                GunshotIncidentRow.status.in_(("alerted", "confirmed", "pending_review")),
            )
        )
    ]
    return data


def _figures(data: ReportData) -> list[tuple[str, Any]]:
    from matplotlib.figure import Figure

    figs: list[tuple[str, Any]] = []
    # 1. alerts per day, stacked by kind
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    days = sorted(data.alerts_per_day)
    kinds = sorted({k for c in data.alerts_per_day.values() for k in c})
    bottom = [0] * len(days)
    for kind in kinds:
        vals = [data.alerts_per_day[d][kind] for d in days]
        ax.bar([d.day for d in days], vals, bottom=bottom, label=kind.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xlabel(f"day of {data.month}")
    ax.set_ylabel("alerts")
    ax.set_title("Alerts per day")
    if kinds:
        ax.legend(fontsize=8)
    figs.append(("Alerts per day", fig))
    # 2. outcomes per category
    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    labels = [c.replace("_", " ") for c in data.outcomes]
    ax.barh(labels, list(data.outcomes.values()), color="#4477aa")
    ax.invert_yaxis()
    ax.set_xlabel("outcomes recorded")
    ax.set_title("Outcomes per category")
    figs.append(("Outcomes", fig))
    # 3. hotspot map of incidents
    fig = Figure(figsize=(6.5, 6.0), layout="constrained")
    ax = fig.add_subplot()
    if data.incidents:
        lats = [p[0] for p in data.incidents]
        lons = [p[1] for p in data.incidents]
        hb = ax.hexbin(lons, lats, gridsize=25, mincnt=1, cmap="inferno_r")
        fig.colorbar(hb, ax=ax, label="incidents per cell")
        ax.set_aspect(1 / max(math.cos(math.radians(sum(lats) / len(lats))), 1e-6))
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    else:
        ax.text(0.5, 0.5, "No gunshot incidents this month", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("Gunshot incidents: hotspot map")
    figs.append(("Hotspot map", fig))
    return figs


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def _summary_rows(data: ReportData) -> list[tuple[str, str]]:
    led = data.ledger
    share = led.get("share_no_outcome")
    rows = [
        ("Alerts", str(data.alert_count)),
        (
            "Alerts by status",
            ", ".join(f"{k} {v}" for k, v in sorted(data.alerts_by_status.items())) or "none",
        ),
        ("Gunshot incidents on the map", str(len(data.incidents))),
        ("Outcome ledger", str(led.get("summary", ""))),
        ("Share of alerts with no outcome", "n/a" if share is None else f"{100 * share:.1f} %"),
    ]
    rows += [(c.replace("_", " "), str(n)) for c, n in data.outcomes.items()]
    return rows


def render(data: ReportData, out_dir: Path) -> tuple[Path, Path]:
    """Write the HTML and PDF reports into ``out_dir``; returns their paths."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"rtcc-report-{data.month}"
    figs = _figures(data)
    rows = _summary_rows(data)
    title = f"rtcc — monthly report {data.month}"
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    plots = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, fig in figs
    )
    html_path = base.with_suffix(".html")
    html_path.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}}th{{text-align:left;padding-right:2rem}}
img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{data.start:%Y-%m-%d} to {(data.end - timedelta(days=1)):%Y-%m-%d} (UTC). Aggregates only.</p>
<table>{table}</table>
{plots}
</body></html>
""",
        encoding="utf-8",
    )
    pdf_path = base.with_suffix(".pdf")
    with PdfPages(pdf_path, metadata={"Title": title, "Creator": "rtcc"}) as pdf:
        cover = Figure(figsize=(8.27, 11.69))
        cover.text(0.08, 0.94, title, fontsize=16, weight="bold")
        y = 0.88
        for k, v in rows:
            cover.text(0.08, y, k, fontsize=10)
            cover.text(0.55, y, v[:60], fontsize=10)
            y -= 0.03
        pdf.savefig(cover)
        for _, fig in figs:
            pdf.savefig(fig)
    return html_path, pdf_path
