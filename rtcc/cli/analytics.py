"""``rtcc analytics``: hotspots, their honest evaluation, and unreported gunfire, on incident records.

* ``rtcc analytics evaluate --data DIR [--city sf|oakland|all] [--json]`` — rolling fit-12-months /
  test-next-month evaluation: PAI and hit rate at 1 % and 5 % of the area, per method, against the
  naive baseline (last month's counts).
* ``rtcc analytics hotspots --data DIR --city sf [--shift night] [-o cells.geojson]`` — hotspot
  cells or a shift's recommended cells from the last days of a record.
* ``rtcc analytics unreported --incidents FILE --calls CAD.csv`` — share of incidents with no
  911/CAD call within R metres and ±T minutes.

``--data`` defaults to ``$RTCC_INCIDENTS_DIR``, else ``../shared/data/incidents``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from rtcc.cli.output import err, fail, out
from rtcc.errors import RtccError

analytics_app = typer.Typer(
    help="Hotspots, deployment recommendations and their evaluation.", no_args_is_help=True
)

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Folder of incident records (default $RTCC_INCIDENTS_DIR or ../shared/data/incidents)."
    ),
]


MIN_TEST, MIN_TEST_SHIFT = 20, 5
"""Default ``--min-test`` of ``evaluate``: all hours, and one shift's incidents."""


def _fail(exc: RtccError) -> NoReturn:
    fail(escape(exc.message))


def _cities(city: str) -> list[str]:
    from rtcc.analytics.records import CITIES

    if city == "all":
        return list(CITIES)
    if city not in CITIES:
        fail(f"unknown city {escape(repr(city))}; choose one of: {', '.join([*CITIES, 'all'])}")
    return [city]


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(x) / 100 for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"--shares takes percentages separated by commas, e.g. 1,5 (got {escape(text)!r})")
    if not shares or not all(0 < s < 1 for s in shares):
        fail("--shares: each percentage must lie strictly between 0 and 100")
    return shares


def _params(params: dict[str, Any]) -> str:
    """Compact parameters: ``bw 0.08 hl 60d`` (hl: recency half-life; none: equal weights)."""
    parts = []
    for k, v in params.items():
        if k == "half_life_days":
            parts.append(f"hl {v:g}d" if v is not None else "hl none")
        else:
            parts.append(f"{'bw' if k == 'bandwidth' else k} {v:g}")
    return " ".join(parts) or "-"


def _tables(ev: dict[str, Any]) -> list[Table]:
    head = (
        f"{ev['city']}: fit {ev['fit_months']} months → test next month, H3 res {ev['res']} "
        f"({ev['cells']} cells, {ev['area_km2']} km²), {len(ev['test_months'])} test months "
        f"{ev['test_months'][0]}…{ev['test_months'][-1]}"
    )
    tables = []
    for key in ev["shares_pct"]:
        t = Table(title=f"{head}; {key} of the area flagged", title_justify="left")
        for col in ("method", "params", "PAI", "median", "hit", "±naive", "p"):
            t.add_column(col, no_wrap=True, justify="left" if col in ("method", "params") else "right")
        for name, r in ev["methods"].items():
            fig = r["per_share"][key]
            t.add_row(
                name,
                _params(r["params"]),
                f"{fig['pai_mean']:.2f}",
                f"{fig['pai_median']:.2f}",
                f"{fig['hit_rate_mean']:.1%}",
                "-"
                if name == "naive"
                else f"+{fig['months_better_than_naive']}/-{fig['months_worse_than_naive']}",
                "-" if name == "naive" else f"{fig['p_vs_naive']:.3f}",
            )
        tables.append(t)
    return tables


