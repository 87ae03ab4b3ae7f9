"""Few sensors: rounds are reported only as part of a consistent burst (synthetic, seeded).

The rule is opt-in (``sparse=DEFAULT_SPARSE``); by default, and in ``rtcc acoustic locate``, nothing
is reported from a cluster heard by fewer sensors than the ordinary rules need.

Scenes: four sensors 100–350 m around a shooter (the Pittsburgh audio tests have 4–6), arrivals
``t0 + distance / c`` plus 0.3 ms of onset jitter (a detector on real audio), and per sensor a few
echoes at fixed lags after each round (a reflector gives the same lag in every round).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rtcc.acoustic.associate import AssociationParams
from rtcc.acoustic.locate import DEFAULT_SPARSE, Arrival, locate_all, speed_of_sound
from rtcc.acoustic.sparse_bursts import SparseParams, burst_nfa, delay_deviation
from rtcc.cli.main import app
from tests.acoustic.test_locate import T0

C = speed_of_sound(0.0)
SRC = (30.0, -40.0, 1.5)


def _four(rng: np.random.Generator) -> np.ndarray:
    """Four sensors around the shooter, one per quadrant, 100–350 m away, heights 5–15 m."""
    ang = np.array([0.3, 1.9, 3.4, 4.9]) + rng.uniform(-0.3, 0.3, 4)
    r = rng.uniform(100.0, 350.0, 4)
    return np.stack([SRC[0] + r * np.cos(ang), SRC[1] + r * np.sin(ang), rng.uniform(5.0, 15.0, 4)], axis=1)


def _rounds(
    pos: np.ndarray,
    t0s: list[float],
    rng: np.random.Generator,
    src: tuple[float, float, float] = SRC,
    echoes: int = 2,
) -> list[Arrival]:
    """Each round at each sensor: the direct pulse (0.3 ms jitter) and ``echoes`` later copies at
    lags fixed per sensor (30–250 ms)."""
    lags = rng.uniform(0.03, 0.25, (len(pos), echoes))
    out: list[Arrival] = []
    for t0 in t0s:
        d = np.linalg.norm(pos - np.array(src), axis=1)
        for i, p in enumerate(pos):
            ta = t0 + d[i] / C + rng.normal(0.0, 3e-4)
            out.append(Arrival(f"S{i}", float(p[0]), float(p[1]), float(p[2]), float(ta), 30.0))
            for lag in lags[i]:
                te = ta + lag + rng.normal(0.0, 3e-4)
                out.append(Arrival(f"S{i}", float(p[0]), float(p[1]), float(p[2]), float(te), 15.0))
    return out


def _err(f: object) -> float:
    return math.hypot(f.x_m - SRC[0], f.y_m - SRC[1])  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_three_round_burst_on_four_sensors_is_located(seed: int) -> None:
    """A 3-round burst heard by 4 sensors (with repeating echoes): three fixes, one shared position
    within 3 m of the shooter, emission times right, quality poor (few sensors)."""
    rng = np.random.default_rng(seed)
    arr = _rounds(_four(rng), [T0, T0 + 0.45, T0 + 1.1], rng)
    fixes = locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE)
    assert len(fixes) == 3
    assert [round(f.t0_s - T0, 2) for f in fixes] == [0.0, 0.45, 1.1]
    assert all(_err(f) < 3.0 for f in fixes)
    assert len({(f.x_m, f.y_m) for f in fixes}) == 1
    assert all(f.quality == "poor" and len(f.sensors) == 4 for f in fixes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_rule_is_off_by_default(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arr = _rounds(_four(rng), [T0, T0 + 0.45, T0 + 1.1], rng)
    assert locate_all(arr, temperature_c=0.0) == []


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_single_round_on_four_sensors_is_not_reported(seed: int) -> None:
    """One round on four sensors is barely determined: never reported, echoes or not."""
    rng = np.random.default_rng(seed)
    for echoes in (2, 0):
        arr = _rounds(_four(rng), [T0], rng, echoes=echoes)
        assert locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_rounds_are_not_enough(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arr = _rounds(_four(rng), [T0, T0 + 0.6], rng)
    assert locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE) == []


@pytest.mark.parametrize("seed", range(6))
def test_random_strays_on_four_sensors_make_no_ghost(seed: int) -> None:
    """10 s of unrelated impulses at 3 per second per sensor on 4 sensors: nothing reported."""
    rng = np.random.default_rng(100 + seed)
    pos = _four(rng)
    arr = [
        Arrival(f"S{i}", float(p[0]), float(p[1]), float(p[2]), T0 + float(tt), float(rng.uniform(5, 40)))
        for i, p in enumerate(pos)
        for tt in rng.uniform(0.0, 10.0, rng.poisson(30))
    ]
    assert locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_rounds_from_three_places_are_not_a_burst(seed: int) -> None:
    """Three single rounds 60–120 m apart within 1.5 s: the delays do not repeat, nothing reported."""
    rng = np.random.default_rng(seed)
    pos = _four(rng)
    arr: list[Arrival] = []
    for k, dx in enumerate([0.0, 80.0, -60.0]):
        src = (SRC[0] + dx, SRC[1] + 0.5 * dx + (40.0 if k == 2 else 0.0), SRC[2])
        arr += _rounds(pos, [T0 + 0.5 * k], rng, src=src)
    assert locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE) == []


def test_a_wrong_clip_position_is_outvoted_by_the_sensor_median() -> None:
    """Sensors report their position with each clip (per-clip GPS). Five bursts a minute apart; in
    the third, one sensor reports a position 25 m off. Each sensor's median position is used, so
    every round of every burst is located near the shooter; with the reported positions that burst
    is lost or misplaced."""
    rng = np.random.default_rng(5)
    pos = _four(rng)
    arr: list[Arrival] = []
    for k in range(5):
        burst = _rounds(pos, [T0 + 60 * k, T0 + 60 * k + 0.5, T0 + 60 * k + 1.2], rng)
        if k == 2:
            burst = [
                Arrival(a.sensor_id, a.x_m + 20.0, a.y_m - 15.0, a.z_m, a.t_s, a.snr_db)
                if a.sensor_id == "S1"
                else a
                for a in burst
            ]
        arr += burst
    fixes = locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE)
    assert len(fixes) == 15
    assert all(_err(f) < 3.0 for f in fixes)
    raw = locate_all(arr, temperature_c=0.0, sparse=SparseParams(median_positions=False))
    assert sum(1 for f in raw if _err(f) < 3.0 and 110 < f.t0_s - T0 < 130) < 3


def test_dense_clusters_are_left_to_the_main_rules() -> None:
    """Eight sensors: the cluster is not a few-sensor one, so a 3-round burst is reported by the
    ordinary rule when ``min_sensors`` allows it, and not at all by this one otherwise."""
    rng = np.random.default_rng(9)
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False) + rng.uniform(-0.3, 0.3, 8)
    r = rng.uniform(120.0, 400.0, 8)
    pos = np.stack([SRC[0] + r * np.cos(ang), SRC[1] + r * np.sin(ang), rng.uniform(5.0, 15.0, 8)], axis=1)
    arr = [
        Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s, 10.0)  # quiet: the loud-8 rule does not apply
        for a in _rounds(pos, [T0, T0 + 0.5, T0 + 1.0], rng, echoes=0)
    ]
    assert locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE) == []  # 8 < 10 sensors: not reported
    assert len(locate_all(arr, temperature_c=0.0, min_sensors=8, sparse=DEFAULT_SPARSE)) == 3


def test_delay_deviation_and_chance_of_a_burst() -> None:
    """The pattern test on the groups the rule returns: the rounds repeat each other's delays within
    a millisecond, and the chance of such a pattern among the cluster's pulses is tiny."""
    from rtcc.acoustic.sparse_bursts import sparse_bursts

    rng = np.random.default_rng(2)
    arr = _rounds(_four(rng), [T0, T0 + 0.45, T0 + 1.1], rng)
    ids = sorted({a.sensor_id for a in arr})
    pos = np.array([[a.x_m, a.y_m, a.z_m] for a in arr])
    t = np.array([a.t_s for a in arr]) - T0
    sensor = np.array([ids.index(a.sensor_id) for a in arr])
    groups = sparse_bursts(pos, t, sensor, np.zeros(len(t)), C, AssociationParams(), SparseParams())
    assert len(groups) == 3
    dev, common = delay_deviation(groups[:2], groups[2], t, sensor)
    assert common == 4 and dev < 0.001
    assert burst_nfa(groups, sensor, t, np.arange(len(t)), 0.003) < 1e-3


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_cli_default_reports_no_few_sensor_rounds(tmp_path: Path) -> None:
    """``rtcc acoustic locate`` keeps the default (rule off): a 4-sensor burst prints no shot, while
    the same pulses in-process with the rule give its three rounds."""
    rng = np.random.default_rng(1)
    arr = _rounds(_four(rng), [T0, T0 + 0.45, T0 + 1.1], rng)
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"]
    lines += [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arr]
    path = tmp_path / "pulses.csv"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path), "--temperature-c", "0"])
    assert r.exit_code == 0, r.stderr
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("{")] == []
    fixes = locate_all(arr, temperature_c=0.0, sparse=DEFAULT_SPARSE)
    assert len(fixes) == 3
    assert all(math.hypot(f.x_m - SRC[0], f.y_m - SRC[1]) < 3.0 for f in fixes)
