"""``rtcc bodycam``: the body-cam device simulator.

::

    rtcc bodycam simulate --center http://127.0.0.1:8470 --provision --user admin --units 20 \\
        --keys bodycams.json                      # registers bwc-sim-0001… and saves their keys
    rtcc bodycam simulate --center URL --keys bodycams.json --units 20 --mqtt 127.0.0.1:1883

The devices speak the protocol of docs/bodycam-protocol.md: heartbeats with
position, battery and recording state; commands heard on the HTTPS long-poll
(and on MQTT with ``--mqtt``); acknowledgements after ``--ack-delay``; a share
``--no-ack-share`` never acknowledges. Exit codes: 0 stopped (Ctrl-C or
``--duration``), 2 bad options or keys file, 3 the center refused or is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
from pathlib import Path
from typing import Annotated

import typer

from rtcc.cli.output import err, fail, out

STOP_TIMEOUT_S = 10.0
"""Longest Ctrl-C waits for the simulated devices to stop (their polls and acknowledgements)."""

bodycam_app = typer.Typer(help="Body-worn cameras: the device simulator.", no_args_is_help=True)


def _read_keys(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"--keys {path}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        fail(f"--keys {path}: not JSON ({exc.msg} at line {exc.lineno})")
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        fail(f'--keys {path}: expected a JSON object {{"device id": "key", ...}}')
    return dict(data)


@bodycam_app.command("simulate")
def simulate(
    center: Annotated[str, typer.Option("--center", help="Center base URL.")] = "http://127.0.0.1:8470",
    units: Annotated[int, typer.Option("--units", "-n", help="Body cams to run.", min=1, max=5000)] = 12,
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="JSON {device id: key}: read it, or write it with --provision."),
    ] = None,
    provision: Annotated[
        bool, typer.Option("--provision", help="Register the body cams first (needs an admin's login).")
    ] = False,
    user: Annotated[str, typer.Option("--user", help="Admin user for --provision.")] = "admin",
    password: Annotated[
        str | None,
        typer.Option(
            "--password", envvar="RTCC_PASSWORD", help="Its password (or $RTCC_PASSWORD).", show_default=False
        ),
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Device id prefix for --provision.")] = "bwc-sim-",
    mqtt: Annotated[
        str | None, typer.Option("--mqtt", help="NATS MQTT listener host:port: hear commands on MQTT too.")
    ] = None,
    ack_delay: Annotated[
        float, typer.Option("--ack-delay", help="Seconds before acknowledging.", min=0)
    ] = 0.3,
    no_ack_share: Annotated[
        float, typer.Option("--no-ack-share", help="Share of devices that never acknowledge.", min=0, max=1)
    ] = 0.0,
    lat: Annotated[
        float, typer.Option("--lat", help="Centre of the patrol area, degrees.", min=-90, max=90)
    ] = 33.5186,
    lon: Annotated[
        float, typer.Option("--lon", help="Centre of the patrol area, degrees.", min=-180, max=180)
    ] = -86.8104,
    spread_m: Annotated[
        float, typer.Option("--spread-m", help="Side of the patrol square, m.", min=1)
    ] = 3000.0,
    heartbeat_s: Annotated[
        float, typer.Option("--heartbeat-s", help="Seconds between heartbeats.", min=1)
    ] = 10.0,
    walk_mps: Annotated[
        float, typer.Option("--walk-mps", help="Patrol speed of the random walk, m/s.", min=0)
    ] = 1.5,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (default: Ctrl-C).", min=0),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
) -> None:
    """Run simulated body cams that obey (and acknowledge) the center's commands."""
    import httpx

    from rtcc.bodycam.fleet import Fleet, scatter
    from rtcc.bodycam.fleet import provision as provision_fleet

    if not provision and keys is None:
        fail("give --keys FILE (device keys) or --provision (register new body cams)")
    if mqtt is not None and ":" not in mqtt:
        fail(f"--mqtt {mqtt!r}: expected host:port")
    rng = random.Random(seed)
    if provision:
        if not password:
            fail("--provision needs the admin's password: --password or $RTCC_PASSWORD")
        ids = [f"{prefix}{i:04d}" for i in range(1, units + 1)]
        start = scatter(units, lat, lon, spread_m, rng)

        async def _prov() -> dict[str, str]:
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.post(
                    center.rstrip("/") + "/api/v1/auth/login", json={"username": user, "password": password}
                )
                if r.status_code != 200:
                    fail(f"login as {user!r} refused ({r.status_code}): {r.text[:200]}", 3)
                return await provision_fleet(http, center, str(r.json()["token"]), ids, start)

        try:
            key_map = asyncio.run(_prov())
        except httpx.HTTPStatusError as exc:
            fail(
                f"the center refused to register body cams ({exc.response.status_code}): "
                f"{exc.response.text[:200]}",
                3,
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach the center at {center}: {exc}", 3)
        if keys is not None:
            keys.write_text(json.dumps(key_map, indent=1), encoding="utf-8")
            os.chmod(keys, 0o600)
            out.print(f"{len(key_map)} device keys written to {keys}")
        positions = dict(zip(ids, start, strict=True))
    else:
        assert keys is not None
        key_map = dict(list(_read_keys(keys).items())[:units])
        if len(key_map) < units:
            err.print(f"--keys {keys} holds {len(key_map)} device(s); running those")
        positions = dict(zip(key_map, scatter(len(key_map), lat, lon, spread_m, rng), strict=True))

    fleet = Fleet(
        center,
        key_map,
        positions,
        mqtt=mqtt,
        ack_delay_s=ack_delay,
        no_ack_share=no_ack_share,
        heartbeat_s=heartbeat_s,
        walk_mps=walk_mps,
        seed=seed,
    )

    async def _run() -> None:
        await fleet.start()
        out.print(
            f"{len(fleet.cams)} body cam(s) running against {center}"
            + (f" (MQTT {mqtt})" if mqtt else "")
            + "; Ctrl-C to stop"
        )
        # Ctrl-C and SIGTERM stop the fleet even when the process was started with SIGINT ignored
        # (a background job of a non-interactive shell inherits that, and Python then never raises
        # KeyboardInterrupt)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        finally:
            try:
                await asyncio.wait_for(fleet.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                err.print(f"the body cams did not stop within {STOP_TIMEOUT_S:g} s; leaving anyway")
            obeyed = sum(len(c.executed) for c in fleet.cams.values())
            out.print(f"stopped: {obeyed} command(s) obeyed, {fleet.recording} device(s) recording")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run())


def register(app: typer.Typer) -> None:
    """Add ``rtcc bodycam`` to ``app``."""
    app.add_typer(bodycam_app, name="bodycam")
