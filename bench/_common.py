"""Shared pieces of the benchmarks: a center in a subprocess, machine facts, result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN_PASSWORD = "Bench-passw0rd-for-ingest"
SECRET = "bench-secret-" + "b" * 40


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def write_result(name: str, figures: dict[str, Any], params: dict[str, Any]) -> Path:
    """Append one run's figures to bench/results/<name>.jsonl and print them."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(),
        "params": params,
        "figures": figures,
    }
    path = RESULTS / f"{name}.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    print(json.dumps(record, indent=2, sort_keys=True))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CenterProcess:
    """``rtcc serve`` (or ``demo``) in a subprocess with its own data folder."""

    env: dict[str, str]
    command: list[str]
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until /api/v1/ready; returns seconds taken."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"center exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "api/v1/ready", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError("center did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def center_env(
    data_dir: Path,
    port: int,
    *,
    database_url: str | None = None,
    nats_url: str | None = None,
    stream: str = "RTCC",
    sim: bool = False,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RTCC_DATA_DIR=str(data_dir),
        RTCC_SERVER__PORT=str(port),
        RTCC_SECURITY__ADMIN_PASSWORD=ADMIN_PASSWORD,
        RTCC_SECURITY__SECRET_KEY=SECRET,
        RTCC_LOG_LEVEL="WARNING",
        RTCC_SERVER__MAX_INGEST_BATCH="1000",
    )
    if sim:
        env["RTCC_SIM__ENABLED"] = "true"
    if database_url:
        env["RTCC_DATABASE__URL"] = database_url
    if nats_url:
        env.update(RTCC_BUS__ENGINE="nats", RTCC_BUS__NATS_URL=nats_url, RTCC_BUS__STREAM=stream)
    return env


def rtcc_exe() -> str:
    exe = Path(sys.executable).parent / "rtcc"
    return str(exe) if exe.exists() else "rtcc"
