"""Shared fixtures: a real center (embedded or production) and signed-in clients.

``backend`` is parametrized over

* ``embedded`` — SQLite file + in-process bus, and
* ``production`` — a fresh PostgreSQL/PostGIS database + NATS JetStream,

so the API tests run against both. Production cases need ``RTCC_TEST_PG_URL``
and ``RTCC_TEST_NATS_URL`` (``scripts/services.sh`` starts both); without
them they are skipped, unless ``RTCC_REQUIRE_SERVICES=1`` (set by
``scripts/test.sh`` and CI), where a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rtcc.app import Center
from rtcc.roles import Role
from rtcc.settings import Settings

PASSWORD = "Tr4ffic-lights-over-Birmingham"
SECRET = "test-secret-" + "x" * 40


def _require(var: str) -> str:
    value = os.environ.get(var)
    if value:
        return value
    if os.environ.get("RTCC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{var} is not set but RTCC_REQUIRE_SERVICES=1 (run via scripts/test.sh)")
    pytest.skip(f'{var} not set: start services with `eval "$(bash scripts/services.sh start)"`')


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database with PostGIS (its URL), dropped afterwards."""
    base = _require("RTCC_TEST_PG_URL")
    name = f"rtcc_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name)
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    eng.dispose()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database with PostGIS, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def nats_url() -> str:
    return _require("RTCC_TEST_NATS_URL")


async def delete_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
    finally:
        await nc.close()


async def delete_stale_test_streams(url: str) -> None:
    """Remove test streams a crashed run left behind (they would overlap ``rtcc.>``)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith("RTCC_T"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(info.config.name)
    finally:
        await nc.close()


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest, **extra: Any) -> Settings:
    """Settings for a test center on ``backend`` (port 0: a free port is chosen)."""
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "server": {"host": "127.0.0.1", "port": 0},
        "security": {"secret_key": SECRET, "admin_password": PASSWORD},
        "sim": {"enabled": False},
    }
    if backend == "production":
        base["mode"] = "production"
        base["database"] = {"url": request.getfixturevalue("pg_url")}
        base["bus"] = {
            "engine": "nats",
            "nats_url": request.getfixturevalue("nats_url"),
            "stream": f"RTCC_T{uuid.uuid4().hex[:10].upper()}",
        }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return Settings(**base)


@dataclass
class Running:
    center: Center
    settings: Settings
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.center.base_url

    async def login(self, username: str, password: str = PASSWORD, **extra: Any) -> httpx.AsyncClient:
        """A client signed in as ``username`` (Bearer token)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=20) as fresh:  # keep self.http cookie-free
            r = await fresh.post(
                "/api/v1/auth/login", json={"username": username, "password": password, **extra}
            )
        assert r.status_code == 200, r.text
        return httpx.AsyncClient(
            base_url=self.url, headers={"authorization": f"Bearer {r.json()['token']}"}, timeout=20
        )

    def add_user(self, username: str, role: Role) -> None:
        from rtcc.oversight.accounts import create_user

        assert self.center.store is not None
        self.center.store.run(lambda s: create_user(s, username, PASSWORD, role, username))


StartCenter = Callable[..., Awaitable[Running]]

STOP_LIMIT_S = 180.0
"""A center whose stop takes longer than this is stuck: the test fails with every task's stack
(instead of the whole run hanging in a fixture's teardown). A hang guard, not a timing assertion."""


async def stop_or_report(center: Center, limit_s: float = STOP_LIMIT_S) -> None:
    """``center.stop()``; if it has not returned after ``limit_s``, fail showing where it waits."""
    stopping = asyncio.ensure_future(center.stop())
    done, _ = await asyncio.wait({stopping}, timeout=limit_s)
    if done:
        stopping.result()
        return
    dump = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            print(f"--- {task.get_name()}", file=dump)
            task.print_stack(file=dump)
    stopping.cancel()
    with contextlib.suppress(BaseException):
        await stopping
    pytest.fail(f"Center.stop() did not return within {limit_s:.0f} s; its tasks:\n{dump.getvalue()}")


@pytest.fixture
async def start_center(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[StartCenter]:
    """Start a real center (HTTP server on a free port) and stop it afterwards."""
    running: list[Running] = []

    async def _start(processors: tuple[str, ...] | None = None, **extra: Any) -> Running:
        settings = make_settings(tmp_path, backend, request, **extra)
        if settings.bus.engine == "nats":
            await delete_stale_test_streams(settings.bus.nats_url)
        center = (
            Center(settings, auto_migrate=True)
            if processors is None
            else Center(settings, auto_migrate=True, processors=processors)
        )
        try:
            await center.start()
        except BaseException:
            await center.stop()
            raise
        r = Running(center, settings, httpx.AsyncClient(base_url=center.base_url, timeout=20))
        running.append(r)
        return r

    yield _start
    for r in reversed(running):
        await r.http.aclose()
        await stop_or_report(r.center)
        if r.settings.bus.engine == "nats":
            await delete_stream(r.settings.bus.nats_url, r.settings.bus.stream)


@pytest.fixture
async def center(start_center: StartCenter) -> Running:
    return await start_center()


ROLES = [Role.admin, Role.supervisor, Role.analyst, Role.officer, Role.auditor]


@pytest.fixture
async def clients(center: Running) -> AsyncIterator[dict[Role, httpx.AsyncClient]]:
    """One signed-in client per role (the admin is the first admin)."""
    out: dict[Role, httpx.AsyncClient] = {}
    for role in ROLES:
        name = "admin" if role is Role.admin else f"{role.value}1"
        if role is not Role.admin:
            center.add_user(name, role)
        out[role] = await center.login(name)
    yield out
    for c in out.values():
        await c.aclose()
