"""Automatic fire through the simulator's physics: rounds located, old association vs new.

    python bench/acoustic_bursts.py [--trials 10] [--sensors 200] [--seed 3]

Each trial fires one burst at a random place inside a simulated array (17 sensors per square mile)
with :mod:`rtcc.sim.gunfire` (real waveform, delay, spreading, absorption, blocked paths, ground
and building echoes, 50 µs clock jitter, street noise; every sensor within 1.1 km whose SNR is at
least 12 dB reports) and locates all the pulses with :func:`rtcc.acoustic.locate.locate_all`, with
and without the burst steps (``AssociationParams.burst_completion``). A round is right when a fix
lies within 15 m of the shooter; every other fix is wrong (a ghost or a mixed round). Synthetic:
the Pittsburgh live-fire data has no long bursts. Written to ``bench/results/acoustic_bursts.jsonl``.
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
from rtcc.acoustic.locate import Arrival, locate_all
from rtcc.sim.gunfire import Gunfire, Propagation, Scenario

BURSTS = ((3, 0.3), (10, 0.1), (30, 0.1), (30, 0.075), (60, 0.06))
"""(rounds, seconds between rounds): a triple tap, then automatic fire at 600-1,000 rounds a minute."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    city = city_for(args.sensors, 17.0, 1)
    gun = Gunfire(city, seed=args.seed, propagation=Propagation(range_m=1100.0))
    rng = random.Random(args.seed)
    inner = city.half_m - 800.0
    figures: dict[str, Any] = {}
    for rounds, interval in BURSTS:
        tally = {"old": {"right": 0, "wrong": 0}, "new": {"right": 0, "wrong": 0}}
        for _ in range(args.trials):
            x, y = rng.uniform(-inner, inner), rng.uniform(-inner, inner)
            offsets = [interval * k for k in range(rounds)]
            pulses = gun.fire(Scenario("gunshot", "gunshot_9mm", x, y, offsets, 148.0), datetime.now(UTC))
            arrivals = []
            for p in pulses:
                px, py = city.to_xy(p.pos.lat, p.pos.lon)
                alt = p.pos.alt_m or 0.0
                arrivals.append(Arrival(p.device, px, py, alt, p.occurred_at.timestamp(), p.snr_db))
            for name, flag in (("old", False), ("new", True)):
                fixes = locate_all(
                    arrivals, temperature_c=20.0, params=AssociationParams(burst_completion=flag)
                )
                right = min(rounds, sum(math.hypot(f.x_m - x, f.y_m - y) <= 15.0 for f in fixes))
                tally[name]["right"] += right
                tally[name]["wrong"] += len(fixes) - right
        fired = rounds * args.trials
        key = f"{rounds}x{interval:g}s"
        figures[key] = {
            "fired": fired,
            **{f"{n}_right_pct": round(100.0 * tally[n]["right"] / fired, 1) for n in tally},
            **{f"{n}_wrong": tally[n]["wrong"] for n in tally},
        }
        print(key, figures[key])
    write_result("acoustic_bursts", figures, vars(args))


if __name__ == "__main__":
    main()
