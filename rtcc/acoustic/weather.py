"""Air temperature from a weather feed, for the speed of sound the localizer uses.

The speed of sound changes by about 0.6 m/s per °C (:func:`rtcc.acoustic.locate.speed_of_sound`):
on a 1 km array a 10 °C error moves arrival-time differences by ~50 µs per 100 m and a shot by
metres. ``acoustic.temperature_c`` is the fixed value; with ``acoustic.weather_url`` set, the center
polls a feed every ``acoustic.weather_poll_s`` and uses its latest observation while it is younger
than ``acoustic.weather_max_age_s``, and the fixed value otherwise (a feed that is down, slow or
wrong never stops localization).

Feeds understood (the body decides, not the URL):

* NOAA Aviation Weather Center data API, METAR as JSON
  (``https://aviationweather.gov/api/data/metar?ids=KPIT&format=json``): a list of reports with
  ``temp`` (°C) and ``obsTime`` (POSIX s) or ``reportTime``; the newest report wins.
* US National Weather Service API, latest station observation
  (``https://api.weather.gov/stations/KPIT/observations/latest``): GeoJSON whose ``properties`` hold
  ``temperature.value`` (with ``unitCode`` ``wmoUnit:degC`` or ``wmoUnit:degF``) and ``timestamp``.
* Raw METAR text, one report per line (``format=raw`` of the first, or a local station's file):
  the remark group ``T1022 1089`` (tenths of °C) when present, else the body group ``M02/M09``; the
  day and time group ``221751Z`` dates it (the month is the one, current or previous, that puts it
  in the past).

A ``file://`` URL or a path reads a local file the same way (a station that writes its METAR).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

USER_AGENT = "rtcc-weather (https://github.com/rtcc; city RTCC speed-of-sound feed)"
"""api.weather.gov refuses requests without a User-Agent that identifies the caller."""

_METAR_TIME = re.compile(r"\b(\d{2})(\d{2})(\d{2})Z\b")
_METAR_TEMP = re.compile(r"(?<![\w/])(M?\d{2})/(M?\d{2})?(?![\w/])")
_METAR_TENTHS = re.compile(r"\bT([01])(\d{3})(?:[01]\d{3})?\b")


class WeatherError(ValueError):
    """A feed's answer holds no usable temperature observation."""


@dataclass(frozen=True)
class Observation:
    """One temperature observation: °C and when it was observed (UTC)."""

    temperature_c: float
    observed_at: datetime


def _checked(temp: float, at: datetime) -> Observation:
    if not math.isfinite(temp) or not -80.0 <= temp <= 65.0:
        raise WeatherError(f"temperature {temp!r} °C is not a plausible air temperature")
    return Observation(float(temp), at.astimezone(UTC))


