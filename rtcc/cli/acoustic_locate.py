"""``rtcc acoustic locate PULSES.csv`` — associate pulses into shots and locate each, one JSON line per shot.

Contract (independent evaluations use it)::

    rtcc acoustic locate PULSES.csv [--temperature-c T] [--calibration FILE] [--min-sensors N]

``PULSES.csv`` has a header with the columns ``sensor_id,x_m,y_m,z_m,arrival_utc[,snr_db]``
(metres in one local frame; ``arrival_utc`` ISO 8601, e.g. ``2018-12-19T00:49:29.384123Z``) and
holds every pulse reported around one or more events — several rounds, echoes, strays, in any
order. Each located shot prints one line::

    {"time_utc": "2018-12-19T00:49:28.112345Z", "x_m": ..., "y_m": ..., "z_m": ...,
     "ellipse_major_m": ..., "ellipse_minor_m": ..., "ellipse_angle_deg": ..., "sensors": [...]}

(``ellipse_*``: 95 % ellipse semi-axes in metres, major-axis bearing in degrees clockwise from
north.) A shot is reported when at least ``--min-sensors`` (10) sensors agree, or 8 with 3 loud
pulses (:func:`rtcc.acoustic.locate.locate_all`); when nothing is located, stderr says so and why.
Exit codes: 0 done (bad rows, if any, were reported on stderr by line number and the others
used); 2 bad input — missing or unreadable file, missing columns, or no usable row, a sensor whose
rows put it at two places more than 100 m apart horizontally (:data:`MAX_SENSOR_SPREAD_M`: a sensor
that moved needs another ``sensor_id``; GPS jitter between clips, ~20 m, is accepted), or a bad
calibration file; or a bad option (``--temperature-c nan``).

``--calibration FILE`` (optional) applies per-sensor corrections fitted from test fires
(``rtcc acoustic calibrate``, :mod:`rtcc.acoustic.calibration`) to the pulses before they are
located; sensors the file does not name are left as they are. Without it the output is unchanged.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console

from rtcc.acoustic.associate import AssociationParams
from rtcc.acoustic.calibration import Calibration, CalibrationError
from rtcc.acoustic.locate import Arrival, Fix, locate_all

_err = Console(stderr=True, soft_wrap=True)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REQUIRED = ("sensor_id", "x_m", "y_m", "z_m", "arrival_utc")
MAX_REPORTED = 20
MAX_SENSOR_SPREAD_M = 100.0
"""Farthest apart (horizontally) two rows of one sensor may put it; real clips' GPS positions of one
sensor scatter by up to ~30 m horizontally (and ~35 m in height, which is not checked)."""

MAX_COORD_M = 1e7
"""Largest coordinate magnitude of a row, metres (UTM northings stay below 10,000 km); one absurd
coordinate would otherwise shift the locator's origin (the mean position) and hide every shot."""


class BadRow(ValueError):
    """A CSV row that cannot be used; the message names the column."""


def _fail(message: str, code: int = 2) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_utc(text: str) -> float:
    """ISO 8601 time → POSIX seconds (a time without zone is taken as UTC).

    Raises
    ------
    ValueError
        Not an ISO 8601 time, or one with no UTC equivalent in years 1–9999 (e.g.
        ``0001-01-01T00:00:00+01:00``): :class:`OutOfRange`.
    """
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(f"{text.strip()!r} is out of the supported date range") from None
    return (dt - EPOCH) / timedelta(seconds=1)


class OutOfRange(ValueError):
    """A time that has no UTC equivalent within years 1–9999."""


