"""The center's acoustic processor: pulses on the bus → located shots → incidents → alerts.

:class:`AcousticPipeline` runs in the queue group ``acoustic`` (``rtcc worker
acoustic``, or inside ``rtcc serve``) and consumes ``rtcc.events.pulse``.

What it does with the pulses
----------------------------
1. **Buffer.** Each new pulse (by event id: a redelivered or duplicated pulse
   is handled once; a pulse of a sensor at the same millisecond as one already
   processed is a resend and dropped too) joins an open *cluster* when it could be the same bang as
   a pulse already there: sensors at most ``2 × hearing_range_m`` apart and
   arrival times at most their distance over the speed of sound plus
   ``burst_gap_s`` apart (so the rounds of a burst stay together). Clusters
   that a pulse links are merged.
2. **Close the window.** A cluster is processed when no more pulse of it can
   be expected:

   * *early*: a preliminary fix exists and every registered sensor within
     ``hearing_range_m`` of it that has not reported was due (its arrival
     time from the fix, plus the delivery delay seen on this cluster's
     freshest pulse, plus ``late_margin_s`` for a blocked, late path) and
     nothing arrived for ``early_quiet_s``. Later rounds then make a new
     window and join the incident (7.); or
   * *timer*: the newest pulse is ``settle_s`` old (by its own time stamp)
     and nothing arrived for ``quiet_s`` (the fallback when the sensor
     registry does not say who should have heard it).
   * *cap*: it has been open ``max_window_s`` (a sensor clicking faster than
     ``quiet_s``, within its flood rate, would otherwise hold it open for good).
3. **Locate.** Positions go to local metres (:class:`~rtcc.acoustic.projection.Projection`
   centred on ``origin`` — the simulated city's centre — or the first
   sensor heard), then ``locate_all`` (:mod:`rtcc.acoustic.locate`)
   associates rounds, echoes and strays and locates each round. Each fix is
   published as a :class:`~rtcc.events.ShotLocated`.
4. **Incidents.** Fixes within ``group_distance_m`` and ``group_gap_s`` of
   each other make one incident: rounds = fixes, their intervals, *probable
   automatic fire* (at least 3 rounds, every interval under
   ``automatic_interval_s``) and *more than one shooter* (two fixes further
   apart than ``multiple_shooter_m`` and than their two ellipses' major
   semi-axes together).
5. **Classify.** The audio of the (up to) three contributing sensors
   nearest the incident is decoded (FLAC) and scored by
   :class:`rtcc.acoustic.classify.GunshotClassifier`; the incident's
   confidence combines, in log-odds (:mod:`rtcc.acoustic.evidence`), the
   mean of their capped log-odds with the **round pattern** (a regular train
   of rounds from one place raises the odds, crackle or bangs spread over
   metres lower them) and, when the sensors report calibrated dB SPL
   (``levels_spl``), the **level against distance** (the median source level
   at 1 m against gunfire's measured level and quiet impulses'). With no model
   or no audio the confidence is ``no_audio_confidence`` (0.5 by default,
   inside the review band: a person decides). Later rounds (7.) re-score the
   incident with the longer pattern and can raise its status (below →
   review → alert), never lower it; so do later *sensors* (stragglers, the
   far side as the same bang): one among the three nearest with audio is
   classified and the audio term recomputed (:meth:`AcousticPipeline._rescore`).
6. **Review rule.** confidence ≥ ``alert_above``: status ``alerted`` and an
   :class:`~rtcc.events.Alert` of kind ``gunshot`` at once;
   ``review_above`` ≤ confidence < ``alert_above``: ``pending_review`` and
   an Alert of kind ``gunshot_review`` (for supervisors and analysts: the
   dashboard routes by ``kind``); below: ``below_threshold``, stored for
   statistics, no incident event and no alert. Incidents are stored in
   ``gunshot_incidents`` (:mod:`rtcc.acoustic.incidents`) before they are
   published.
7. **Later rounds and stragglers.** Fixes of a later window within
   ``group_distance_m`` and ``group_gap_s`` of an incident already announced
   join it (the incident is re-published with more rounds; no second
   alert). A pulse arriving as a located round predicts (from
   ``absorb_early_s`` before to ``absorb_late_s`` after its fix's arrival
   time at that sensor: a far sensor, a slow delivery, a blocked path or an
   echo) is counted with that round and not located again. The incident
   keeps each sensor's pulse of every round (``round_pulses``, in time order)
   and which of them came with audio (``round_audio``), so a reviewer can
   play any round (``GET /gunshots/{id}/audio?sensor=&round=``). A window
   that closed before the far side of the array reported locates the round
   from one side; the other side's pulses, later, give a fix near it in space
   and time that shares (almost) no sensor with it: that is the same bang, and
   it joins the round instead of making another (``same_bang_s``). The same
   holds for two fixes of one window: air warmer than assumed or wind delays
   the far side beyond the fit's gate, and the localizer returns the bang
   once from each side; the better-heard fix keeps it.
8. **Held over.** A window's pulses that no fix used (a window of too few
   sensors, no fix, or pulses left beside its fixes) stay available for
   ``holdover_s`` after they were received: a later pulse they link to (1.)
   of *another* sensor takes them into its cluster (a sensor's own new
   pulses never take its held ones back, so a sensor that keeps clicking
   does not drag its past along), so a bang whose sensors deliver far apart
   (a backlog after an outage, one slow link: each sensor's pulses then
   make a window of their own, closed by its ``quiet_s``) is still located
   once enough sensors are in. A pulse given up at the end is counted once,
   ``acoustic_unlocated{reason}`` with the reason of its last window
   (``too_few_sensors``, ``no_fix``, ``unassociated``); at most
   ``max_held`` pulses are held (the oldest go first).

Where a sensor is (the registered position is the reference)
-------------------------------------------------------------
A fixed sensor's registered position (surveyed at install, set by an operator
through the device API; heartbeats never move it, see :mod:`rtcc.ingest.health`)
is the reference for every pulse it sends. A pulse whose reported position is
within ``position_tolerance_m`` of it is used as reported; further away (a GPS
jump, a mis-configured sensor) the pulse is located at the **registered**
position (survey wins), counted (``acoustic_pulse_position_mismatch{sensor}``)
and the device is flagged in ``attributes`` (``position_mismatch: true``,
``position_mismatch_m``, ``position_mismatch_at``; a later pulse within the
tolerance clears it) for the device API and the health view. A position an admin
sets is published as a ``device_position`` event: the pipeline reloads its registry
then, so the sensor's next pulse is judged by it. A pulse of a sensor
with no registered position (unknown, revoked, or registered without one) is
not located at all: it is counted (``acoustic_pulse_rejected{reason=unregistered_sensor}``)
and logged. Either way the pulse itself is kept as received (the recorder stores
every event).

A flooding sensor
-----------------
A faulty sensor (a loose cable, a stuck comparator, a fan) can report impulses
by the hundred every second; located, each would hold a handler for its window
and delay the real shots behind it. Each sensor has a token bucket on its own
clock (the pulses' ``occurred_at``): ``max_pulse_burst`` pulses at once, refilled
at ``max_pulse_rate_hz``. A pulse finding the bucket empty is not located: it is
counted (``acoustic_pulse_rejected{reason=flood}``) and logged once a minute per
sensor. The defaults (20 per second, bursts of 100) pass automatic fire (10-15
rounds a second) with its echoes; a backlog a sensor delivers late is spread in
its own time, so it passes too. The recorder still stores every pulse.

Once a pulse of a sensor has been counted as a flood, the sensor is **quarantined**:
every pulse of it up to ``flood_hold_s`` later (its clock) is counted the same way,
also those its refilling bucket would let through. That trickle (20 a second)
would link into one window that never goes quiet, which every nearby shot's window
then joins and is located with: measured (``bench/acoustic_latency.py
--flood-sensors 2``), a window of 3,000 pulses over 76 s, 0.6-1.6 s of CPU per
attempt, and alerts 1.5-3.5 s late. The sensor returns ``flood_hold_s`` after its
last flooded pulse. In a long barrage the loudest sensors (the rounds with their
echoes) may be quarantined after their bucket has run dry; the farther sensors,
which hear the rounds without most echoes, keep locating.

Delivery and idempotency
------------------------
A pulse's message is acknowledged only once its cluster has been processed
(the handler waits), so a worker that dies mid-window leaves its pulses to be
redelivered. Ids are derived from the pulses (uuid5 of their event ids): the
same pulses give the same ShotLocated, incident and alert ids, the store
insert is skipped for a known id and JetStream drops a re-published id.
Pulses replayed after a restart (a sensor's spool, a redelivery the in-memory
dedupe no longer remembers) are located again, but what they make is not
announced again: an incident already stored is counted
(``acoustic_duplicate_incidents``) and not published, nor is a round whose
pulses are already stored in its incident (its ShotLocated and the incident
update are counted in ``acoustic_duplicate_shots`` and not published; the
store keeps its rounds). ``acoustic_shots`` counts the ShotLocated published.
A replay grouped otherwise than the first time (a burst located in one window
then, round by round now) would make another incident id: a new incident is
first looked up in the store by its pulses (:func:`_replayed_in`), and one
holding most of them is the incident.

One active acoustic processor (the lead), others stand by
----------------------------------------------------------
All pulses of one bang must reach the **same** processor: in a queue group a
message goes to any member, so two acoustic processes taking pulses would
split a shot's pulses and locate it twice, badly, or not at all. On
PostgreSQL the processor therefore takes the **lead** before it subscribes: a
session advisory lock (``pg_try_advisory_lock``, :data:`LEAD_LOCK`) held on a
connection of its own for as long as it runs. A second ``rtcc worker
acoustic`` (or ``rtcc serve`` beside one) stands by, logs so, and tries again
every ``lead_retry_s``; when the lead stops or dies, its connection closes,
the lock goes with it, and a standby takes over. Pulses published meanwhile
wait in JetStream (the unacknowledged ones of the old lead are redelivered).
Scaling out by map cell (one subject per cell, each pulse also published to
its neighbouring cells, a cluster owned by the cell of its first pulse) is not
built; inside one process the ``members`` concurrent handlers share one
buffer, so that is safe. With SQLite there is one process by construction.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import itertools
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import ValidationError
from sqlalchemy import select, text

from rtcc.acoustic.evidence import Evidence, RoundFix, audio_logit, combine
from rtcc.acoustic.incidents import (
    DECIDED,
    IncidentRecord,
    Status,
    raise_status,
    record_incident,
    sensor_round_pulses,
    update_rounds,
)
from rtcc.acoustic.projection import Projection
from rtcc.bus import Bus, Subscription
from rtcc.events import (
    Alert,
    AlertSeverity,
    DevicePosition,
    GunshotIncident,
    Position,
    Pulse,
    ShotLocated,
    parse_event,
    subject_for,
)
from rtcc.metrics import Metrics
from rtcc.roles import DeviceType
from rtcc.store.db import Store
from rtcc.store.tables import Device, GunshotIncidentRow

if TYPE_CHECKING:
    from rtcc.acoustic.calibration import Calibration
    from rtcc.acoustic.weather import WeatherFeed

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6b1d3c4e-9f0a-4d8e-8a51-0c7e2f9b4a10")
"""uuid5 namespace of the ids derived from pulse ids."""


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s: ``331.3 * sqrt(1 + T / 273.15)``."""
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