def _iso(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise WeatherError(f"time {value!r} is not ISO 8601") from None
    if at.tzinfo is None:
        raise WeatherError(f"time {value!r} has no time zone")
    return at


def _from_awc(reports: list[Any]) -> Observation:
    obs: list[Observation] = []
    for r in reports:
        if not isinstance(r, dict) or not isinstance(r.get("temp"), int | float):
            continue
        if isinstance(r.get("obsTime"), int | float):
            at = datetime.fromtimestamp(float(r["obsTime"]), UTC)
        elif r.get("reportTime") is not None:
            at = _iso(r["reportTime"])
        else:
            continue
        obs.append(_checked(float(r["temp"]), at))
    if not obs:
        raise WeatherError("no METAR report with a temperature and a time")
    return max(obs, key=lambda o: o.observed_at)


def _from_nws(doc: dict[str, Any]) -> Observation:
    props = doc.get("properties")
    temp = props.get("temperature") if isinstance(props, dict) else None
    if not isinstance(props, dict) or not isinstance(temp, dict):
        raise WeatherError("no properties.temperature in the observation")
    value = temp.get("value")
    if not isinstance(value, int | float):
        raise WeatherError("the observation's temperature is missing (null)")
    unit = str(temp.get("unitCode", "wmoUnit:degC"))
    if unit.endswith("degF"):
        value = (float(value) - 32.0) * 5.0 / 9.0
    elif not unit.endswith("degC"):
        raise WeatherError(f"temperature unit {unit!r} is neither °C nor °F")
    return _checked(float(value), _iso(props.get("timestamp")))


def _metar_time(day: int, hour: int, minute: int, now: datetime) -> datetime:
    """The latest UTC time not after ``now`` (+1 h of clock slack) with this day of month and time."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(3):
        with contextlib.suppress(ValueError):
            at = month_start.replace(day=day, hour=hour, minute=minute)
            if at <= now + timedelta(hours=1):
                return at
        month_start = (month_start - timedelta(days=1)).replace(day=1)
    raise WeatherError(f"day {day} of the METAR time is in none of the last three months")


def _from_metar(text: str, now: datetime) -> Observation:
    obs: list[Observation] = []
    for line in text.splitlines():
        line = line.strip()
        when = _METAR_TIME.search(line)
        if when is None:
            continue
        body, _, remarks = line.partition(" RMK ")
        tenths = _METAR_TENTHS.search(remarks)
        if tenths is not None:
            temp = int(tenths.group(2)) / 10.0 * (-1 if tenths.group(1) == "1" else 1)
        else:
            group = _METAR_TEMP.search(body[when.end() :])
            if group is None:
                continue
            raw = group.group(1)
            temp = -float(raw[1:]) if raw.startswith("M") else float(raw)
        day, hour, minute = (int(g) for g in when.groups())
        if not (1 <= day <= 31 and hour <= 23 and minute <= 59):
            continue
        obs.append(_checked(temp, _metar_time(day, hour, minute, now)))
    if not obs:
        raise WeatherError("no METAR report with a time group and a temperature group")
    return max(obs, key=lambda o: o.observed_at)


def parse_observation(body: bytes, now: datetime | None = None) -> Observation:
    """The newest temperature observation in a feed's answer (see the module docstring).

    Raises
    ------
    WeatherError
        The body is none of the feeds understood, or holds no plausible temperature with a time.
    """
    now = now or datetime.now(UTC)
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise WeatherError("the feed answered with an empty body")
    if text[0] in "[{":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise WeatherError(f"the feed's JSON does not parse: {exc}") from None
        if isinstance(doc, list):
            return _from_awc(doc)
        if isinstance(doc, dict) and "properties" in doc:
            return _from_nws(doc)
        raise WeatherError("JSON that is neither a METAR list nor a weather.gov observation")
    return _from_metar(text, now)


class WeatherFeed:
    """Polls a weather feed and says which temperature to use now (feed or fixed value).

    Parameters
    ----------
    url : str
        ``http(s)://`` feed, ``file://`` URL or a path.
    fallback_c : float
        The fixed temperature (``acoustic.temperature_c``), used while no fresh observation exists.
    poll_s : float
        Seconds between polls.
    max_age_s : float
        An observation older than this (by its own time) is no longer used.
    timeout_s : float
        HTTP timeout per poll.
    clock : callable, optional
        UTC now (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        fallback_c: float,
        poll_s: float = 600.0,
        max_age_s: float = 10800.0,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = url
        self.fallback_c = fallback_c
        self.poll_s = poll_s
        self.max_age = timedelta(seconds=max_age_s)
        self.timeout_s = timeout_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self.latest: Observation | None = None
        self.last_error: str | None = None
        self.polls = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._using_feed: bool | None = None

    def current(self) -> tuple[float, str]:
        """The temperature to use now, °C, and where it comes from (``"feed"`` or ``"settings"``)."""
        obs = self.latest
        fresh = obs is not None and self.clock() - obs.observed_at <= self.max_age
        if fresh != self._using_feed:  # say it once when it changes
            self._using_feed = fresh
            if fresh:
                assert obs is not None
                log.info(
                    "weather: %.1f °C from %s (observed %s)", obs.temperature_c, self.url, obs.observed_at
                )
            else:
                log.warning(
                    "weather: no observation younger than %.0f s from %s (%s); using the fixed %.1f °C",
                    self.max_age.total_seconds(),
                    self.url,
                    self.last_error or "none yet",
                    self.fallback_c,
                )
        if fresh:
            assert obs is not None
            return obs.temperature_c, "feed"
        return self.fallback_c, "settings"

    async def _fetch(self) -> bytes:
        if self.url.startswith(("http://", "https://")):
            if self._client is None:
                self._client = httpx.AsyncClient(
                    timeout=self.timeout_s, headers={"user-agent": USER_AGENT, "accept": "*/*"}
                )
            r = await self._client.get(self.url)
            if r.status_code != 200:
                raise WeatherError(f"HTTP {r.status_code}")
            return r.content
        path = Path(self.url.removeprefix("file://"))
        return await asyncio.to_thread(path.read_bytes)

    async def poll_once(self) -> Observation | None:
        """Fetch and parse the feed once; the new observation, or None (the reason in ``last_error``)."""
        self.polls += 1
        try:
            obs = parse_observation(await self._fetch(), self.clock())
        except (WeatherError, httpx.HTTPError, OSError) as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.debug("weather poll failed: %s", self.last_error)
            return None
        if obs.observed_at > self.clock() + timedelta(hours=1):
            self.failures += 1
            self.last_error = f"observation time {obs.observed_at.isoformat()} is in the future"
            return None
        if self.latest is None or obs.observed_at >= self.latest.observed_at:
            self.latest = obs
        self.last_error = None
        return obs

    async def _loop(self) -> None:
        while True:
            await self.poll_once()
            self.current()  # log a change of source at once
            await asyncio.sleep(self.poll_s)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="weather")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