def format_utc(posix_s: float) -> str:
    """POSIX seconds → ISO 8601 UTC with microseconds and ``Z``."""
    return (EPOCH + timedelta(seconds=posix_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(row: dict[str, str | None], col: str, *, optional: bool = False) -> float | None:
    raw = (row.get(col) or "").strip()
    if raw == "":
        if optional:
            return None
        raise BadRow(f"column {col!r} is empty")
    try:
        v = float(raw)
    except ValueError:
        raise BadRow(f"column {col!r}: {raw!r} is not a number") from None
    if not math.isfinite(v):
        raise BadRow(f"column {col!r}: {raw!r} is not a finite number")
    return v


def parse_row(row: dict[str, str | None]) -> Arrival:
    """One CSV row → :class:`Arrival`.

    Raises
    ------
    BadRow
        A missing, non-numeric or non-finite value, or an unparseable time; the message names
        the column.
    """
    sid = (row.get("sensor_id") or "").strip()
    if not sid:
        raise BadRow("column 'sensor_id' is empty")
    x, y, z = (_number(row, c) for c in ("x_m", "y_m", "z_m"))
    assert x is not None and y is not None and z is not None
    for col, v in (("x_m", x), ("y_m", y), ("z_m", z)):
        if abs(v) > MAX_COORD_M:
            raise BadRow(
                f"column {col!r}: {v:g} m is beyond ±{MAX_COORD_M:g} m (not a position in a local "
                "metric frame or UTM)"
            )
    raw_t = (row.get("arrival_utc") or "").strip()
    try:
        t = parse_utc(raw_t)
    except OutOfRange:
        raise BadRow(
            f"column 'arrival_utc': {raw_t!r} is out of the supported date range (years 1 to 9999 UTC)"
        ) from None
    except ValueError:
        raise BadRow(f"column 'arrival_utc': {raw_t!r} is not an ISO 8601 time") from None
    snr = _number(row, "snr_db", optional=True) if "snr_db" in row else None
    return Arrival(sid, x, y, z, t, snr)


def _far_pair(xy: npt.NDArray[np.float64], limit: float) -> tuple[int, int] | None:
    """Indices of two points of ``xy`` (n × 2) more than ``limit`` apart, or None when there are none."""
    span = xy.max(axis=0) - xy.min(axis=0)
    if math.hypot(float(span[0]), float(span[1])) <= limit:  # the common case: one place, or jitter
        return None
    for i in (0, int(np.argmax(np.hypot(*(xy - xy[0]).T)))):  # two sweeps find most pairs at once
        d = np.hypot(*(xy - xy[i]).T)
        j = int(np.argmax(d))
        if d[j] > limit:
            return (i, j) if i < j else (j, i)
    for i in range(xy.shape[0]):  # exact (rare: the points lie in a ring around the first)
        d = np.hypot(*(xy[i + 1 :] - xy[i]).T)
        if d.size and float(d.max()) > limit:
            return i, i + 1 + int(np.argmax(d))
    return None


def check_positions(path: Path, arrivals: list[Arrival], lines: list[int]) -> None:
    """Refuse a file where one sensor's rows put it at places more than :data:`MAX_SENSOR_SPREAD_M` apart.

    The locator takes each row's position as the sensor's; two positions of one sensor id (a sensor
    that moved, or two sensors given one id) would make ghost shots.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file (for the message).
    arrivals : list of Arrival
        The good rows.
    lines : list of int
        The line number of each arrival in the file.

    Raises
    ------
    BadRow
        The message names the sensor, two of its positions, their line numbers and the distance.
    """
    rows: dict[str, list[int]] = {}
    for k, a in enumerate(arrivals):
        rows.setdefault(a.sensor_id, []).append(k)
    for sid, ks in rows.items():
        xy = np.array([(arrivals[k].x_m, arrivals[k].y_m) for k in ks], dtype=np.float64)
        pair = _far_pair(xy, MAX_SENSOR_SPREAD_M)
        if pair is None:
            continue
        a, b = (arrivals[ks[i]] for i in pair)
        la, lb = (lines[ks[i]] for i in pair)
        dist = math.hypot(a.x_m - b.x_m, a.y_m - b.y_m)
        raise BadRow(
            f"{path}: sensor {sid!r} is at two places {dist:.0f} m apart horizontally: "
            f"line {la} (x {a.x_m:.2f}, y {a.y_m:.2f}, z {a.z_m:.2f}) and "
            f"line {lb} (x {b.x_m:.2f}, y {b.y_m:.2f}, z {b.z_m:.2f}); more than "
            f"{MAX_SENSOR_SPREAD_M:g} m is not GPS jitter. A sensor that moved "
            "needs another sensor_id for its new place."
        )


def read_pulses(path: Path) -> tuple[list[Arrival], list[str]]:
    """Read a pulses CSV; returns the good arrivals and one message per bad row (``line N: …``).

    Raises
    ------
    BadRow
        The file cannot be read or lacks a required column, or one sensor's rows put it at two
        places more than :data:`MAX_SENSOR_SPREAD_M` apart (:func:`check_positions`): the whole
        file is unusable.
    """
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BadRow(f"{path}: cannot read ({exc.strerror or exc})") from None
    good: list[Arrival] = []
    lines: list[int] = []
    bad: list[str] = []
    with fh:
        try:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise BadRow(
                    f"{path}: missing column(s) {', '.join(missing)} in the header (line 1); "
                    f"expected {','.join(REQUIRED)}[,snr_db]"
                )
            reader.fieldnames = header
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # blank line
                try:
                    good.append(parse_row(row))
                    lines.append(reader.line_num)
                except BadRow as exc:
                    bad.append(f"line {reader.line_num}: {exc}")
        except UnicodeDecodeError:
            raise BadRow(f"{path}: not a UTF-8 text file") from None
        except csv.Error as exc:
            raise BadRow(f"{path}: not readable CSV ({exc})") from None
    check_positions(path, good, lines)
    return good, bad


def fix_json(f: Fix) -> str:
    """The contract's JSON line for one located shot."""
    return json.dumps(
        {
            "time_utc": format_utc(f.t0_s),
            "x_m": round(f.x_m, 3),
            "y_m": round(f.y_m, 3),
            "z_m": round(f.z_m, 3),
            "ellipse_major_m": round(f.ellipse_major_m, 3),
            "ellipse_minor_m": round(f.ellipse_minor_m, 3),
            "ellipse_angle_deg": round(f.ellipse_angle_deg, 2),
            "sensors": list(f.sensors),
        }
    )


TEMPERATURE_C_RANGE = (-60.0, 60.0)


def _temperature(value: float) -> float:
    """Typer callback: a finite ``--temperature-c`` in :data:`TEMPERATURE_C_RANGE`, else a usage error."""
    lo, hi = TEMPERATURE_C_RANGE
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number of °C")
    if not lo <= value <= hi:
        raise typer.BadParameter(f"{value:g} °C is outside {lo:g} to {hi:g} °C")
    return value


def register(app: typer.Typer) -> None:
    """Add the ``locate`` command to the ``rtcc acoustic`` group."""

    @app.command("locate")
    def locate(
        pulses: Annotated[
            Path,
            typer.Argument(
                metavar="PULSES.csv",
                help="CSV: sensor_id,x_m,y_m,z_m,arrival_utc[,snr_db]",
                show_default=False,
            ),
        ],
        temperature_c: Annotated[
            float,
            typer.Option(
                "--temperature-c",
                help="Air temperature, −60 to 60 °C (sets the speed of sound).",
                callback=_temperature,
            ),
        ] = 20.0,
        calibration: Annotated[
            Path | None,
            typer.Option(
                "--calibration",
                metavar="FILE",
                help="Per-sensor corrections from test fires (rtcc acoustic calibrate); optional.",
                show_default=False,
            ),
        ] = None,
        min_sensors: Annotated[
            int,
            typer.Option(
                "--min-sensors",
                min=4,
                max=100,
                help=(
                    "Fewest agreeing sensors for a shot to be reported (8 suffice with 3 loud pulses). "
                    "The default suits a dense city array; lower it for a sparse one (more ghosts)."
                ),
            ),
        ] = 10,
    ) -> None:
        """Associate pulses into shots and locate each one; prints one JSON object per shot."""
        cal: Calibration | None = None
        if calibration is not None:
            try:
                cal = Calibration.load(calibration)
            except CalibrationError as exc:
                _fail(f"bad calibration: {exc}")
        try:
            arrivals, bad = read_pulses(pulses)
        except BadRow as exc:
            _fail(str(exc))
        for msg in bad[:MAX_REPORTED]:
            _err.print(f"[yellow]skipped[/] {pulses}: {msg}", highlight=False)
        if len(bad) > MAX_REPORTED:
            _err.print(f"[yellow]skipped[/] … and {len(bad) - MAX_REPORTED} more bad rows", highlight=False)
        if not arrivals:
            _fail(f"{pulses}: no usable pulse rows ({len(bad)} bad)")
        if bad:
            _err.print(
                f"{pulses}: {len(bad)} bad row(s) skipped; locating with the other {len(arrivals)}",
                highlight=False,
            )
        if cal is not None:
            arrivals = cal.apply(arrivals)
        params = AssociationParams()
        if min_sensors < params.min_sensors:
            params = replace(params, min_sensors=min_sensors)
        fixes = locate_all(
            arrivals,
            temperature_c=temperature_c,
            params=params,
            min_sensors=min_sensors,
            min_sensors_loud=min(8, min_sensors),
        )
        for f in fixes:
            try:
                line = fix_json(f)
            except OverflowError:  # rows at the very edge of year 1: the shot was fired before it
                _err.print(
                    f"[yellow]skipped[/] {pulses}: a shot at x {f.x_m:.1f} m, y {f.y_m:.1f} m has a time "
                    "outside years 1 to 9999 UTC",
                    highlight=False,
                )
                continue
            sys.stdout.write(line + "\n")
        if not fixes:
            heard = len({a.sensor_id for a in arrivals})
            _err.print(
                f"{pulses}: no shot located from {len(arrivals)} pulse(s) of {heard} sensor(s). A shot is "
                f"reported when at least {min_sensors} sensors agree ({min(8, min_sensors)} with 3 loud "
                "pulses); for a sparse array lower --min-sensors.",
                highlight=False,
            )
