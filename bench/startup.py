"""Demo start-up time: from launching ``rtcc demo`` to a usable center.

Measures, for a cold start (empty data folder: migrations, first admin,
device provisioning) and a warm start (the same folder again):

* ``ready_s`` — until ``/api/v1/ready`` answers 200,
* ``devices_online_s`` — until every simulated device is online in the API
  (its first heartbeat went through the real ingest path).

Writes to ``bench/results/startup.jsonl``. Usage: ``python bench/startup.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ADMIN_PASSWORD, CenterProcess, center_env, free_port, rtcc_exe, write_result


def run_once(data_dir: Path) -> dict[str, float]:
    port = free_port()
    env = center_env(data_dir, port, sim=True)
    center = CenterProcess(
        env=env,
        command=[rtcc_exe(), "demo", "--port", str(port), "--data-dir", str(data_dir)],
        port=port,
        data_dir=data_dir,
    )
    t0 = time.perf_counter()
    try:
        ready = center.start()
        with httpx.Client(base_url=center.url, timeout=10) as c:
            r = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            r.raise_for_status()
            c.headers["authorization"] = f"Bearer {r.json()['token']}"
            while True:
                items = c.get("/api/v1/devices").json()["items"]
                if items and all(d["status"] == "online" for d in items):
                    online = time.perf_counter() - t0
                    break
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("devices did not come online")
                time.sleep(0.05)
        return {"ready_s": round(ready, 3), "devices_online_s": round(online, 3), "devices": len(items)}
    finally:
        center.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="warm starts to time")
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="rtcc-startup-"))
    cold = run_once(data_dir)
    warm = [run_once(data_dir) for _ in range(args.repeat)]
    best = min(warm, key=lambda w: w["ready_s"])
    write_result(
        "startup",
        {
            "cold_ready_s": cold["ready_s"],
            "cold_devices_online_s": cold["devices_online_s"],
            "warm_ready_s_best": best["ready_s"],
            "warm_ready_s_all": [w["ready_s"] for w in warm],
            "warm_devices_online_s_all": [w["devices_online_s"] for w in warm],
            "devices": cold["devices"],
        },
        {"mode": "embedded (SQLite, in-process bus)", "sim": "defaults (Birmingham, 3.2 km square)"},
    )


if __name__ == "__main__":
    main()
