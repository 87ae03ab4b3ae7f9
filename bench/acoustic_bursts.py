"""Automatic fire through the simulator's physics: rounds located, old association vs new.

    python bench/acoustic_bursts.py [--trials 10] [--sensors 200] [--seed 3]

Each trial fires one burst at a random place inside a simulated array (17 sensors per square mile)
with :mod:`rtcc.sim.gunfire` (real waveform, delay, spreading, absorption, blocked paths, ground
and building echoes, 50 µs clock jitter, street noise; every sensor within 1.1 km whose SNR is at
least 12 dB reports) and locates all the pulses with :func:`rtcc.acoustic.locate.locate_all`, with
and without the burst steps (``AssociationParams.burst_completion``: ``new`` / ``old``) and, as
``s6``, with them but without the session-7 fast-fire rule (``fast_fire=False``: every fix within
50 m and 50 ms of an accepted bang is an echo). A round is right when a fix lies within 15 m of the
shooter; every other fix is wrong (a ghost or a mixed round). ``timed``: fired rounds matched one
to one by a right fix whose emission time is within half the interval of theirs (so a duplicate
cannot stand in for a missed round, and the intervals are right). The rows after the session-6 ones
(:data:`FAST_BURSTS`, conversion-device pistols at 1,200-1,500 rounds a minute) draw their scenes
after them, so the session-6 rows' scenes are unchanged. Synthetic: the Pittsburgh live-fire data
has no long bursts. Written to ``bench/results/acoustic_bursts.jsonl``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from acoustic_latency import city_for

from rtcc.acoustic.associate import AssociationParams
from rtcc.acoustic.locate import Arrival, Fix, locate_all
from rtcc.sim.gunfire import Gunfire, Propagation, Scenario

BURSTS = ((3, 0.3), (10, 0.1), (30, 0.1), (30, 0.075), (60, 0.06))
"""(rounds, seconds between rounds): a triple tap, then automatic fire at 600-1,000 rounds a minute."""
FAST_BURSTS = ((30, 0.05), (30, 0.045), (30, 0.04))
"""Rounds closer than the 50 ms echo window: pistols with conversion devices, 1,200-1,500 rounds a minute."""
CONFIGS = (
    ("old", AssociationParams(burst_completion=False)),
    ("s6", AssociationParams(fast_fire=False)),
    ("new", AssociationParams()),
)


class _Truth:
    """Ground truth of the last :meth:`Gunfire.fire`."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def record(self, kind: str, **fields: Any) -> None:
        self.last = {"kind": kind, **fields}


def timed_matches(fixes: list[Fix], x: float, y: float, emissions: list[float], half_s: float) -> int:
    """Fired rounds matched one to one, in order, by a fix within 15 m and ``half_s`` of their emission."""
    free = sorted(f.t0_s for f in fixes if math.hypot(f.x_m - x, f.y_m - y) <= 15.0)
    n = 0
    for e in emissions:
        near = [t for t in free if abs(t - e) <= half_s]
        if near:
            free.remove(min(near, key=lambda t: abs(t - e)))
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    args = ap.parse_args()
    city = city_for(args.sensors, 17.0, 1)
    gun = Gunfire(city, seed=args.seed, propagation=Propagation(range_m=1100.0))
    rng = random.Random(args.seed)
    inner = city.half_m - 800.0
    figures: dict[str, Any] = {}
    for rounds, interval in (*BURSTS, *FAST_BURSTS):
        tally = {name: {"right": 0, "wrong": 0, "timed": 0} for name, _ in CONFIGS}
        for _ in range(args.trials):
            x, y = rng.uniform(-inner, inner), rng.uniform(-inner, inner)
            offsets = [interval * k for k in range(rounds)]
            truth = _Truth()
            sc = Scenario("gunshot", "gunshot_9mm", x, y, offsets, 148.0)
            pulses = gun.fire(sc, datetime.now(UTC), truth=truth)
            t_emit = datetime.fromisoformat(truth.last["t_emit"]).timestamp()
            emissions = [t_emit + o for o in offsets]
            arrivals = []
            for p in pulses:
                px, py = city.to_xy(p.pos.lat, p.pos.lon)
                alt = p.pos.alt_m or 0.0
                arrivals.append(Arrival(p.device, px, py, alt, p.occurred_at.timestamp(), p.snr_db))
            for name, params in CONFIGS:
                fixes = locate_all(arrivals, temperature_c=20.0, params=params)
                right = min(rounds, sum(math.hypot(f.x_m - x, f.y_m - y) <= 15.0 for f in fixes))
                tally[name]["right"] += right
                tally[name]["wrong"] += len(fixes) - right
                tally[name]["timed"] += timed_matches(fixes, x, y, emissions, interval / 2.0)
        fired = rounds * args.trials
        key = f"{rounds}x{interval:g}s"
        figures[key] = {
            "fired": fired,
            **{f"{n}_right_pct": round(100.0 * tally[n]["right"] / fired, 1) for n in tally},
            **{f"{n}_wrong": tally[n]["wrong"] for n in tally},
            **{f"{n}_timed_pct": round(100.0 * tally[n]["timed"] / fired, 1) for n in tally},
        }
        print(key, figures[key])
    write_result("acoustic_bursts", figures, vars(args))


if __name__ == "__main__":
    main()
