"""Composition root: builds settings, store, bus, processors, API and simulator.

Start order (stop is the reverse):

1. store — open the database, apply migrations (embedded) or check them (production)
2. first admin — created once, its password printed
3. bus — in-process or NATS JetStream
4. processors — recorder, device health, MQTT bridge (as configured)
5. live hub — the WebSocket fan-out
6. HTTP server — the API and the dashboard
7. simulator — the simulated city, sending through the real ingest path

With the in-process bus, whose messages live only in memory, :meth:`Center.stop`
lets the processors handle what the bus holds before each of them stops
(bounded by ``server.shutdown_grace_s``): an event answered 2xx is stored.

This is the only module that imports every room.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import FastAPI

from rtcc.api import create_app
from rtcc.api.deps import Context, Principal
from rtcc.api.hub import LiveHub
from rtcc.bus import Bus, make_bus
from rtcc.errors import ConfigError, Conflict, Unavailable, ValidationFailed
from rtcc.events import AuditEvent
from rtcc.ingest.health import DeviceHealth
from rtcc.ingest.mqtt import MqttBridge
from rtcc.ingest.recorder import Recorder
from rtcc.ingest.service import IngestService
from rtcc.metrics import Metrics
from rtcc.roles import DeviceType, Role
from rtcc.settings import Mode, Settings
from rtcc.store.db import Store

log = logging.getLogger("rtcc")

PROCESSOR_KINDS = (
    "recorder",
    "health",
    "ingest",
    "acoustic",
    "plates",
    "bodycam",
    "cameras",
    "operations",
    "retention",
)
"""Processors ``rtcc worker <kind>`` can run; ``ingest`` is the MQTT bridge, ``acoustic`` gunshots."""

PROCESSOR_FACTORIES: dict[str, str] = {
    "plates": "rtcc.plates.processor:build",
    "bodycam": "rtcc.bodycam.processor:build",
    "cameras": "rtcc.cameras.processor:build",
    "operations": "rtcc.ops.processor:build",
    "retention": "rtcc.oversight.retention:build",
}
"""Processors built by ``build(center) -> Component`` in their own room (imported when used)."""

SIM_INSTALLERS: tuple[str, ...] = (
    "rtcc.sim.gunfire:install",
    "rtcc.sim.traffic:install",
    "rtcc.sim.bodycams:install",
    "rtcc.sim.cameras:install",
)
"""Simulator parts: ``install(city, runner, center)`` adds sources and tasks to the runner."""


def _resolve(ref: str) -> Any:
    """The object named ``"package.module:attr"``."""
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the center stops its parts in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class FirstAdmin:
    username: str
    password: str | None
    created: bool


class Center:
    """The whole center in one process (or one worker's part of it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        processors: Sequence[str] = PROCESSOR_KINDS,
        with_api: bool = True,
        with_sim: bool | None = None,
        auto_migrate: bool | None = None,
    ) -> None:
        unknown = set(processors) - set(PROCESSOR_KINDS)
        if unknown:
            raise ValueError(f"unknown processor(s) {sorted(unknown)}; known: {PROCESSOR_KINDS}")
        self.settings = settings
        self.processor_kinds = list(processors)
        self.with_api = with_api
        self.with_sim = settings.sim.enabled if with_sim is None else with_sim
        self.auto_migrate = settings.mode is Mode.development if auto_migrate is None else auto_migrate
        self.metrics = Metrics()
        self.store: Store | None = None
        self.bus: Bus | None = None
        self.ingest: IngestService | None = None
        self.hub: LiveHub | None = None
        self.ctx: Context | None = None
        self.app: FastAPI | None = None
        self.first_admin: FirstAdmin | None = None
        self.sim: Any = None
        self.services: dict[str, Any] = {}
        """Services processors offer to routes (e.g. ``"bodycam"``), shared with the API context."""
        self._components: list[Component] = []
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None  # the HTTP port, bound first (start)
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self.port = settings.server.port

    # -- building blocks ------------------------------------------------------

    async def audit(
        self,
        who: Principal,
        action: str,
        resource: str,
        *,
        record_id: str | None = None,
        outcome: str = "ok",
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append to the audit chain and mirror the entry on the bus."""
        from rtcc.oversight.audit import append_audit

        assert self.store is not None and self.bus is not None
        secret = self.settings.security.secret_key.encode()
        entry = await self.store.write(
            lambda s: append_audit(
                s,
                secret=secret,
                actor=who.username,
                role=who.role.value,
                action=action,
                resource=resource,
                record_id=record_id,
                outcome=outcome,
                purpose=purpose,
                details=details or {},
            )
        )
        ev = AuditEvent(
            source="audit",
            occurred_at=entry.at,
            actor=who.username,
            action=action,
            resource=resource,
            record_id=record_id,
            outcome=outcome,
            purpose=purpose,
        )
        with contextlib.suppress(Exception):
            await self.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))

    def _open_store(self) -> Store:
        from rtcc.oversight.retention import media_root
        from rtcc.store.migrate import check_current, upgrade

        s = self.settings
        writable_dir(s.data_dir, "data_dir")
        if s.plates.media_dir is not None:  # else under data_dir
            writable_dir(media_root(s), "plates.media_dir")
        url = s.database_url
        if self.auto_migrate:
            upgrade(url)
        else:
            check_current(url)
        return Store(url, pool_size=s.database.pool_size, echo=s.database.echo)

    def ensure_first_admin(self) -> FirstAdmin:
        """Create the first admin when there is no account; its password is returned once."""
        from rtcc.oversight.accounts import create_user, list_users
        from rtcc.oversight.passwords import generate_password

        assert self.store is not None
        sec = self.settings.security
        users = self.store.run(list_users)
        if users:
            return FirstAdmin(sec.admin_username, None, created=False)
        password = sec.admin_password or generate_password()
        try:
            self.store.run(
                lambda s: create_user(s, sec.admin_username, password, Role.admin, "First administrator")
            )
        except ValidationFailed as exc:
            raise ConfigError(
                f"security.admin_password (RTCC_SECURITY__ADMIN_PASSWORD) is refused: {exc.message}"
            ) from exc
        if self.settings.mode is Mode.development and not sec.admin_password:
            cred = self.settings.data_dir / "first-admin.txt"
            cred.write_text(f"{sec.admin_username}\n{password}\n", encoding="utf-8")
            os.chmod(cred, 0o600)
        return FirstAdmin(sec.admin_username, password, created=True)

    async def provision_device(
        self,
        device_id: str,
        device_type: DeviceType,
        name: str,
        lat: float,
        lon: float,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        """Register a device (or rotate its key when it exists) and return its key."""
        from rtcc.oversight.device_keys import issue_key, register_device

        assert self.store is not None and self.ingest is not None

        def _do(s: Any) -> str:
            try:
                with s.begin_nested():
                    _, key = register_device(
                        s, device_id, device_type, name, lat, lon, None, attributes or {}
                    )
                return str(key)
            except Conflict:
                return str(issue_key(s, device_id))

        key = await self.store.write(_do)
        self.ingest.forget_keys(device_id)
        return key

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        # 0. the HTTP port, before anything starts: a port in use is a clear error, not a half start
        if self.with_api:
            self._socket = bind_port(s.server.host, s.server.port)
        # 1. store
        self.store = await asyncio.to_thread(self._open_store)
        if self.store.is_postgres:
            await self._maintain_partitions()
            self._tasks.append(asyncio.create_task(self._partition_loop(), name="partitions"))
        # 2. first admin
        if self.with_api:
            self.first_admin = await asyncio.to_thread(self.ensure_first_admin)
        # 3. bus
        kwargs: dict[str, Any] = (
            {"queue_size": s.bus.queue_size}
            if s.bus.engine == "memory"
            else {
                "servers": s.bus.nats_url,
                "stream": s.bus.stream,
                "max_age_s": s.bus.stream_max_age_s,
                "ack_wait_s": s.bus.ack_wait_s,
                "max_deliver": s.bus.max_deliver,
                "retry_delay_max_s": s.bus.retry_delay_max_s,
            }
        )
        self.bus = make_bus(s.bus.engine, **kwargs)
        await self.bus.start()
        self._components.append(self.bus)
        self.ingest = IngestService(self.store, self.bus, self.metrics, max_age_s=s.server.max_event_age_s)
        # 4. processors
        for kind in self.processor_kinds:
            comp: Component
            if kind == "recorder":
                comp = Recorder(self.store, self.bus, self.metrics)
            elif kind == "health":
                comp = DeviceHealth(
                    self.store, self.bus, self.metrics, offline_after_s=s.server.offline_after_s(s.sim)
                )
            elif kind in PROCESSOR_FACTORIES:
                comp = _resolve(PROCESSOR_FACTORIES[kind])(self)
            elif kind == "acoustic":
                from rtcc.acoustic.pipeline import AcousticPipeline

                a = s.acoustic
                weather = None
                if a.weather_url:
                    from rtcc.acoustic.weather import WeatherFeed

                    weather = WeatherFeed(
                        a.weather_url,
                        fallback_c=a.temperature_c,
                        poll_s=a.weather_poll_s,
                        max_age_s=a.weather_max_age_s,
                    )
                comp = AcousticPipeline(
                    self.store,
                    self.bus,
                    self.metrics,
                    # the simulated city's centre when it runs here; else the first registered
                    # sensor (a local frame far from the sensors distorts distances)
                    origin=(s.sim.center_lat, s.sim.center_lon) if self.with_sim else None,
                    temperature_c=a.temperature_c,
                    alert_above=a.alert_above,
                    review_above=a.review_above,
                    hearing_range_m=a.hearing_range_m,
                    settle_s=a.settle_s,
                    group_distance_m=a.group_distance_m,
                    group_gap_s=a.group_gap_s,
                    levels_spl=a.levels_spl,
                    gun_source_db=a.gun_source_db,
                    quiet_source_db=a.quiet_source_db,
                    calibration_path=a.calibration_path,
                    position_tolerance_m=a.position_tolerance_m,
                    max_pulse_rate_hz=a.max_pulse_rate_hz,
                    max_pulse_burst=a.max_pulse_burst,
                    flood_hold_s=a.flood_hold_s,
                    holdover_s=a.pulse_holdover_s,
                    weather=weather,
                )
            else:
                if s.bus.engine != "nats":
                    continue  # MQTT arrives only through the NATS server's listener
                comp = MqttBridge(self.bus, self.ingest, self.metrics)
            await comp.start()
            self._components.append(comp)
        if not self.with_api:
            return
        # 5. live hub
        self.hub = LiveHub(self.bus, self.metrics)
        await self.hub.start()
        self._components.append(self.hub)
        # 6. HTTP server
        self.ctx = Context(
            settings=s,
            store=self.store,
            bus=self.bus,
            metrics=self.metrics,
            ingest=self.ingest,
            hub=self.hub,
            audit=self.audit,
            services=self.services,
        )
        self.app = create_app(
            self.ctx,
            max_request_bytes=s.server.max_request_bytes,
            max_upload_bytes=s.server.max_upload_bytes,
        )
        # 7. simulator (its map layers are known before the server answers)
        city = None
        if self.with_sim:
            from rtcc.sim.city import build_city

            city = build_city(s.sim)
            self.ctx.map_layers = {"roads": city.roads_geojson(), "area": city.area_geojson()}
        await self._start_server()
        if city is not None:
            await self._start_sim(city)
        self.ctx.ready = True

    async def _start_server(self) -> None:
        assert self.app is not None
        config = uvicorn.Config(
            self.app,
            host=self.settings.server.host,
            port=self.settings.server.port,
            log_level="warning",
            lifespan="off",
            ws_max_size=65536,
            timeout_graceful_shutdown=self.settings.server.shutdown_grace_s,
        )
        self._server = _Server(config)
        sockets = [self._socket] if self._socket is not None else None
        self._server_task = asyncio.create_task(self._server.serve(sockets=sockets), name="http")
        while not self._server.started:
            if self._server_task.done():
                raise OSError(
                    f"the HTTP server could not start on {self.settings.server.host}:"
                    f"{self.settings.server.port} (setting server.port)"
                )
            await asyncio.sleep(0.02)
        sockets = [sock for srv in self._server.servers for sock in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """Where this process's API answers (the real port, even when 0 was configured)."""
        if self.settings.server.public_url:
            return self.settings.public_url
        host = self.settings.server.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{host}:{self.port}/"

    async def _start_sim(self, city: Any) -> None:
        from rtcc.sim.runner import SimRunner

        self._http = httpx.AsyncClient(timeout=10.0)
        self.sim = SimRunner(
            city,
            provision=self.provision_device,
            http=self._http,
            base_url=self.base_url,
            settings=self.settings.sim,
            truth_path=self.settings.data_dir / "sim-truth.jsonl",
        )
        for ref in SIM_INSTALLERS:
            _resolve(ref)(city, self.sim, self)
        await self.sim.start()

    async def _maintain_partitions(self) -> None:
        from rtcc.store.partitions import PARTITIONED

        assert self.store is not None
        today = datetime.now(UTC).date()
        start = date.fromordinal(today.toordinal() - 1)
        for parent in PARTITIONED:
            await self.store.write(functools.partial(_partitions_for, start=start, parent=parent))

    async def _partition_loop(self) -> None:
        while True:
            await asyncio.sleep(6 * 3600)
            try:
                await self._maintain_partitions()
            except Exception:
                log.exception("creating event partitions failed; rows go to the default partition")

    async def wait(self) -> None:
        """Run until SIGINT/SIGTERM (or the HTTP server fails); :meth:`stop` then stops in order."""
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if self._server_task is not None:
            waiters.append(self._server_task)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            waiters[0].cancel()
        log.info("stopping")

    async def stop(self) -> None:
        if self.ctx is not None:
            self.ctx.ready = False
        if self.sim is not None:
            await self.sim.stop()
            self.sim = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._server_task
            self._server = None
            self._server_task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for name, service in list(self.services.items()):
            close = getattr(service, "close", None)
            if name == "plates.camera_ingest" and callable(close):
                close()
        self.services.clear()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Nothing new arrives now (server and simulator stopped). The in-process bus keeps its
        # messages only in memory: let the processors handle what was accepted before they stop,
        # and what each stopping processor publishes before the next one stops (bounded: a stuck
        # store must not hang the stop; what is left is counted and logged by the bus)
        deadline = asyncio.get_running_loop().time() + self.settings.server.shutdown_grace_s
        for comp in reversed(self._components):
            if comp is not self.bus:
                await self._drain_bus(deadline)
            try:
                await comp.stop()
            except Exception:
                log.exception("stopping %s failed", type(comp).__name__)
        self._components.clear()
        if self.store is not None:
            self.store.close()
            self.store = None

    async def _drain_bus(self, deadline: float) -> None:
        """Wait (until loop time ``deadline`` at most) for the in-process bus's queued messages to be
        handled; a no-op for NATS, where JetStream keeps them for the next start."""
        from rtcc.bus.memory import MemoryBus

        bus = self.bus
        if not isinstance(bus, MemoryBus):
            return
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        try:
            await bus.drain(left)
        except TimeoutError:
            log.warning(
                "stopping: %d message(s) still queued on the bus after %s s (server.shutdown_grace_s); "
                "stopping the processors anyway",
                bus.queued(),
                self.settings.server.shutdown_grace_s,
            )


def _partitions_for(session: Any, *, start: date, parent: str) -> list[str]:
    from rtcc.store.partitions import ensure_event_partitions

    return ensure_event_partitions(session, start, 9, parent)


def bind_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` for the HTTP server; :class:`Unavailable` naming the
    setting when the port is taken or the address is not this machine's."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise Unavailable(f"server.host {host!r} cannot be resolved ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise Unavailable(
            f"cannot listen on {host}:{port} ({why}); is another center running there? "
            "Change server.port (RTCC_SERVER__PORT) or stop the other process"
        ) from None
    sock.set_inheritable(True)
    return sock


def writable_dir(path: Path, setting: str) -> None:
    """Create ``path`` if needed and check that files can be written there, else a :class:`ConfigError`
    naming ``setting`` (found at start, not when the first camera uploads)."""
    probe = path / f".rtcc-write-check-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(f"{setting} = {str(path)!r} is not a writable directory ({why})") from None


def default_data_dir() -> Path:
    return Path(os.environ.get("RTCC_DATA_DIR", "data"))