@analytics_app.command("evaluate")
def evaluate_cmd(
    data: DataOpt = None,
    city: Annotated[str, typer.Option(help="sf, oakland or all.")] = "all",
    res: Annotated[int, typer.Option(min=5, max=11, help="H3 resolution (9 ≈ 0.11 km² cells).")] = 9,
    fit_months: Annotated[
        int, typer.Option(min=1, max=60, help="Months fitted before each test month.")
    ] = 12,
    tune_months: Annotated[
        int, typer.Option(min=0, max=24, help="Earliest test months used only to choose parameters.")
    ] = 3,
    min_test: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Skip test months with fewer incidents (data gaps); default 20, or 5 with --shift.",
        ),
    ] = None,
    shares: Annotated[
        str, typer.Option(help="Flagged-area shares in %, comma-separated; the last one tunes.")
    ] = "1,5",
    shift: Annotated[
        str | None, typer.Option(help="Only this shift's incidents (day, evening, night; local time).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Fit on one period, test on the next, rolled over the record: PAI and hit rate vs the naive baseline."""
    from rtcc.analytics.evaluate import evaluate
    from rtcc.analytics.grid import StudyArea
    from rtcc.analytics.hotspots import in_shift
    from rtcc.analytics.records import incidents_dir, load_city

    share_t = _shares(shares)
    if min_test is None:  # a single shift holds about a third of the incidents (docs/analytics.md)
        min_test = MIN_TEST if shift is None else MIN_TEST_SHIFT
    results = []
    for name in _cities(city):
        try:
            inc = load_city(incidents_dir(data), name)
            # the study area always comes from the whole record, so a shift's PAI uses the same area
            area = StudyArea.covering(inc.lat, inc.lon, res)
            label = name if shift is None else f"{name} {shift} shift"
            if shift is not None:
                inc = in_shift(inc, shift)
            with err.status(f"evaluating {label} ({len(inc)} incidents)…"):
                ev = evaluate(
                    inc,
                    area=area,
                    city=label,
                    res=res,
                    fit_months=fit_months,
                    shares=share_t,
                    tune_folds=tune_months,
                    min_test=min_test,
                )
        except RtccError as exc:
            _fail(exc)
        results.append(ev.to_dict())
    if as_json:
        sys.stdout.write(json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n")
        return
    for ev_d in results:
        ev_d["shares_pct"] = list(next(iter(ev_d["methods"].values()))["per_share"])
        for table in _tables(ev_d):
            out.print(table)
        out.print(
            "±naive: test months a method beat / lost to the naive baseline; p: two-sided Wilcoxon "
            "signed-rank test of the monthly PAI differences",
            highlight=False,
        )
        out.print(
            f"tuning months (not reported): {', '.join(ev_d['tuning_months'])}; "
            f"skipped months: {', '.join(ev_d['skipped_months']) or 'none'}; "
            f"records dropped (bad position/time): {ev_d['dropped']}",
            highlight=False,
        )


@analytics_app.command("hotspots")
def hotspots_cmd(
    data: DataOpt = None,
    city: Annotated[str, typer.Option(help="sf or oakland.")] = "sf",
    days: Annotated[int, typer.Option(min=1, max=3650, help="The last N days of the record.")] = 365,
    res: Annotated[int, typer.Option(min=5, max=11, help="H3 resolution.")] = 9,
    shift: Annotated[str | None, typer.Option(help="day, evening or night: recommend cells for it.")] = None,
    k: Annotated[int, typer.Option("-k", "--cells", min=1, max=100, help="Cells to list or recommend.")] = 10,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the GeoJSON here.")] = None,
) -> None:
    """Hotspot cells (counts, KDE, Gi*) or a shift's top cells from the last days of a record."""
    import numpy as np

    from rtcc.analytics.hotspots import hotspots, recommendations
    from rtcc.analytics.records import incidents_dir, load_city

    names = _cities(city)
    if len(names) != 1:
        fail(f"hotspots reads one city at a time: choose --city {' or --city '.join(names)}")
    (name,) = names
    try:
        inc = load_city(incidents_dir(data), name)
        if len(inc):
            inc = inc.between(inc.t[-1] - np.timedelta64(days, "D"), inc.t[-1] + np.timedelta64(1, "s"))
        now = inc.t[-1].item() if len(inc) else None
        geo = (
            recommendations(inc, shift=shift, k=k, res=res, now=now)
            if shift
            else hotspots(inc, res=res, now=now)
        )
    except RtccError as exc:
        _fail(exc)
    if output is not None:
        try:
            output.write_text(json.dumps(geo) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {escape(str(output))}: {escape(exc.strerror or str(exc))}")
        err.print(f"wrote {len(geo['features'])} cells to {escape(str(output))}", highlight=False)
        return
    t = Table(
        title=f"{name}: {'shift ' + shift if shift else 'hotspots'}, last {days} days", title_justify="left"
    )
    cols = ["rank", "cell", "score", "count"] if shift else ["cell", "count", "kde_share", "gi_z", "hotspot"]
    for c in cols:
        t.add_column(c)
    for f in geo["features"][: k if not shift else None]:
        t.add_row(*(str(f["properties"].get(c)) for c in cols))
    out.print(t)


@analytics_app.command("unreported")
def unreported_cmd(
    incidents: Annotated[
        Path, typer.Option(help="Gunshot incidents: time,lat,lon CSV or a ShotSpotter file.")
    ],
    calls: Annotated[Path, typer.Option(help="911/CAD calls CSV: time,lat,lon[,call_type].")],
    radius: Annotated[
        float, typer.Option(min=1, max=10000, help="Metres between incident and call.")
    ] = 250.0,
    window: Annotated[
        float, typer.Option(min=0.5, max=1440, help="Minutes before or after the incident.")
    ] = 15.0,
    call_types: Annotated[
        str | None,
        typer.Option(help="Only these call types count (comma-separated), e.g. 'shots fired,221'."),
    ] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows (counted) instead of failing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Share of gunshot incidents with no 911/CAD call within RADIUS m and ±WINDOW min."""
    from rtcc.analytics.unreported import read_calls, read_incidents, unreported_share

    try:
        inc, inc_aware = read_incidents(incidents, skip_bad=skip_bad)
        cad, cad_aware = read_calls(calls, skip_bad=skip_bad)
        if inc_aware is not None and cad_aware is not None and inc_aware != cad_aware:
            fail("one file has times with UTC offsets and the other local times: use the same clock in both")
        types = [c.strip() for c in call_types.split(",") if c.strip()] if call_types else None
        res = unreported_share(inc, cad, radius_m=radius, window_min=window, call_types=types)
    except RtccError as exc:
        _fail(exc)
    d = {**res.to_dict(), "skipped_call_rows": len(cad.skipped), "skipped_incident_rows": inc.dropped}
    if as_json:
        sys.stdout.write(json.dumps(d, indent=2) + "\n")
        return
    share = "n/a" if res.share_unreported is None else f"{res.share_unreported:.1%}"
    out.print(
        f"{res.unreported} of {res.judged} incidents had no call within {radius:g} m and ±{window:g} min: "
        f"{share} unreported ({res.outside_coverage} outside the calls' period; "
        f"{res.calls_used} of {res.calls} calls used; "
        f"skipped rows: {len(cad.skipped)} calls, {inc.dropped} incidents)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``rtcc analytics …`` to ``app``."""
    app.add_typer(analytics_app, name="analytics")