class Classifier(Protocol):
    """What the pipeline needs of :class:`rtcc.acoustic.classify.GunshotClassifier`."""

    def probability(self, audio: np.ndarray[Any, Any], sample_rate_hz: int) -> float: ...


RECHECK_S = 5.0
"""A sensor's pulse far from its cached registered position reloads the registry at most this often
(seconds, per sensor): see :meth:`AcousticPipeline._recheck`."""

LEAD_LOCK = 0x7274_6363_6163_6F75 & 0x7FFF_FFFF_FFFF_FFFF
"""PostgreSQL advisory lock key of the acoustic lead (``rtccacou`` in ASCII)."""

Locate = Callable[..., Sequence[Any]]
"""``locate_all(arrivals, *, temperature_c) -> list[Fix]`` (see :mod:`rtcc.acoustic.locate`)."""


@dataclass
class _P:
    """A buffered pulse."""

    event: Pulse
    t: float  # arrival, epoch seconds
    xyz: tuple[float, float, float]
    received: float  # loop time
    done: asyncio.Future[None]
    delivery_s: float = 0.0  # received (wall clock) minus the onset time stamp
    unused: str = ""  # why its last window used it for no fix, while it is held over


@dataclass
class _Cluster:
    pulses: list[_P] = field(default_factory=list)
    last_t: float = 0.0
    last_received: float = 0.0
    first_received: float = math.inf
    version: int = 0
    prelim_version: int = -1
    prelim: list[Any] = field(default_factory=list)

    def add(self, p: _P) -> None:
        self.pulses.append(p)
        self.last_t = max(self.last_t, p.t)
        self.last_received = max(self.last_received, p.received)
        self.first_received = min(self.first_received, p.received)
        self.version += 1

    @property
    def sensors(self) -> set[str]:
        return {p.event.device for p in self.pulses}


@dataclass
class _Round:
    """One located round: absolute time (epoch s), local position and ellipse (m, degrees), and the
    pulse each sensor heard it with (event id) and the sensors whose pulse came with audio."""

    t: float
    xy: tuple[float, float]
    major: float
    minor: float
    angle: float
    pulses: dict[str, str] = field(default_factory=dict)
    audio: set[str] = field(default_factory=set)
    heard: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Each sensor's pulse of this round as (arrival epoch s, SNR dB): tells its echoes (:func:`_heard`)."""

    def hear(self, p: _P) -> bool:
        """Count ``p`` as its sensor's pulse of this round unless it has one; True when it was new."""
        sid = p.event.device
        if sid in self.pulses:
            return False
        self.pulses[sid] = str(p.event.event_id)
        self.heard[sid] = (p.t, float(p.event.snr_db))
        if p.event.audio_flac_b64:
            self.audio.add(sid)
        return True


@dataclass
class _Recent:
    """An incident announced lately, which later rounds may join."""

    rec: IncidentRecord
    rounds: list[_Round]
    audio: float | None = None
    levels: dict[str, tuple[float, float]] = field(default_factory=dict)
    xy: tuple[float, float] = (0.0, 0.0)
    """Where the incident was located (local metres): "nearest" is measured from here."""
    scored: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The sensors whose audio was classified: distance (m) and probability (NaN: unusable)."""
    joined: list[_P] = field(default_factory=list)
    """Pulses that joined since the last store (stragglers, same-bang fixes): audio and levels to add."""
    stored: set[str] = field(default_factory=set)
    """Event ids of the pulses stored in the incident's rounds: a round of only these is a replay."""


@dataclass
class IncidentOutcome:
    """What one processed group of fixes became (returned for tests and benchmarks)."""

    incident: GunshotIncident
    status: Status
    alert: Alert | None
    shots: list[ShotLocated]
    evidence: Evidence | None = None


