"""``rtcc acoustic calibrate`` — per-sensor corrections from test fires at surveyed positions.

::

    rtcc acoustic calibrate TEST_FIRES_DIR --out calibration.json [--temperature-c T]
    rtcc acoustic calibrate PULSES.csv --shots SHOTS.csv --out calibration.json [--temperature-c T]
                            [--model offset|offset+position] [--shrinkage K]

Input, either:

* a **folder of test fires** laid out like ShotSpotter's published live-fire data: anywhere below
  it, ``NAME.survey.json`` (``survey_location`` ``{x, y, z}`` metres, ``num_rounds``) beside
  ``NAME.allpulses.json`` (a list of pulses: ``serial_number``, ``location`` ``{x, y, z}``,
  ``arrival_time_utc``, optional ``signal_to_noise_dB``) and optionally ``NAME.weather.json``
  (``temperature``, °C; else ``--temperature-c``). Each test fire is located on its own.
* a **pulses CSV** (the ``rtcc acoustic locate`` format) and ``--shots SHOTS.csv`` with the header
  ``x_m,y_m,z_m,rounds,start_utc,end_utc``: one row per test fire, the surveyed position and the
  time span its rounds were fired in. The pulses are located together.

The located rounds within 50 m of their surveyed point are used to fit
(:func:`rtcc.acoustic.calibration.fit_calibration`); the file is written to ``--out`` and a
one-line JSON summary printed. Bad input — a missing file, a folder without test fires, a bad
shots row, no round located near its surveyed point — is reported on stderr with exit code 2.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from rtcc.acoustic.calibration import (
    MODELS,
    CalibrationError,
    SurveyedRound,
    fit_calibration,
    match_rounds,
)
from rtcc.acoustic.locate import Arrival, locate_all
from rtcc.cli.acoustic_locate import BadRow, parse_utc, read_pulses

_err = Console(stderr=True, soft_wrap=True)
SHOT_COLUMNS = ("x_m", "y_m", "z_m", "rounds", "start_utc", "end_utc")


def _fail(message: str, code: int = 2) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _num(obj: Any, key: str, where: str) -> float:
    v = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise BadRow(f"{where}: {key!r} must be a finite number")
    return float(v)


def read_folder(root: Path, temperature_c: float) -> tuple[list[SurveyedRound], list[float], int]:
    """Locate every test fire below ``root``; returns its matched rounds, their temperatures, tests.

    Raises
    ------
    BadRow
        No test fire below ``root``, or a test fire's files are unreadable or malformed.
    """
    surveys = sorted(root.rglob("*.survey.json"))
    if not surveys:
        raise BadRow(f"{root}: no test fires (no *.survey.json below it)")
    rounds: list[SurveyedRound] = []
    temps: list[float] = []
    for sv in surveys:
        name = sv.name.removesuffix(".survey.json")
        pulses_file = sv.with_name(f"{name}.allpulses.json")
        try:
            survey = json.loads(sv.read_text(encoding="utf-8"))
            pulses = json.loads(pulses_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BadRow(f"{exc.filename}: cannot read ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRow(f"{sv.parent / name}: not JSON ({exc})") from None
        loc = survey.get("survey_location") if isinstance(survey, dict) else None
        x, y = _num(loc, "x", str(sv)), _num(loc, "y", str(sv))
        z = _num(loc, "z", str(sv)) if isinstance(loc, dict) and "z" in loc else 0.0
        n = survey.get("num_rounds")
        if not isinstance(n, int) or n < 1:
            raise BadRow(f"{sv}: 'num_rounds' must be a positive integer")
        if not isinstance(pulses, list):
            raise BadRow(f"{pulses_file}: expected a list of pulses")
        arrivals: list[Arrival] = []
        for k, p in enumerate(pulses):
            where = f"{pulses_file}: pulse {k}"
            if not isinstance(p, dict) or not isinstance(p.get("serial_number"), str):
                raise BadRow(f"{where}: needs 'serial_number'")
            pl = p.get("location")
            try:
                t = parse_utc(str(p.get("arrival_time_utc", "")))
            except ValueError:
                raise BadRow(f"{where}: 'arrival_time_utc' is not an ISO 8601 time") from None
            snr = p.get("signal_to_noise_dB")
            arrivals.append(
                Arrival(
                    p["serial_number"],
                    _num(pl, "x", where),
                    _num(pl, "y", where),
                    _num(pl, "z", where),
                    t,
                    float(snr) if isinstance(snr, int | float) and math.isfinite(snr) else None,
                )
            )
        if not arrivals:
            continue
        temp = temperature_c
        wf = sv.with_name(f"{name}.weather.json")
        if wf.exists():
            try:
                temp = float(json.loads(wf.read_text(encoding="utf-8"))["temperature"])
            except (OSError, ValueError, KeyError, TypeError):
                raise BadRow(f"{wf}: needs a numeric 'temperature'") from None
        times = [a.t_s for a in arrivals]
        fixes = locate_all(arrivals, temperature_c=temp)
        got = match_rounds(fixes, [(x, y, z, n, min(times) - 5.0, max(times) + 1.0)])
        rounds += got
        temps += [temp] * len(got)
    return rounds, temps, len(surveys)


def read_shots(path: Path) -> list[tuple[float, float, float, int, float, float]]:
    """Read a shots CSV (``x_m,y_m,z_m,rounds,start_utc,end_utc``).

    Raises
    ------
    BadRow
        Unreadable file, a missing column, or a bad row (named by line number and column).
    """
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BadRow(f"{path}: cannot read ({exc.strerror or exc})") from None
    out: list[tuple[float, float, float, int, float, float]] = []
    with fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in SHOT_COLUMNS if c not in header]
        if missing:
            raise BadRow(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(SHOT_COLUMNS)}")
        reader.fieldnames = header
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            try:
                x, y, z = (float((row.get(c) or "").strip()) for c in ("x_m", "y_m", "z_m"))
                n = int((row.get("rounds") or "").strip())
            except ValueError:
                raise BadRow(f"{where}: x_m, y_m, z_m must be numbers and rounds an integer") from None
            if not all(math.isfinite(v) for v in (x, y, z)) or n < 1:
                raise BadRow(f"{where}: positions must be finite and rounds >= 1")
            try:
                t0 = parse_utc(row.get("start_utc") or "")
                t1 = parse_utc(row.get("end_utc") or "")
            except ValueError:
                raise BadRow(f"{where}: start_utc and end_utc must be ISO 8601 times") from None
            if t1 < t0:
                raise BadRow(f"{where}: end_utc is before start_utc")
            out.append((x, y, z, n, t0, t1))
    if not out:
        raise BadRow(f"{path}: no shots")
    return out


def register(app: typer.Typer) -> None:
    """Add the ``calibrate`` command to the ``rtcc acoustic`` group."""

    @app.command("calibrate")
    def calibrate(
        source: Annotated[
            Path,
            typer.Argument(
                metavar="TEST_FIRES_DIR|PULSES.csv",
                help="Folder of test fires (*.survey.json + *.allpulses.json), or a pulses CSV with --shots.",
                show_default=False,
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", "-o", metavar="FILE", help="Calibration file to write (JSON).")
        ],
        shots: Annotated[
            Path | None,
            typer.Option(
                "--shots",
                metavar="SHOTS.csv",
                help="With a pulses CSV: x_m,y_m,z_m,rounds,start_utc,end_utc per test fire.",
                show_default=False,
            ),
        ] = None,
        temperature_c: Annotated[
            float,
            typer.Option(
                "--temperature-c",
                min=-60.0,
                max=60.0,
                help="Air temperature, °C (a test fire's weather file overrides it).",
            ),
        ] = 20.0,
        model: Annotated[
            str,
            typer.Option("--model", help="offset, or offset+position (needs fires from several directions)."),
        ] = "offset",
        shrinkage: Annotated[
            float,
            typer.Option("--shrinkage", min=0.0, max=1000.0, help="Ridge strength, in equivalent pulses."),
        ] = 3.0,
    ) -> None:
        """Fit per-sensor corrections from test fires at surveyed positions; writes a calibration file."""
        if model not in MODELS:
            _fail(f"--model must be one of {', '.join(MODELS)} (got {model!r})")
        if not source.exists():
            _fail(f"{source}: no such file or folder")
        try:
            if source.is_dir():
                if shots is not None:
                    _fail("--shots goes with a pulses CSV, not with a folder of test fires")
                rounds, temps, n_tests = read_folder(source, temperature_c)
            elif shots is None:
                _fail(f"{source}: not a folder; a pulses CSV needs --shots SHOTS.csv")
            else:
                tests = read_shots(shots)
                arrivals, bad = read_pulses(source)
                if bad:
                    _fail(f"{source}: {len(bad)} bad row(s), first {bad[0]}")
                if not arrivals:
                    _fail(f"{source}: no pulse rows")
                rounds = match_rounds(locate_all(arrivals, temperature_c=temperature_c), tests)
                temps = [temperature_c] * len(rounds)
                n_tests = len(tests)
        except BadRow as exc:
            _fail(str(exc))
        if not rounds:
            _fail(f"{source}: no test-fire round was located within 50 m of its surveyed position")
        try:
            cal = fit_calibration(
                rounds,
                temperature_c=temps,
                model="offset" if model == "offset" else "offset+position",
                shrinkage_pulses=shrinkage,
            )
        except CalibrationError as exc:
            _fail(str(exc))
        cal = replace(cal, fitted=dict(cal.fitted) | {"test_fires": n_tests, "source": str(source)})
        try:
            cal.save(out)
        except OSError as exc:
            _fail(f"{out}: cannot write ({exc.strerror or exc})")
        sys.stdout.write(json.dumps({"out": str(out), **dict(cal.fitted)}) + "\n")