class AcousticPipeline:
    """Pulses in, located shots, gunshot incidents and alerts out.

    Parameters
    ----------
    store, bus, metrics
        The center's store, bus and counters.
    origin : (lat, lon) or None
        Centre of the local metric frame, degrees (the simulated city's
        centre); None: the first sensor heard.
    temperature_c : float
        Air temperature for the speed of sound, °C.
    weather : WeatherFeed, optional
        A weather feed (:mod:`rtcc.acoustic.weather`, started and stopped with the pipeline): while
        it has a fresh observation, its temperature replaces ``temperature_c``.
    alert_above, review_above : float
        Confidence at or above which an alert goes out at once, and at or
        above which an incident waits for a reviewer.
    hearing_range_m : float
        Distance within which a registered sensor is expected to hear a
        gunshot, m (for closing a window early).
    settle_s, quiet_s, burst_gap_s, late_margin_s, early_quiet_s : float
        Window rules, seconds (see the module docstring).
    absorb_early_s, absorb_late_s : float
        A pulse this much before/after the arrival a located round predicts
        at its sensor belongs to that round, seconds.
    same_bang_s, same_bang_overlap : float
        A fix this close in time (s) and within ``group_distance_m`` of a recent round that shares
        at most this share of sensors with it (of the smaller set) is that round, heard by the other
        side of the array (7. of the module docstring; :meth:`_same_bang`).
    echo_drop_db : float
        A shared sensor's pulse in the later of two such fixes that follows its pulse in the other
        and is this much weaker (dB SNR) is an echo, not a sensor hearing both (:meth:`_one_bang`).
    lead_retry_s : float
        A standby processor tries to take the lead this often, seconds (module docstring).
    max_window_s : float
        A window open this long (s since its first pulse arrived) is processed even if pulses keep
        arriving: a sensor clicking faster than ``quiet_s`` would otherwise hold it open for good.
    holdover_s, max_held : float, int
        A pulse no fix used stays available to later pulses of its bang for
        this long after it was received, seconds; at most this many are held.
    group_distance_m, group_gap_s : float
        Fixes this close in space (m) and time (s) make one incident.
    automatic_interval_s, multiple_shooter_m : float
        Thresholds for probable automatic fire (s) and more than one shooter (m).
    min_sensors : int
        Fewest distinct sensors a cluster needs before it is located.
    position_tolerance_m : float
        A pulse reported further than this from its sensor's registered
        position is located at the registered one and flags the sensor, m.
    max_pulse_rate_hz, max_pulse_burst : float, int
        A sensor's flood rule: its token bucket's refill rate (pulses per second
        of the sensor's clock) and size (see the module docstring).
    flood_hold_s : float
        A flooding sensor's quarantine after its last pulse over the rate (its clock, s).
    no_audio_confidence : float
        Confidence when there is no classifier or no audio.
    levels_spl : bool
        The sensors' ``peak_db`` are calibrated dB SPL: fold the level against
        distance into the confidence.
    gun_source_db, quiet_source_db : float
        Gunfire's source level and the upper end of quiet impulses at 1 m, dB SPL
        (see :func:`rtcc.acoustic.evidence.level_llr`).
    members : int
        Concurrent handlers in the queue group (each waits for its pulse's window). Every pulse of
        an open window holds one, so this bounds a window: a 100-round burst heard by 20 sensors
        is 2,000 pulses (with 256, a long burst was cut into windows too thin to locate).
    locate, arrival, classifier
        The localizer (``locate_all``), its ``Arrival`` type and the
        classifier. None: :mod:`rtcc.acoustic.locate` and
        :mod:`rtcc.acoustic.classify` are loaded at :meth:`start`. Tests pass
        a classifier with a fixed answer through :meth:`use`.
    """

    group = "acoustic"

    def __init__(
        self,
        store: Store,
        bus: Bus,
        metrics: Metrics,
        *,
        origin: tuple[float, float] | None = None,
        temperature_c: float = 20.0,
        alert_above: float = 0.85,
        review_above: float = 0.35,
        hearing_range_m: float = 1000.0,
        settle_s: float = 1.5,
        quiet_s: float = 0.3,
        burst_gap_s: float = 1.0,
        late_margin_s: float = 0.3,
        group_distance_m: float = 50.0,
        group_gap_s: float = 10.0,
        automatic_interval_s: float = 0.2,
        multiple_shooter_m: float = 30.0,
        min_sensors: int = 3,
        position_tolerance_m: float = 50.0,
        max_pulse_rate_hz: float = 20.0,
        max_pulse_burst: int = 100,
        flood_hold_s: float = 10.0,
        no_audio_confidence: float = 0.5,
        levels_spl: bool = False,
        gun_source_db: float = 137.6,
        quiet_source_db: float = 120.0,
        members: int = 4096,
        tick_s: float = 0.01,
        early_quiet_s: float = 0.02,
        absorb_early_s: float = 0.01,
        absorb_late_s: float = 0.04,
        same_bang_s: float = 0.15,
        same_bang_overlap: float = 0.25,
        echo_drop_db: float = 6.0,
        holdover_s: float = 30.0,
        max_held: int = 5000,
        max_window_s: float = 20.0,
        lead_retry_s: float = 5.0,
        locate: Locate | None = None,
        arrival: Callable[..., Any] | None = None,
        classifier: Classifier | None = None,
        calibration_path: str = "",
        weather: WeatherFeed | None = None,
    ) -> None:
        if not 0.0 <= review_above <= alert_above <= 1.0:
            raise ValueError("need 0 <= review_above <= alert_above <= 1")
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.origin = origin
        self.temperature_c = temperature_c
        self.c = speed_of_sound(temperature_c)
        self.weather = weather
        self.temperature_source = "settings"
        self.alert_above = alert_above
        self.review_above = review_above
        self.hearing_range_m = hearing_range_m
        self.settle_s = settle_s
        self.quiet_s = quiet_s
        self.burst_gap_s = burst_gap_s
        self.late_margin_s = late_margin_s
        self.group_distance_m = group_distance_m
        self.group_gap_s = group_gap_s
        self.automatic_interval_s = automatic_interval_s
        self.multiple_shooter_m = multiple_shooter_m
        self.min_sensors = min_sensors
        self.position_tolerance_m = position_tolerance_m
        self.max_pulse_rate_hz = max_pulse_rate_hz
        self.max_pulse_burst = max_pulse_burst
        self.flood_hold_s = flood_hold_s
        self._buckets: dict[str, tuple[float, float]] = {}  # sensor -> (tokens, its clock, s)
        self._flooded: dict[str, float] = {}  # sensor -> its clock at its last pulse over the rate
        self._flood_warned: dict[str, float] = {}  # sensor -> loop time of the last flood warning
        self.no_audio_confidence = no_audio_confidence
        self.levels_spl = levels_spl
        self.gun_source_db = gun_source_db
        self.quiet_source_db = quiet_source_db
        self.members = members
        self.tick_s = tick_s
        self.early_quiet_s = early_quiet_s
        self.absorb_early_s = absorb_early_s
        self.absorb_late_s = absorb_late_s
        self.same_bang_s = same_bang_s
        self.same_bang_overlap = same_bang_overlap
        self.echo_drop_db = echo_drop_db
        self.holdover_s = holdover_s
        self.max_held = max_held
        self.max_window_s = max_window_s
        self._held: dict[int, _P] = {}  # id -> pulse no fix used yet, oldest hold first
        self._held_checked = -math.inf  # loop time of the last expiry pass
        self.locate = locate
        self.arrival = arrival
        self.classifier = classifier
        self.calibration_path = calibration_path
        self.calibration: Calibration | None = None
        """Per-sensor corrections (``calibration_path``, loaded at :meth:`start`; a bad file fails it)."""
        self.outcomes: list[IncidentOutcome] = []
        """The most recent outcomes (bounded), newest last."""
        self._proj: Projection | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._clusters: list[_Cluster] = []
        self._registry: dict[str, tuple[float, float, float]] = {}
        self._registry_at = -math.inf
        self._registry_alt: dict[str, float | None] = {}
        self._flagged: dict[str, bool] = {}  # sensor -> position_mismatch as last stored
        self._flag_written: dict[str, float] = {}  # sensor -> loop time of the last flag write
        self._loaded_from = -math.inf  # loop time at which the query of the last good registry load began
        self._reload: asyncio.Future[None] | None = None  # the registry load unknown sensors wait for
        self._rechecked: dict[str, float] = {}  # sensor -> loop time its far pulse last reloaded the registry
        self._warned: dict[str, float] = {}  # sensor -> loop time of the last rejection warning
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._recent: list[_Recent] = []
        self._absorbed: dict[int, _Recent] = {}  # id → incident a straggler joined, not stored yet
        self._done_arrivals: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.lead_retry_s = lead_retry_s
        self._lead_conn: Any = None  # PostgreSQL: the connection holding the lead lock
        self._lead_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self.calibration_path:
            from rtcc.acoustic.calibration import Calibration

            self.calibration = Calibration.load(self.calibration_path)
            log.info(
                "acoustic pipeline: %d sensor corrections from %s",
                len(self.calibration.sensors),
                self.calibration_path,
            )
        if self.locate is None or self.arrival is None:
            try:
                from rtcc.acoustic import locate as locate_mod
            except ImportError as exc:
                log.error("acoustic pipeline: the localizer is missing (%s); pulses are not located", exc)
            else:
                self.locate = self.locate or locate_mod.locate_all
                self.arrival = self.arrival or locate_mod.Arrival
        if self.classifier is None:
            self.classifier = await asyncio.to_thread(_load_classifier)
        if self.weather is not None:
            await self.weather.start()
        self._task = asyncio.get_running_loop().create_task(self._ticker(), name="acoustic")
        if await self._take_lead():
            await self._subscribe()
        else:
            log.warning(
                "acoustic pipeline: another acoustic processor leads; standing by (retry every %.0f s)",
                self.lead_retry_s,
            )
        if getattr(self.store, "is_postgres", False):
            self._lead_task = asyncio.get_running_loop().create_task(self._lead_loop(), name="acoustic-lead")

    async def _subscribe(self) -> None:
        for _ in range(self.members):
            self._subs.append(await self.bus.subscribe("rtcc.events.pulse", self._handle, group=self.group))
        # every processor, not one of the group: each keeps its own registry cache
        self._subs.append(await self.bus.subscribe(subject_for("device_position"), self._on_position))

    @property
    def leading(self) -> bool:
        """Whether this processor takes pulses (it has the lead; see the module docstring)."""
        return bool(self._subs)

    async def _take_lead(self) -> bool:
        """Take the lead (PostgreSQL: the advisory lock on a connection of its own); True when taken."""
        if not getattr(self.store, "is_postgres", False):  # SQLite (one process), or no store (tests)
            return True

        def _try() -> Any:
            conn = self.store.engine.connect()
            try:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEAD_LOCK}).scalar())
                conn.commit()  # a session lock outlives the transaction
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return None
            return conn

        try:
            self._lead_conn = await asyncio.to_thread(_try)
        except Exception as exc:  # the store is unreachable: try again later, as a standby
            log.warning(
                "acoustic pipeline: cannot take the lead (%s)",
                f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
            )
            return False
        return self._lead_conn is not None

    async def _lead_loop(self) -> None:
        """Stand by until the lead is taken; then check every ``lead_retry_s`` that it is still held.

        The lock lives with its connection: when that breaks (the database restarted, the network
        dropped) another processor may take the lead, so this one stops taking pulses and stands by.
        """
        while True:
            await asyncio.sleep(self.lead_retry_s)
            if not self.leading:
                if await self._take_lead():
                    log.info("acoustic pipeline: took the lead; taking pulses")
                    await self._subscribe()
                continue
            conn = self._lead_conn
            if conn is None or await asyncio.to_thread(_alive, conn):
                continue
            log.warning("acoustic pipeline: lost the lead (its database connection broke); standing by")
            for sub in self._subs:
                await sub.stop()
            self._subs.clear()
            self._lead_conn = None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(conn.close)

    async def stop(self) -> None:
        if self._lead_task is not None:
            self._lead_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lead_task
            self._lead_task = None
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        if self.weather is not None:
            await self.weather.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._store_absorbed()
        for cl in self._clusters:
            for p in cl.pulses:
                if not p.done.done():
                    p.done.cancel()
        self._clusters.clear()
        self._held.clear()
        if self._lead_conn is not None:  # hand the lead over (a standby takes it)
            conn, self._lead_conn = self._lead_conn, None
            await asyncio.to_thread(conn.close)

    def use(
        self,
        *,
        locate: Locate | None = None,
        arrival: Callable[..., Any] | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        """Swap in a localizer, arrival type or classifier (tests and benchmarks)."""
        if locate is not None:
            self.locate = locate
        if arrival is not None:
            self.arrival = arrival
        if classifier is not None:
            self.classifier = classifier

    # -- pulses in ----------------------------------------------------------------------

    def _frame(self, pulse: Pulse) -> Projection:
        if self._proj is None:
            lat, lon = self.origin if self.origin is not None else (pulse.pos.lat, pulse.pos.lon)
            self._proj = Projection(lat, lon)
        return self._proj

    async def _handle(self, subject: str, payload: bytes) -> None:
        try:
            ev = parse_event(payload)
        except ValidationError:
            self.metrics.inc("acoustic_malformed")
            return
        if not isinstance(ev, Pulse):
            return
        key = str(ev.event_id)
        if key in self._seen:
            self.metrics.inc("acoustic_duplicate_pulses")
            return
        self._seen[key] = None
        if len(self._seen) > 200_000:
            self._seen.popitem(last=False)
        if self.locate is None or self.arrival is None:
            self.metrics.inc("acoustic_unlocated", reason="no_localizer")
            return
        arrival_key = (ev.device, round(ev.occurred_at.timestamp() * 1000.0))
        if arrival_key in self._done_arrivals:
            # the same sensor's onset at the same millisecond under a new event id: a resend
            self.metrics.inc("acoustic_duplicate_pulses")
            return
        loop = asyncio.get_running_loop()
        if not self._admit(ev.device, ev.occurred_at.timestamp()) or self._quarantined(
            ev.device, ev.occurred_at.timestamp()
        ):
            self.metrics.inc("acoustic_pulse_rejected", reason="flood")
            if loop.time() - self._flood_warned.get(ev.device, -math.inf) >= 60.0:
                self._flood_warned[ev.device] = loop.time()
                log.warning(
                    "sensor %s sends pulses faster than %.0f a second (bursts of %d): they are stored "
                    "but not located; further ones are counted in acoustic_pulse_rejected{reason=flood}",
                    ev.device,
                    self.max_pulse_rate_hz,
                    self.max_pulse_burst,
                )
            return
        try:
            xyz = await self._position(ev)
        except Exception:
            self._seen.pop(key, None)  # the store failed: let the redelivery through
            raise
        if xyz is None:
            return
        t = ev.occurred_at.timestamp()
        p = _P(ev, t, xyz, loop.time(), loop.create_future(), max(0.0, time.time() - t))
        if self._absorb(p):
            return  # its incident is written by the next window poll (:meth:`poll`), off this path
        self._add(p)
        self.metrics.inc("acoustic_pulses")
        try:
            await p.done
        except Exception:
            self._seen.pop(key, None)  # let the redelivery through
            raise

    def _admit(self, sid: str, t: float) -> bool:
        """Take a token from ``sid``'s bucket for a pulse at ``t`` (its clock, s); False when empty.

        The bucket refills at ``max_pulse_rate_hz`` as the sensor's clock advances; a pulse
        older than the newest one seen (out of order) refills nothing.
        """
        tokens, clock = self._buckets.get(sid, (float(self.max_pulse_burst), t))
        if t > clock:
            tokens = min(float(self.max_pulse_burst), tokens + (t - clock) * self.max_pulse_rate_hz)
            clock = t
        if tokens < 1.0:
            self._buckets[sid] = (tokens, clock)
            self._flooded[sid] = max(t, self._flooded.get(sid, t))
            return False
        self._buckets[sid] = (tokens - 1.0, clock)
        return True

    def _quarantined(self, sid: str, t: float) -> bool:
        """Whether ``sid`` flooded less than ``flood_hold_s`` before ``t`` (its clock)."""
        last = self._flooded.get(sid)
        if last is None:
            return False
        if t - last >= self.flood_hold_s:
            del self._flooded[sid]
            return False
        return t - last > -self.flood_hold_s  # a much older pulse (a backlog) is judged by the bucket

    async def _position(self, ev: Pulse) -> tuple[float, float, float] | None:
        """The sensor's position in the local frame, checked against its registered one.

        Within ``position_tolerance_m`` of the registered position: the reported
        one. Further: the registered one (with its registered height, else the
        reported), counted and flagged, once a registry load begun after the
        pulse arrived confirms the offset (a sensor re-surveyed a moment ago is
        judged by its new position). No registered position: None (the pulse
        is rejected and counted).
        """
        loop = asyncio.get_running_loop()
        sid = ev.device
        if sid not in self._registry:
            await self._registry_since(loop.time())  # registered since the last load?
        reg = self._registry.get(sid)
        if reg is None:
            self.metrics.inc("acoustic_pulse_rejected", reason="unregistered_sensor")
            if loop.time() - self._warned.get(sid, -math.inf) >= 60.0:
                self._warned[sid] = loop.time()
                log.warning(
                    "pulse %s of sensor %s rejected: the sensor has no registered position "
                    "(register its surveyed position through the device API); further ones are "
                    "counted in acoustic_pulse_rejected",
                    ev.event_id,
                    sid,
                )
            return None
        x, y, _ = self._frame(ev).to_xyz(ev.pos.lat, ev.pos.lon)
        off = math.dist((x, y), reg[:2])
        if off > self.position_tolerance_m and await self._recheck(sid):
            reg = self._registry.get(sid, reg)
            off = math.dist((x, y), reg[:2])
        if off <= self.position_tolerance_m:
            if self._flagged.get(sid):
                await self._flag(sid, off, ev.occurred_at, mismatch=False)
            return x, y, ev.pos.alt_m if ev.pos.alt_m is not None else 0.0
        self.metrics.inc("acoustic_pulse_position_mismatch", sensor=sid)
        alt = self._registry_alt.get(sid)
        if alt is None:
            alt = ev.pos.alt_m if ev.pos.alt_m is not None else 0.0
        if not self._flagged.get(sid) or loop.time() - self._flag_written.get(sid, -math.inf) >= 60.0:
            log.warning(
                "sensor %s reports a position %.0f m from its registered one (tolerance %.0f m): "
                "its pulses are located at the registered position",
                sid,
                off,
                self.position_tolerance_m,
            )
            await self._flag(sid, off, ev.occurred_at, mismatch=True)
        return reg[0], reg[1], alt

    async def _recheck(self, sid: str) -> bool:
        """Reload the registry for a pulse of ``sid`` far from its cached position; True when reloaded.

        The sensor may have been re-surveyed (``PUT /devices/{id}/position``) since the last load
        (the cache is reloaded every 30 s): its pulse must be judged by the new position, not
        flagged and moved back to the old one. The pulse does not wait for a rate limit (a wait
        would make it miss its shot's window): instead each sensor triggers at most one load per
        :data:`RECHECK_S` (a sensor that really moved cannot hammer the store), and a load already
        under way is shared. A failing load is logged; the pulse is judged by the cached position.
        A re-survey's ``device_position`` event clears the sensor's throttle (:meth:`_on_position`).
        """
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        if arrived - self._rechecked.get(sid, -math.inf) < RECHECK_S:
            return False
        self._rechecked[sid] = arrived
        try:
            for _ in range(2):  # a load begun before the pulse arrived may predate the re-survey
                pending = self._reload
                if pending is None or pending.done():
                    pending = self._reload = asyncio.ensure_future(self._load_registry())
                await asyncio.shield(pending)
                if self._loaded_from >= arrived:
                    break
        except Exception:
            log.warning("acoustic pipeline: reloading the sensor registry failed", exc_info=True)
            return False
        return True

    async def _on_position(self, subject: str, payload: bytes) -> None:
        """A sensor's registered position was set (``PUT /devices/{id}/position``): reload the registry.

        Without this, a sensor re-surveyed within :data:`RECHECK_S` of its own last mismatched pulse
        was judged by the cached old position (flagged again, located at the old place) until its
        first pulse after those seconds, and a pulse near the old position until the next 30 s
        reload. Its throttle is cleared first, so a pulse arriving during the load waits for a load
        of its own (:meth:`_recheck`). The pipeline's own flag events (``source`` acoustic) change
        no position. A failing load is logged: the next far pulse reloads (its throttle is clear).
        """
        try:
            ev = parse_event(payload)
        except ValidationError:
            return
        if not isinstance(ev, DevicePosition) or ev.source == "acoustic":
            return
        if ev.device_type != DeviceType.acoustic_sensor:
            return
        self._rechecked.pop(ev.device, None)
        try:
            await self._registry_since(asyncio.get_running_loop().time())
        except Exception:
            log.warning(
                "acoustic pipeline: reloading the sensor registry after %s was re-surveyed failed",
                ev.device,
                exc_info=True,
            )

    async def _flag(self, sid: str, off_m: float, at: datetime, *, mismatch: bool) -> None:
        """Store the sensor's position-mismatch flag and distance in its ``attributes`` (best effort).

        A change of the flag (set, or cleared by a pulse from where the sensor is registered) is
        also published as a :class:`~rtcc.events.DevicePosition` event, so dashboards mark or unmark
        the sensor live.
        """
        changed = self._flagged.get(sid, False) != mismatch
        self._flagged[sid] = mismatch
        self._flag_written[sid] = asyncio.get_running_loop().time()
        flag = {
            "position_mismatch": mismatch,
            "position_mismatch_m": round(off_m, 1),
            "position_mismatch_at": at.isoformat(),
        }

        def _do(s: Any) -> None:
            dev = s.get(Device, sid, with_for_update=True)
            if dev is not None:
                dev.attributes = {**(dev.attributes or {}), **flag}

        try:
            await self.store.write(_do)
        except Exception:
            log.exception("acoustic pipeline: storing the position flag of sensor %s failed", sid)
            return
        if not changed:
            return
        reg = self._registry.get(sid)
        pos = None
        if reg is not None and self._proj is not None:
            lat, lon = self._proj.to_latlon(reg[0], reg[1])
            pos = Position(lat=lat, lon=lon, alt_m=self._registry_alt.get(sid))
        ev = DevicePosition(
            source="acoustic",
            device=sid,
            device_type=DeviceType.acoustic_sensor,
            pos=pos,
            mismatch=mismatch,
            offset_m=round(off_m, 1),
            reason=(
                f"pulses report a position {off_m:.0f} m from the registered one"
                if mismatch
                else "pulses report the registered position again"
            ),
            occurred_at=at,
        )
        try:
            await self.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
        except Exception:
            log.exception("acoustic pipeline: publishing the position flag of sensor %s failed", sid)

    def _absorb(self, p: _P) -> bool:
        """Whether ``p`` is a straggler of a round already located (arrives as its fix predicts).

        A sensor beyond the hearing range, a slow delivery, or an echo arriving
        just after the window closed: it is counted, not located again (which
        would make a ghost incident).
        """
        for recent in self._recent:
            for r in recent.rounds:
                lag = p.t - (r.t + math.dist(p.xyz[:2], r.xy) / self.c)
                if -self.absorb_early_s <= lag <= self.absorb_late_s:
                    if r.hear(p):  # the sensor's pulse of this round: its audio can be played
                        rec = recent.rec
                        if p.event.device not in rec.pulses:
                            recent.joined.append(p)
                        rec.pulses.setdefault(p.event.device, str(p.event.event_id))
                        rec.sensors = sorted(rec.pulses)
                        rec.round_pulses, rec.round_audio = round_slots(recent.rounds)
                        self._absorbed[id(recent)] = recent
                    self.metrics.inc("acoustic_late_pulses")
                    self._done_arrivals[(p.event.device, round(p.t * 1000.0))] = None
                    return True
        return False

    async def _store_absorbed(self) -> None:
        """Store the incidents whose rounds stragglers (:meth:`_absorb`) joined (their pulse per round).

        Best effort: an incident whose write fails stays marked and is written with the next change.
        """
        while self._absorbed:
            key, recent = self._absorbed.popitem()  # a straggler joining during the write marks it again
            rec = recent.rec
            joined, recent.joined = recent.joined, []
            changed = await self._rescore(recent, joined)
            try:
                stored = await self.store.write(functools.partial(update_rounds, rec=rec))
            except Exception:
                recent.joined[:0] = joined
                self._absorbed.setdefault(key, recent)
                log.exception("acoustic pipeline: storing the late pulses of incident %s failed", rec.id)
                return
            if not changed:
                continue
            if stored is not None:  # a reviewer may have decided meanwhile
                rec.status, rec.label, rec.confidence = stored.status, stored.label, stored.confidence
            ev = self._evidence(recent.audio, recent.rounds, recent.levels)
            alert = None if rec.status in DECIDED else await self._upgrade(rec, ev.confidence)
            log.info(
                "gunshot incident %s: re-scored with later sensors, %s, %s", rec.id, ev.describe(), rec.status
            )
            if alert is None:
                continue
            incident = incident_event(rec, uuid.uuid5(NAMESPACE, f"rescored:{rec.id}:{rec.status}"))
            await self.bus.publish(incident.subject, incident.to_json(), msg_id=str(incident.event_id))
            await self.bus.publish(alert.subject, alert.to_json(), msg_id=str(alert.event_id))

    async def _rescore(self, recent: _Recent, joined: Sequence[_P]) -> bool:
        """Add the levels of ``joined`` sensors, and their audio if they are among the incident's three
        nearest with audio; whether the audio term changed.

        An incident is formed from the pulses that had arrived when its window closed; under load the
        sensors nearest the shot, whose audio is the clearest, can be among the last to report (the
        demo: 12 of 32 sensors, the audio of three far ones, 0.898 where the nearest give 0.9995).
        Only sensors that would be among the three nearest are classified (none further away is).
        """
        for sid, lv in self._levels({p.event.device: p for p in joined}, recent.xy).items():
            recent.levels.setdefault(sid, lv)
        fresh = [p for p in joined if p.event.audio_flac_b64 and p.event.device not in recent.scored]
        if not fresh or self.classifier is None:
            return False
        before = recent.audio
        recent.scored.update(await self._score(fresh, recent.xy, recent.scored))
        recent.audio = _nearest_audio(recent.scored)
        return recent.audio != before

    def _pair(self, q: _P, p: _P) -> bool:
        """Whether two pulses could be one bang (or rounds of one burst): 1. of the module docstring."""
        d = math.dist(q.xyz[:2], p.xyz[:2])
        return d <= 2 * self.hearing_range_m and abs(q.t - p.t) <= d / self.c + self.burst_gap_s

    def _links(self, cl: _Cluster, p: _P) -> bool:
        return any(self._pair(q, p) for q in cl.pulses)

    def _other(self, q: _P, p: _P) -> bool:
        """:meth:`_pair` through a pulse of another sensor: how a held-over pulse is taken back. A
        sensor's own new pulses never take its held ones back, so a sensor that keeps clicking (a
        fan, a jackhammer) does not carry its old pulses along window after window."""
        return q.event.device != p.event.device and self._pair(q, p)

    def _add(self, p: _P) -> None:
        linked = [cl for cl in self._clusters if self._links(cl, p)]
        if not linked:
            cl = _Cluster()
            self._clusters.append(cl)
        else:
            cl = linked[0]
            for other in linked[1:]:
                for q in other.pulses:
                    cl.add(q)
                self._clusters.remove(other)
        cl.add(p)
        self._pull_held(cl, [p])

    def _pull_held(self, cl: _Cluster, new: list[_P]) -> None:
        """Take the held-over pulses that link to ``new`` (and, in turn, to those) into ``cl``.

        Only pulses within one link span of ``new`` are taken, however they chain: held pulses of
        earlier bangs (echoes, far sensors) would otherwise chain window after window back to the
        holdover's end and be located again with every new shot."""
        if not new:
            return
        span = 2 * self.hearing_range_m / self.c + self.burst_gap_s  # no link beyond this in time
        lo, hi = min(p.t for p in new) - span, max(p.t for p in new) + span
        while new and self._held:
            got = [q for q in self._held.values() if lo <= q.t <= hi and any(self._other(q, p) for p in new)]
            self._take(cl, got)
            new = got

    def _take(self, cl: _Cluster, pulses: list[_P]) -> None:
        """Move held-over ``pulses`` into ``cl``."""
        for q in pulses:
            del self._held[id(q)]
            q.unused = ""
            cl.add(q)

    def _hold(self, pulses: list[_P], reason: str) -> None:
        """Keep pulses no fix used for later pulses of their bang (8. of the module docstring); those
        received more than ``holdover_s`` ago are given up instead."""
        now = asyncio.get_running_loop().time()
        for p in pulses:
            p.unused = reason
            self._held.pop(id(p), None)
            self._held[id(p)] = p
            if now - p.received > self.holdover_s:
                self._give_up(p)
        while len(self._held) > self.max_held:
            self._give_up(next(iter(self._held.values())))
        # an open cluster they link to (pulses that arrived while this window was processed)
        for cl in self._clusters:
            got = [q for q in pulses if id(q) in self._held and any(self._other(q, r) for r in cl.pulses)]
            self._take(cl, got)
            self._pull_held(cl, got)

    def _give_up(self, p: _P) -> None:
        del self._held[id(p)]
        self.metrics.inc("acoustic_unlocated", reason=p.unused or "unassociated")

    def _expire_held(self, now: float) -> None:
        """Give up the held pulses received more than ``holdover_s`` ago (at most once a second)."""
        if now - self._held_checked < 1.0:
            return
        self._held_checked = now
        for p in [q for q in self._held.values() if now - q.received > self.holdover_s]:
            self._give_up(p)

    # -- windows ------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.poll()
            except Exception:
                log.exception("acoustic pipeline: processing a window failed")

    async def poll(self, now: float | None = None) -> list[IncidentOutcome]:
        """Process every cluster whose window has closed; returns what came of them."""
        loop = asyncio.get_running_loop()
        if self.weather is not None:
            temp, self.temperature_source = self.weather.current()
            if temp != self.temperature_c:
                self.temperature_c, self.c = temp, speed_of_sound(temp)
        if loop.time() - self._registry_at > 30.0:
            self._registry_at = loop.time()
            with contextlib.suppress(Exception):
                await self._load_registry()
        out: list[IncidentOutcome] = []
        self._expire_held(loop.time())
        await self._store_absorbed()
        for cl in list(self._clusters):
            wall = time.time() if now is None else now
            if await self._closed(cl, wall, loop.time()):
                self._clusters.remove(cl)
                try:
                    out.extend(await self._process(cl))
                except Exception as exc:
                    for p in cl.pulses:
                        if not p.done.done():
                            p.done.set_exception(exc)
                    raise
                for p in cl.pulses:
                    self._done_arrivals[(p.event.device, round(p.t * 1000.0))] = None
                    if not p.done.done():
                        p.done.set_result(None)
                while len(self._done_arrivals) > 100_000:
                    self._done_arrivals.popitem(last=False)
        return out

    async def _closed(self, cl: _Cluster, wall: float, mono: float) -> bool:
        quiet = mono - cl.last_received >= self.quiet_s
        if wall - cl.last_t >= self.settle_s and quiet:
            return True
        if mono - cl.first_received >= self.max_window_s:
            return True  # never quiet (a sensor that keeps clicking): locate what is there
        if len(cl.sensors) < max(self.min_sensors, 3) or not self._registry:
            return False
        if mono - cl.last_received < self.early_quiet_s:
            return False
        if cl.prelim_version != cl.version:
            version = cl.version
            cl.prelim = await asyncio.to_thread(self._locate, list(cl.pulses))
            cl.prelim_version = version
        if not cl.prelim:
            return False
        heard = cl.sensors
        base = min(p.t for p in cl.pulses)
        # the sensors' delivery delay as seen in this cluster (the freshest pulse's): a missing
        # sensor's pulse is due that long after its predicted arrival, plus the late margin
        delivery = min(p.delivery_s for p in cl.pulses)
        for fix in cl.prelim:
            t0 = base + float(fix.t0_s)
            for sid, xyz in self._registry.items():
                if sid in heard:
                    continue
                d = math.dist(xyz[:2], (float(fix.x_m), float(fix.y_m)))
                if d <= self.hearing_range_m and wall < t0 + d / self.c + delivery + self.late_margin_s:
                    return False
        return True

    async def _registry_since(self, since: float) -> None:
        """Wait for a registry load whose query began at or after ``since`` (loop time).

        A pulse of a sensor the registry does not hold is rejected only when a load begun after the
        pulse arrived still does not hold it, so pulses of a sensor registered a moment ago are never
        lost to a stale cache. Concurrent waiters share one load, and such loads run at most once a
        second (a flood from an unregistered sensor cannot hammer the store). A failing load raises:
        the pulse is redelivered.
        """
        loop = asyncio.get_running_loop()
        while self._loaded_from < since:
            pending = self._reload
            if pending is None or pending.done():
                gap = self._loaded_from + 1.0 - loop.time()
                if gap > 0:
                    await asyncio.sleep(gap)
                    continue  # another waiter may have loaded meanwhile
                pending = self._reload = asyncio.ensure_future(self._load_registry())
            await asyncio.shield(pending)

    async def _load_registry(self) -> None:
        """The registered acoustic sensors with a position (the reference positions)."""
        began = asyncio.get_running_loop().time()

        def _q(s: Any) -> list[tuple[Any, ...]]:
            rows = s.execute(
                select(Device.id, Device.lat, Device.lon, Device.alt_m, Device.attributes).where(
                    Device.type == DeviceType.acoustic_sensor.value, Device.revoked_at.is_(None)
                )
            ).all()
            return [tuple(r) for r in rows]

        rows = await self.store.read(_q)
        reg: dict[str, tuple[float, float, float]] = {}
        alts: dict[str, float | None] = {}
        for sid, lat, lon, alt, attrs in rows:
            attrs = attrs if isinstance(attrs, dict) else {}
            self._flagged[sid] = attrs.get("position_mismatch") is True  # as stored (operators clear it)
            if lat is None or lon is None:
                continue
            if self._proj is None:
                self._proj = Projection(*(self.origin or (lat, lon)))
            x, y, _ = self._proj.to_xyz(lat, lon)
            if alt is None and isinstance(attrs.get("alt_m"), int | float):
                alt = float(attrs["alt_m"])  # the height given at provisioning
            reg[sid] = (x, y, alt or 0.0)
            alts[sid] = alt
        self._registry = reg
        self._registry_alt = alts
        self._loaded_from = max(self._loaded_from, began)

    async def refresh_registry(self) -> None:
        """Reload the registered sensors now (e.g. after provisioning many)."""
        self._registry_at = asyncio.get_running_loop().time()
        await self._load_registry()

    # -- locate, group, classify, publish --------------------------------------------------

    def _locate(self, pulses: list[_P]) -> list[Any]:
        """Fixes from a snapshot of a cluster's pulses (runs in a worker thread)."""
        assert self.locate is not None and self.arrival is not None
        if len({p.event.device for p in pulses}) < self.min_sensors:
            return []
        base = min(p.t for p in pulses)
        cal = self.calibration  # per-sensor corrections from test fires, if configured
        arrivals = []
        for p in sorted(pulses, key=lambda q: q.t):
            t, xyz = (p.t - base, p.xyz) if cal is None else cal.correct(p.event.device, p.t - base, p.xyz)
            ref = str(p.event.event_id)
            arrivals.append(self.arrival(p.event.device, *xyz, t, snr_db=p.event.snr_db, ref=ref))
        return list(self.locate(arrivals, temperature_c=self.temperature_c))

    async def _process(self, cl: _Cluster) -> list[IncidentOutcome]:
        late = [p for p in cl.pulses if self._absorb(p)]
        if late:
            cl.pulses = [p for p in cl.pulses if p not in late]
            cl.version += 1
            for p in late:
                if not p.done.done():
                    p.done.set_result(None)
            await self._store_absorbed()
        if len(cl.sensors) < self.min_sensors:
            self._hold(cl.pulses, "too_few_sensors")
            return []
        fixes = (
            cl.prelim
            if cl.prelim_version == cl.version
            else await asyncio.to_thread(self._locate, list(cl.pulses))
        )
        if not fixes:
            self._hold(cl.pulses, "no_fix")
            return []
        base = min(p.t for p in cl.pulses)
        by_ref = {str(p.event.event_id): p for p in cl.pulses}
        taken: set[int] = set()
        kept: list[tuple[Any, list[_P]]] = []
        found = [(fix, _fix_pulses(fix, cl.pulses, by_ref, base)) for fix in fixes]
        # the best-heard fix first: a fix of the same bang from the array's other side joins it
        found.sort(key=lambda f: (-len({p.event.device for p in f[1]}), float(f[0].t0_s)))
        for fix, used in found:
            taken.update(id(p) for p in used)
            if self._same_bang(fix, used, base) or self._same_bang_here(fix, used, base, kept):
                continue
            kept.append((fix, used))
        shots: list[tuple[Any, ShotLocated, list[_P]]] = []
        for fix, used in sorted(kept, key=lambda f: float(f[0].t0_s)):
            shots.append((fix, self._shot(fix, used, base), used))
        await self._store_absorbed()
        self._hold([p for p in cl.pulses if id(p) not in taken], "unassociated")
        if not shots:
            return []
        out = []
        for group in self._group(shots, base):
            out.append(await self._incident(group, base))  # publishes the group's shots, unless replayed
        self.outcomes.extend(out)
        del self.outcomes[:-100]
        return out

    def _same_bang(self, fix: Any, used: list[_P], base: float) -> bool:
        """Whether ``fix`` is a round already located, heard by *other* sensors; if so, count it there.

        When a window closes before the far side of the array has reported (a slow delivery), the
        round is located from one side only. Such a fix can be tens of milliseconds off in time
        (one-sided geometry trades range for time), so the other side's pulses, arriving later, miss
        the straggler window (:meth:`_absorb`) and are located again: one bang, two rounds. A fix
        within ``group_distance_m`` and ``same_bang_s`` of a recent round that shares almost no
        sensor with it (at most ``same_bang_overlap`` of the smaller set: an echo of a near sensor
        can fit the far side's fix) is that bang. The rounds of a burst are heard by the same
        sensors, so they never pass. Its pulses join the round (playable, counted; a sensor the
        round has keeps its pulse) and no shot is published.
        """
        xy = (float(fix.x_m), float(fix.y_m))
        t = base + float(fix.t0_s)
        sensors = _heard(used)
        for recent in self._recent:
            for r in recent.rounds:
                if not self._one_bang(t, xy, sensors, r.t, r.xy, r.heard):
                    continue
                rec = recent.rec
                for p in used:
                    r.hear(p)
                    if p.event.device not in rec.pulses:
                        recent.joined.append(p)
                    rec.pulses.setdefault(p.event.device, str(p.event.event_id))
                    self._done_arrivals[(p.event.device, round(p.t * 1000.0))] = None
                rec.sensors = sorted(rec.pulses)
                rec.round_pulses, rec.round_audio = round_slots(recent.rounds)
                self._absorbed[id(recent)] = recent
                self.metrics.inc("acoustic_same_bang_fixes")
                log.info(
                    "acoustic pipeline: a fix %.0f ms and %.0f m from a round of incident %s, from "
                    "%d other sensors, is that round",
                    1000.0 * (t - r.t),
                    math.dist(xy, r.xy),
                    rec.id,
                    len(sensors),
                )
                return True
        return False

    def _same_bang_here(
        self, fix: Any, used: list[_P], base: float, kept: list[tuple[Any, list[_P]]]
    ) -> bool:
        """:meth:`_same_bang` within one window: whether ``fix`` is a bang of ``kept`` heard by others.

        The localizer can return one bang twice when the far side's arrivals miss the near side's
        fit (air warmer than assumed, wind: the error grows with the path): a fix from the near
        sensors and one from the far sensors, tens of milliseconds apart at the same place. The
        burst's delay pattern can make the second pass the fast-fire rule, so a burst gains a
        round. Fixes come best-heard first; the pulses of one that is a kept fix's bang join
        that fix's round (a sensor it has keeps its pulse).
        """
        xy = (float(fix.x_m), float(fix.y_m))
        t = base + float(fix.t0_s)
        sensors = _heard(used)
        for other, its in kept:
            mine = _heard(its)
            where = (float(other.x_m), float(other.y_m))
            if not self._one_bang(t, xy, sensors, base + float(other.t0_s), where, mine):
                continue
            its.extend(p for p in used if p.event.device not in mine)
            self.metrics.inc("acoustic_same_bang_fixes")
            log.info(
                "acoustic pipeline: a fix %.0f ms and %.0f m from another of the same window, from "
                "%d other sensors, is that bang",
                1000.0 * (t - base - float(other.t0_s)),
                math.dist(xy, where),
                len(sensors),
            )
            return True
        return False

    def _one_bang(
        self,
        t: float,
        xy: tuple[float, float],
        sensors: dict[str, tuple[float, float]],
        other_t: float,
        other_xy: tuple[float, float],
        other_sensors: dict[str, tuple[float, float]],
    ) -> bool:
        """The same-bang rule: close in time and place, heard by (almost) disjoint sensors.

        ``sensors``, ``other_sensors``: each sensor's pulse of the fix as (arrival, SNR dB). A shared
        sensor whose pulse in the later fix follows its pulse in the other within a second and is
        ``echo_drop_db`` weaker is that bang's echo, not a sensor hearing both (direct sound comes
        first and loudest; the echo rule of :mod:`rtcc.acoustic.locate`, session 9): the far side's
        late fix picks up near sensors' echoes, which fit it as well as its own pulses do. Two
        rounds of a gun are heard by the same sensors at about the same level, so they stay shared.
        """
        if abs(t - other_t) > self.same_bang_s or math.dist(xy, other_xy) > self.group_distance_m:
            return False
        later, first = (sensors, other_sensors) if t >= other_t else (other_sensors, sensors)
        both = sensors.keys() & other_sensors.keys()
        shared = sum(1 for sid in both if not self._echo(later[sid], first[sid]))
        return shared <= self.same_bang_overlap * min(len(sensors), len(other_sensors))

    def _echo(self, late: tuple[float, float], early: tuple[float, float]) -> bool:
        """Whether a sensor's pulse ``late`` (arrival, SNR dB) is an echo of its pulse ``early``."""
        return 0.0 < late[0] - early[0] <= 1.0 and late[1] <= early[1] - self.echo_drop_db

    def _shot(self, fix: Any, used: list[_P], base: float) -> ShotLocated:
        assert self._proj is not None
        lat, lon = self._proj.to_latlon(float(fix.x_m), float(fix.y_m))
        ids = sorted(str(p.event.event_id) for p in used)
        return ShotLocated(
            event_id=uuid.uuid5(NAMESPACE, "shot:" + ",".join(ids)),
            source="acoustic",
            occurred_at=datetime.fromtimestamp(base + float(fix.t0_s), UTC),
            pos=Position(lat=lat, lon=lon),
            ellipse_major_m=max(0.0, float(fix.ellipse_major_m)),
            ellipse_minor_m=max(0.0, float(fix.ellipse_minor_m)),
            ellipse_angle_deg=float(fix.ellipse_angle_deg) % 360.0,
            sensors=sorted({str(s) for s in fix.sensors}),
            pulse_ids=[uuid.UUID(i) for i in ids],
            quality=_quality(getattr(fix, "quality", "good")),
        )

    def _group(
        self, shots: list[tuple[Any, ShotLocated, list[_P]]], base: float
    ) -> list[list[tuple[Any, ShotLocated, list[_P]]]]:
        groups: list[list[tuple[Any, ShotLocated, list[_P]]]] = []
        for item in shots:
            fix = item[0]
            for g in groups:
                near = any(
                    math.dist((float(f.x_m), float(f.y_m)), (float(fix.x_m), float(fix.y_m)))
                    <= self.group_distance_m
                    for f, _, _ in g
                )
                if near and float(fix.t0_s) - float(g[-1][0].t0_s) <= self.group_gap_s:
                    g.append(item)
                    break
            else:
                groups.append([item])
        return groups

    def _summary(self, rounds: list[_Round]) -> dict[str, Any]:
        """Rounds, intervals, automatic fire, several shooters, position and ellipse of a group."""
        times = [r.t for r in rounds]
        intervals = [round(b - a, 4) for a, b in itertools.pairwise(times)]
        automatic = len(rounds) >= 3 and all(i < self.automatic_interval_s for i in intervals)
        multiple = any(
            math.dist(a.xy, b.xy) > max(self.multiple_shooter_m, a.major + b.major)
            for i, a in enumerate(rounds)
            for b in rounds[i + 1 :]
        )
        if multiple:
            x, y = rounds[0].xy
            best = rounds[0]
        else:
            w = [1.0 / max(1e-3, r.major * r.minor) for r in rounds]
            x = sum(wi * r.xy[0] for wi, r in zip(w, rounds, strict=True)) / sum(w)
            y = sum(wi * r.xy[1] for wi, r in zip(w, rounds, strict=True)) / sum(w)
            best = min(rounds, key=lambda r: r.major)
        return {
            "rounds": len(rounds),
            "intervals_s": intervals,
            "automatic": automatic,
            "multiple_shooters": multiple,
            "xy": (x, y),
            "best": best,
        }

    def _recent_match(self, rounds: list[_Round]) -> _Recent | None:
        horizon = rounds[0].t - self.group_gap_s
        self._recent = [r for r in self._recent if r.rounds[-1].t >= horizon - 60.0]
        for rec in reversed(self._recent):
            if rounds[0].t - rec.rounds[-1].t > self.group_gap_s or rounds[0].t < rec.rounds[0].t - 1e-3:
                continue
            if any(math.dist(a.xy, b.xy) <= self.group_distance_m for a in rec.rounds for b in rounds):
                return rec
        return None

    async def _incident(self, group: list[tuple[Any, ShotLocated, list[_P]]], base: float) -> IncidentOutcome:
        assert self._proj is not None
        rounds = [_round_of(f, used, base) for f, _, used in group]
        pulses: dict[str, _P] = {}
        for _, _, used in group:
            for p in used:
                pulses.setdefault(p.event.device, p)  # the first round's pulse per sensor
        earlier = self._recent_match(rounds)
        if earlier is not None:
            return await self._more_rounds(earlier, rounds, pulses, [s for _, s, _ in group])
        sm = self._summary(rounds)
        x, y = sm["xy"]
        best: _Round = sm["best"]
        lat, lon = self._proj.to_latlon(x, y)
        all_ids = sorted(str(p.event.event_id) for _, _, used in group for p in used)
        incident_id = uuid.uuid5(NAMESPACE, "incident:" + ",".join(all_ids))
        scored = await self._score(list(pulses.values()), (x, y), {})
        audio = _nearest_audio(scored)
        levels = self._levels(pulses, (x, y))
        ev = self._evidence(audio, rounds, levels)
        confidence = ev.confidence
        status = self._status(confidence)
        label = _label(confidence)
        rec = IncidentRecord(
            id=incident_id,
            occurred_at=datetime.fromtimestamp(rounds[0].t, UTC),
            lat=lat,
            lon=lon,
            ellipse_major_m=max(0.0, best.major),
            ellipse_minor_m=max(0.0, best.minor),
            ellipse_angle_deg=best.angle % 360.0,
            rounds=sm["rounds"],
            label=label,
            confidence=round(confidence, 4),
            status=status,
            sensors=sorted(pulses),
            pulses={sid: str(p.event.event_id) for sid, p in pulses.items()},
            intervals_s=sm["intervals_s"],
            automatic=sm["automatic"],
            multiple_shooters=sm["multiple_shooters"],
            location_quality="poor" if all(shot.quality == "poor" for _, shot, _ in group) else "good",
            temperature_c=self.temperature_c,
            temperature_source=self.temperature_source,
        )
        rec.round_pulses, rec.round_audio = round_slots(rounds)
        # replayed pulses grouped otherwise than the first time (a burst located in one window then,
        # round by round now) make another id: the stored incident holding them is this incident
        # (looked up in the write's own transaction: no extra round trip on the alert's path)
        new, stored_id, stored = await self.store.write(
            lambda s: _record_new(s, rec, set(all_ids), rounds[0].t)
        )
        if stored_id != incident_id:
            rec.id = incident_id = stored_id
        # kept even when already stored: later rounds join it (and read its stored status back)
        recent = _Recent(rec, rounds, audio, levels, (x, y), scored, stored=stored)
        self._recent.append(recent)
        incident = incident_event(rec, incident_id)
        shots = [s for _, s, _ in group]
        if not new:
            # the same pulses again (e.g. replayed after a restart emptied the in-memory dedupe):
            # the incident was announced when it was stored, and a reviewer may have decided it
            # since; announcing it again would raise a fresh alert for a settled incident. Its
            # shots were published then too (its id is derived from exactly their pulses); its
            # later rounds, replayed next, are told by the pulses stored (:meth:`_more_rounds`)
            self.metrics.inc("acoustic_duplicate_incidents")
            self.metrics.inc("acoustic_duplicate_shots", len(shots))
            log.info("gunshot incident %s: already stored, not announced again", incident_id)
            return IncidentOutcome(incident, status, None, shots, ev)
        await self._publish_shots(shots)
        review = status == "pending_review"
        alert = None if status == "below_threshold" else incident_alert(rec, review=review)
        self.metrics.inc("acoustic_incidents", status=status)
        if status != "below_threshold":
            await self.bus.publish(incident.subject, incident.to_json(), msg_id=str(incident.event_id))
        if alert is not None:
            await self.bus.publish(alert.subject, alert.to_json(), msg_id=str(alert.event_id))
        log.info("gunshot incident %s: %d round(s), %s, %s", incident_id, rec.rounds, ev.describe(), status)
        return IncidentOutcome(incident, status, alert, shots, ev)

    async def _publish_shots(self, shots: Sequence[ShotLocated]) -> None:
        """Publish newly located rounds (after their incident is stored: a failed write publishes none)."""
        for shot in shots:
            await self.bus.publish(shot.subject, shot.to_json(), msg_id=str(shot.event_id))
        self.metrics.inc("acoustic_shots", len(shots))

    def _status(self, confidence: float) -> Status:
        """The review rule: alert at once, wait for a reviewer, or store only."""
        if confidence >= self.alert_above:
            return "alerted"
        return "pending_review" if confidence >= self.review_above else "below_threshold"

    def _levels(self, pulses: dict[str, _P], xy: tuple[float, float]) -> dict[str, tuple[float, float]]:
        """``(peak_db, horizontal distance m)`` per sensor (altitudes are absolute, not source-relative)."""
        return {sid: (float(p.event.peak_db), math.dist(p.xyz[:2], xy)) for sid, p in pulses.items()}

    def _evidence(
        self, audio: float | None, rounds: list[_Round], levels: dict[str, tuple[float, float]]
    ) -> Evidence:
        return combine(
            audio,
            [RoundFix(r.t, r.xy[0], r.xy[1], r.major) for r in rounds],
            list(levels.values()) if self.levels_spl else None,
            no_audio_confidence=self.no_audio_confidence,
            gun_db=self.gun_source_db,
            quiet_db=self.quiet_source_db,
            multiple_shooter_m=self.multiple_shooter_m,
        )

    async def _more_rounds(
        self, earlier: _Recent, rounds: list[_Round], pulses: dict[str, _P], shots: list[ShotLocated]
    ) -> IncidentOutcome:
        """Later rounds of an incident already announced: update it, no second alert.

        A round whose pulses are all stored in the incident already was located and published
        before (replayed after a restart: :meth:`_incident` read them back): its ShotLocated is
        counted, not published. When every round is such, nothing is written or announced: the
        store has them, and writing the rounds replayed so far could drop the later ones.
        """
        fresh = [
            shot
            for shot, r in zip(shots, rounds, strict=True)
            if not r.pulses or not set(r.pulses.values()) <= earlier.stored
        ]
        self.metrics.inc("acoustic_duplicate_shots", len(shots) - len(fresh))
        merged = sorted(earlier.rounds + rounds, key=lambda r: r.t)
        earlier.rounds = merged
        sm = self._summary(merged)
        rec = earlier.rec
        rec.rounds = sm["rounds"]
        rec.intervals_s = sm["intervals_s"]
        rec.automatic = sm["automatic"]
        rec.multiple_shooters = sm["multiple_shooters"]
        if any(shot.quality == "good" for shot in shots):
            rec.location_quality = "good"  # a later round from better geometry
        joined = [p for sid, p in pulses.items() if sid not in rec.pulses]
        for sid, p in pulses.items():
            rec.pulses.setdefault(sid, str(p.event.event_id))
        rec.sensors = sorted(rec.pulses)
        rec.round_pulses, rec.round_audio = round_slots(merged)
        ids = ",".join(sorted(str(p.event.event_id) for p in pulses.values()))
        update_id = uuid.uuid5(NAMESPACE, f"update:{rec.id}:{ids}")
        if not fresh:
            log.info("gunshot incident %s: %d round(s) replayed, already stored", rec.id, len(shots))
            ev = self._evidence(earlier.audio, merged, earlier.levels)
            return IncidentOutcome(incident_event(rec, update_id), rec.status, None, shots, ev)
        self._absorbed.pop(id(earlier), None)  # this write stores its stragglers too
        joined += earlier.joined
        earlier.joined = []
        await self._rescore(earlier, joined)  # new sensors: their levels, and audio if among the nearest
        ev = self._evidence(earlier.audio, merged, earlier.levels)
        stored = await self.store.write(lambda s: update_rounds(s, rec))
        earlier.stored |= _pulse_ids(rec)
        if stored is not None:
            # a reviewer may have decided since the incident was recorded: announce what is stored
            rec.status, rec.label, rec.confidence = stored.status, stored.label, stored.confidence
        alert = None if rec.status in DECIDED else await self._upgrade(rec, ev.confidence)
        await self._publish_shots(fresh)
        incident = incident_event(rec, update_id)
        self.metrics.inc("acoustic_incident_updates")
        if rec.status != "below_threshold":
            await self.bus.publish(incident.subject, incident.to_json(), msg_id=str(incident.event_id))
        if alert is not None:
            await self.bus.publish(alert.subject, alert.to_json(), msg_id=str(alert.event_id))
        log.info(
            "gunshot incident %s: now %d round(s), %s, %s", rec.id, rec.rounds, ev.describe(), rec.status
        )
        return IncidentOutcome(incident, rec.status, alert, shots, ev)

    async def _upgrade(self, rec: IncidentRecord, confidence: float) -> Alert | None:
        """Raise an incident's status when later rounds raised its confidence; the alert to send, if any.

        Only up (below → review → alert; an alert already out is never taken back) and only
        while no reviewer has decided (a conditional update on the status it had). The stored
        confidence stays the one the current status was decided on.
        """
        rank = {"below_threshold": 0, "pending_review": 1, "alerted": 2}
        new = self._status(confidence)
        old = rec.status
        if old not in rank or rank[new] <= rank[old]:
            return None
        raised = replace(rec, status=new, confidence=round(confidence, 4), label=_label(confidence))
        if not await self.store.write(lambda s: raise_status(s, raised, old)):
            return None  # a reviewer decided meanwhile
        rec.status, rec.confidence, rec.label = raised.status, raised.confidence, raised.label
        self.metrics.inc("acoustic_incident_upgrades", status=new)
        return incident_alert(rec, review=new == "pending_review")

    async def _score(
        self, pulses: Sequence[_P], xy: tuple[float, float], scored: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        """Classify the audio of those ``pulses`` that are among the (up to) three nearest sensors
        with audio, counting the sensors already ``scored``; each sensor's (distance m, probability).

        A clip that cannot be decoded or scored gets NaN (counted, logged; it still takes its place
        among the nearest, as before: :func:`_nearest_audio` skips it). Empty without a model.
        """
        if self.classifier is None:
            return {}
        dist = {
            p.event.device: (math.dist(p.xyz[:2], xy), p)
            for p in pulses
            if p.event.audio_flac_b64 and p.event.device not in scored
        }
        ranked = sorted(
            [(d, sid) for sid, (d, _) in dist.items()] + [(d, sid) for sid, (d, _) in scored.items()]
        )
        todo = [dist[sid][1] for _, sid in ranked[:3] if sid in dist]
        if not todo:
            return {}
        clf = self.classifier

        def _run() -> dict[str, tuple[float, float]]:
            out = {}
            for p in todo:
                prob = math.nan
                try:
                    audio, rate = decode_flac(p.event.audio_flac_b64 or "")
                    prob = float(clf.probability(audio, rate))
                except Exception as exc:
                    self.metrics.inc("acoustic_bad_audio")
                    log.warning("pulse %s: audio not usable: %s", p.event.event_id, exc)
                out[p.event.device] = (dist[p.event.device][0], prob)
            return out

        return await asyncio.to_thread(_run)


# -- helpers -------------------------------------------------------------------------------------


REPLAY_LOOKBACK_S = 600.0
"""How far before a new incident's first round a stored incident holding its pulses is looked for."""

REPLAY_BOX_M = 500.0
"""How far from a new incident a stored incident holding its pulses is looked for (m, half-side)."""


def _record_new(s: Any, rec: IncidentRecord, ids: set[str], t: float) -> tuple[bool, uuid.UUID, set[str]]:
    """Store ``rec`` unless it or an incident holding most of its pulses is stored.

    Returns whether it was new, the stored incident's id and the event ids of its stored pulses
    (what later replayed rounds are told by: :meth:`AcousticPipeline._more_rounds`).
    """
    found = _replayed_in(s, ids, t, rec.lat, rec.lon)
    if found is not None:
        return (False, *found)
    if record_incident(s, rec):
        return True, rec.id, _pulse_ids(rec)
    return False, rec.id, _row_pulse_ids(s.get(GunshotIncidentRow, rec.id))


def _replayed_in(
    s: Any, ids: set[str], t: float, lat: float, lon: float
) -> tuple[uuid.UUID, set[str]] | None:
    """The stored incident that already holds more than half of the pulses ``ids`` (its id and
    stored pulse ids), if any.

    Pulse ids are unique, so only a replay shares them; a new shot's pulses are new. Incidents of
    :data:`REPLAY_LOOKBACK_S` before ``t`` (a replayed later round of a long burst) up to 1 s after
    it and within :data:`REPLAY_BOX_M` of (``lat``, ``lon``) are read (the same pulses locate the
    same place; the box keeps a busy night's other incidents out of the read).
    """
    at = datetime.fromtimestamp(t, UTC)
    dlat = REPLAY_BOX_M / 111_320.0
    dlon = dlat / max(0.01, math.cos(math.radians(lat)))
    rows = s.scalars(
        select(GunshotIncidentRow).where(
            GunshotIncidentRow.occurred_at >= at - timedelta(seconds=REPLAY_LOOKBACK_S),
            GunshotIncidentRow.occurred_at <= at + timedelta(seconds=1),
            GunshotIncidentRow.lat.between(lat - dlat, lat + dlat),
            GunshotIncidentRow.lon.between(lon - dlon, lon + dlon),
        )
    )
    for row in rows:
        stored = _row_pulse_ids(row)
        if 2 * len(ids & stored) > len(ids):
            return uuid.UUID(str(row.id)), stored
    return None


def _pulse_ids(rec: IncidentRecord) -> set[str]:
    """Event ids of the pulses in ``rec``'s rounds."""
    return {i for ids in rec.round_pulses.values() for i in ids if i}


def _row_pulse_ids(row: GunshotIncidentRow | None) -> set[str]:
    """Event ids of the pulses stored in a stored incident's rounds (empty without the row)."""
    return set() if row is None else {i for ids in sensor_round_pulses(row).values() for i in ids if i}


def _nearest_audio(scored: dict[str, tuple[float, float]]) -> float | None:
    """:func:`~rtcc.acoustic.evidence.audio_logit` of the three nearest scored sensors; None without."""
    return audio_logit([p for _, p in sorted(scored.values())[:3]])


def _label(confidence: float) -> str:
    """The incident's class label: gunshot from a confidence of 0.5 up."""
    return "gunshot" if confidence >= 0.5 else "non_gunshot"


def incident_alert(rec: IncidentRecord, *, review: bool, confirmed_by: str | None = None) -> Alert:
    """The alert for an incident: ``gunshot`` (critical) or ``gunshot_review`` (warning).

    ``confirmed_by``: the reviewer who confirmed it as gunfire (the title says so instead of the
    model's confidence, which was in the review band).
    """
    what = f"{rec.rounds} round{'s' if rec.rounds != 1 else ''}"
    flags = (
        ("probable automatic fire", rec.automatic),
        ("multiple shooters", rec.multiple_shooters),
        ("poor sensor geometry: location less sure", rec.location_quality == "poor"),
    )
    extra = [x for x, on in flags if on]
    detail = f"{what}{' — ' + ', '.join(extra) if extra else ''}, ±{rec.ellipse_major_m:.0f} m"
    # one id per incident and kind, as event and as alert: an alert sent twice (a replay, a
    # redelivery) is stored once (the alert store is idempotent by alert_id)
    alert_id = uuid.uuid5(NAMESPACE, f"alert:{'review' if review else 'gunshot'}:{rec.id}")
    return Alert(
        event_id=alert_id,
        alert_id=alert_id,
        source="acoustic",
        kind="gunshot_review" if review else "gunshot",
        severity=AlertSeverity.warning if review else AlertSeverity.critical,
        title=(
            f"Possible gunfire — review needed (confidence {rec.confidence:.2f}): {detail}"
            if review
            else f"Gunfire: {detail} ({_why(rec, confirmed_by)})"
        ),
        pos=Position(lat=rec.lat, lon=rec.lon),
        ref_event_id=rec.id,
    )


def _why(rec: IncidentRecord, confirmed_by: str | None) -> str:
    """Why a gunfire alert went out: the reviewer's confirmation, else the model's confidence."""
    return f"confirmed by {confirmed_by}" if confirmed_by else f"confidence {rec.confidence:.2f}"


def incident_event(rec: IncidentRecord, event_id: uuid.UUID) -> GunshotIncident:
    """The ``gunshot_incident`` event of an incident as it stands (a new one per change)."""
    return GunshotIncident(
        event_id=event_id,
        incident_id=rec.id,
        source="acoustic",
        occurred_at=rec.occurred_at,
        pos=Position(lat=rec.lat, lon=rec.lon),
        ellipse_major_m=rec.ellipse_major_m,
        ellipse_minor_m=rec.ellipse_minor_m,
        ellipse_angle_deg=rec.ellipse_angle_deg,
        rounds=rec.rounds,
        intervals_s=list(rec.intervals_s),
        automatic=rec.automatic,
        multiple_shooters=rec.multiple_shooters,
        location_quality=rec.location_quality,
        label=rec.label,
        confidence=rec.confidence,
        status=rec.status,
        sensors=rec.sensors,
    )


def decode_flac(b64: str) -> tuple[np.ndarray[Any, Any], int]:
    """Mono float audio and its sample rate from base64 FLAC (as in :class:`~rtcc.events.Pulse`)."""
    import soundfile as sf

    data, rate = sf.read(io.BytesIO(base64.b64decode(b64, validate=True)), dtype="float32", always_2d=True)
    return np.asarray(data.mean(axis=1), dtype=np.float32), int(rate)


def _round_of(fix: Any, used: list[_P], base: float) -> _Round:
    """A fix as a :class:`_Round`, with the pulse of each sensor it was located from."""
    r = _Round(
        base + float(fix.t0_s),
        (float(fix.x_m), float(fix.y_m)),
        float(fix.ellipse_major_m),
        float(fix.ellipse_minor_m),
        float(fix.ellipse_angle_deg),
    )
    for p in used:
        r.hear(p)
    return r


def _alive(conn: Any) -> bool:
    """Whether a database connection still answers (the lead lock lives with it)."""
    try:
        conn.execute(text("SELECT 1"))
        conn.commit()
    except Exception:
        return False
    return True


def _heard(pulses: Sequence[_P]) -> dict[str, tuple[float, float]]:
    """Each sensor's pulse as (arrival epoch s, SNR dB); a sensor's first pulse when it has two."""
    out: dict[str, tuple[float, float]] = {}
    for p in sorted(pulses, key=lambda q: q.t):
        out.setdefault(p.event.device, (p.t, float(p.event.snr_db)))
    return out


def round_slots(rounds: Sequence[_Round]) -> tuple[dict[str, list[str | None]], dict[str, list[int]]]:
    """Each sensor's pulse per round (None: not heard) and its 1-based rounds that came with audio.

    ``rounds`` in time order: the incident's round numbers.
    """
    sensors = sorted({sid for r in rounds for sid in r.pulses})
    slots = {sid: [r.pulses.get(sid) for r in rounds] for sid in sensors}
    audio = {sid: [i for i, r in enumerate(rounds, start=1) if sid in r.audio] for sid in sensors}
    return slots, {sid: n for sid, n in audio.items() if n}


def _quality(q: Any) -> str:
    if isinstance(q, str):
        return "poor" if q.lower() in ("poor", "bad", "weak") else "good"
    if isinstance(q, bool):
        return "good" if q else "poor"
    if isinstance(q, int | float):
        return "good" if q >= 0.5 else "poor"
    return "good"


def _fix_pulses(fix: Any, pulses: list[_P], by_ref: dict[str, _P], base: float) -> list[_P]:
    """The buffered pulses a fix used (by ``ref``, else by sensor and time)."""
    used: list[_P] = []
    for a in getattr(fix, "arrivals", None) or []:
        ref = getattr(a, "ref", None)
        p = by_ref.get(str(ref)) if ref is not None else None
        if p is None:
            cands = [q for q in pulses if q.event.device == getattr(a, "sensor_id", None)]
            t = float(getattr(a, "t_s", 0.0)) + base
            p = min(cands, key=lambda q: abs(q.t - t)) if cands else None
        if p is not None and p not in used:
            used.append(p)
    if not used:
        names = {str(s) for s in fix.sensors}
        used = [p for p in pulses if p.event.device in names]
    return used


def _load_classifier() -> Classifier | None:
    try:
        from rtcc.acoustic.classify import GunshotClassifier
    except ImportError as exc:
        log.warning("acoustic pipeline: no classifier (%s); incidents go to review", exc)
        return None
    try:
        clf: Classifier = GunshotClassifier.load()
    except Exception as exc:
        log.warning("acoustic pipeline: the classifier did not load (%s); incidents go to review", exc)
        return None
    return clf
