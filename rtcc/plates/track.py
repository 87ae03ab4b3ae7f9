"""Plate tracking across video frames: one read per vehicle pass.

Each sampled frame's plates are associated with the open tracks greedily,
best score first. A plate continues a track when its box overlaps the
track's last box (IoU ≥ ``iou_min``) or when its text agrees with the
track's (look-alike-folded similarity ≥ ``text_min``) and it is no further
than ``reach`` box widths from the last box — sampled frames of a fast car
need not overlap. A track that has not been seen for ``max_gap`` sampled
frames is closed and becomes a :class:`Pass`.

A track keeps one frame only per text read (the most confident, for the best-frame upload; at most
:data:`IMAGES_PER_TRACK` texts), not every frame it was seen in: a car standing in view would
otherwise hold a full frame per sample, without limit. A track that lasts ``max_track_s`` (a car
parked or stopped at a light) is read then, while the track goes on: one read per vehicle pass
still, another one only if the reading of the standing car changes (or it leaves and comes back).

Text of a pass
--------------
The most frequent text length is chosen (weighted by confidence), then each
character position is a confidence-weighted vote among the readings of that
length:

.. math:: c_k = \\arg\\max_c \\sum_{i : t_i[k] = c} p_{ik}

where :math:`p_{ik}` is reading *i*'s probability for its *k*-th character.
The pass confidence is the best agreeing reading's confidence times the
share of the total weight that agrees with the voted text. The best frame
is the agreeing reading with the highest confidence.

Direction of travel
-------------------
From the track's motion in the image and the camera's heading θ (where it
looks): a box that grows by more than the lateral motion explains is a
vehicle coming towards the camera (travelling θ + 180°); one that shrinks
travels θ; otherwise left-to-right motion in the image is θ + 90°, right to
left θ − 90°. A moving camera (``moving=True``) reports its own heading:
the vehicles it reads are mostly in its lane or the next.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from rtcc.plates.ingest import compass
from rtcc.plates.matching import skeleton


@dataclass(frozen=True)
class Sighting:
    """One plate read in one sampled frame."""

    frame: int
    t: float
    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    box: tuple[int, int, int, int]
    image: Any = None
    """The frame (BGR array) when the caller keeps it, for the best-frame upload."""
    region: str | None = None
    """The state or region the reader told in this frame, if any."""


@dataclass
class Pass:
    """One vehicle pass: its voted plate, best frame and travel."""

    plate: str
    confidence: float
    best: Sighting
    first_t: float
    last_t: float
    sightings: int
    direction: str | None
    readings: dict[str, int] = field(default_factory=dict)
    region: str | None = None
    """The state or region told most often over the pass (``None`` when never told)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "plate": self.plate,
            "confidence": round(self.confidence, 4),
            "first_t": round(self.first_t, 3),
            "last_t": round(self.last_t, 3),
            "best_t": round(self.best.t, 3),
            "best_frame": self.best.frame,
            "box": list(self.best.box),
            "sightings": self.sightings,
            "readings": self.readings,
            "direction": self.direction,
            "region": self.region,
        }


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def similarity(a: str, b: str) -> float:
    """1 − normalized Levenshtein distance of the look-alike-folded texts (0 … 1)."""
    a, b = skeleton(a), skeleton(b)
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def vote(readings: list[Sighting]) -> tuple[str, float]:
    """The confidence-weighted plate text of a track and the weight share agreeing with it."""
    by_len: dict[int, float] = defaultdict(float)
    for r in readings:
        by_len[len(r.text)] += r.confidence
    length = max(by_len, key=lambda n: (by_len[n], n))
    chars: list[str] = []
    for k in range(length):
        score: dict[str, float] = defaultdict(float)
        for r in readings:
            if len(r.text) == length:
                p = r.char_confidences[k] if k < len(r.char_confidences) else r.confidence
                score[r.text[k]] += p
        chars.append(max(score, key=lambda c: (score[c], c)))
    text = "".join(chars)
    total = sum(r.confidence for r in readings) or 1.0
    agree = sum(r.confidence for r in readings if r.text == text)
    return text, agree / total


def travel(
    first: tuple[int, int, int, int],
    last: tuple[int, int, int, int],
    frame_width: int,
    camera_heading: float | None,
    moving: bool = False,
) -> str | None:
    """Compass direction of travel from a track's first and last box (see the module docstring)."""
    if camera_heading is None:
        return None
    if moving:
        return compass(camera_heading)
    growth = (last[2] - first[2]) / max(first[2], 1)
    dx = ((last[0] + last[2] / 2) - (first[0] + first[2] / 2)) / max(frame_width, 1)
    if abs(growth) < 0.05 and abs(dx) < 0.02:
        return None  # parked, or too short a track to tell
    if abs(growth) >= abs(dx) * 2:
        return compass(camera_heading + 180.0 if growth > 0 else camera_heading)
    return compass(camera_heading + 90.0 if dx > 0 else camera_heading - 90.0)


MAX_TRACK_S = 5.0
"""Default seconds after which a vehicle still in view is read (``max_track_s``)."""

IMAGES_PER_TRACK = 3
"""A track keeps the best frame of at most this many texts (those with the most weight)."""


@dataclass
class _Track:
    """An open track: its current window of sightings (frames dropped) and the frames it keeps."""

    last: Sighting
    last_seen: int
    sightings: list[Sighting] = field(default_factory=list)
    images: dict[str, Sighting] = field(default_factory=dict)
    """The most confident sighting of each text, with its frame (the others are kept without)."""
    weights: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    emitted: str | None = None
    """The plate already read for this track when it outlasted ``max_track_s``."""

    def add(self, s: Sighting) -> None:
        self.weights[s.text] += s.confidence
        if s.image is not None:
            kept = self.images.get(s.text)
            if kept is None or s.confidence > kept.confidence:
                self.images[s.text] = s
            if len(self.images) > IMAGES_PER_TRACK:
                del self.images[min(self.images, key=lambda k: (self.weights[k], k))]
            s = replace(s, image=None)
        self.last = s
        self.sightings.append(s)

    def restart(self) -> None:
        """A new window: the sightings so far have been read."""
        self.sightings, self.images, self.weights = [], {}, defaultdict(float)


class PlateTracker:
    """Associates per-frame plate reads into vehicle passes.

    Parameters
    ----------
    iou_min : float
        Box overlap that continues a track on its own.
    text_min : float
        Text similarity (0-1) that, with closeness, continues a track.
    reach : float
        How far (in box widths of the last box) a text-agreeing plate may be.
    max_gap : int
        Sampled frames without a sighting after which a track is closed.
    min_sightings : int
        Tracks with fewer sightings are dropped (a one-frame misread).
    frame_width : int
        Frame width in pixels (for the direction of travel).
    camera_heading, moving
        See :func:`travel`.
    max_track_s : float or None
        A track seen over this many seconds (sighting times) is read then and goes on; it gives
        another read only when its voted plate changes (look-alikes folded). None: at its end only.
    """

    def __init__(
        self,
        *,
        iou_min: float = 0.2,
        text_min: float = 0.6,
        reach: float = 4.0,
        max_gap: int = 3,
        min_sightings: int = 1,
        frame_width: int = 1280,
        camera_heading: float | None = None,
        moving: bool = False,
        max_track_s: float | None = None,
    ) -> None:
        self.iou_min = iou_min
        self.text_min = text_min
        self.reach = reach
        self.max_gap = max_gap
        self.min_sightings = min_sightings
        self.frame_width = frame_width
        self.camera_heading = camera_heading
        self.moving = moving
        self.max_track_s = max_track_s
        self._open: list[_Track] = []
        self._step = 0

    def _score(self, track: _Track, s: Sighting) -> float:
        last = track.last
        overlap = iou(last.box, s.box)
        if overlap >= self.iou_min:
            return 1.0 + overlap
        sim = similarity(last.text, s.text)
        cx0, cy0 = last.box[0] + last.box[2] / 2, last.box[1] + last.box[3] / 2
        cx1, cy1 = s.box[0] + s.box[2] / 2, s.box[1] + s.box[3] / 2
        dist = ((cx1 - cx0) ** 2 + (cy1 - cy0) ** 2) ** 0.5 / max(last.box[2], 1)
        if sim >= self.text_min and dist <= self.reach * (self._step - track.last_seen):
            return sim
        return 0.0

    def update(self, sightings: list[Sighting]) -> list[Pass]:
        """Add one sampled frame's plates; returns the passes that ended."""
        self._step += 1
        pairs = sorted(
            (
                (self._score(t, s), ti, si)
                for ti, t in enumerate(self._open)
                for si, s in enumerate(sightings)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_s: set[int] = set()
        for score, ti, si in pairs:
            if score <= 0 or ti in used_t or si in used_s:
                continue
            used_t.add(ti)
            used_s.add(si)
            self._open[ti].add(sightings[si])
            self._open[ti].last_seen = self._step
        for si, s in enumerate(sightings):
            if si not in used_s:
                track = _Track(s, self._step)
                track.add(s)
                self._open.append(track)
        out: list[Pass] = []
        if self.max_track_s is not None:
            for track in self._open:
                ss = track.sightings
                if ss and ss[-1].t - ss[0].t >= self.max_track_s:
                    p = self._close(track)
                    track.restart()
                    if p is not None:
                        out.append(p)
        ended = [t for t in self._open if self._step - t.last_seen >= self.max_gap]
        self._open = [t for t in self._open if self._step - t.last_seen < self.max_gap]
        return out + [p for p in (self._close(t) for t in ended) if p is not None]

    @property
    def in_progress(self) -> int:
        """How many tracks are open (vehicle passes not ended yet)."""
        return len(self._open)

    def flush(self) -> list[Pass]:
        """Close every open track (end of the video)."""
        ended, self._open = self._open, []
        return [p for p in (self._close(t) for t in ended) if p is not None]

    def _close(self, track: _Track) -> Pass | None:
        """The pass of ``track``'s current window; None when too short, or when its plate was read
        already (``max_track_s``) and has not changed."""
        ss = track.sightings
        if not ss or len(ss) < self.min_sightings:
            return None
        text, share = vote(ss)
        if track.emitted is not None and skeleton(text) == skeleton(track.emitted):
            return None
        track.emitted = text
        agreeing = [s for s in ss if s.text == text] or ss
        best = max(agreeing, key=lambda s: s.confidence)
        if best.text in track.images:
            best = track.images[best.text]
        elif track.images:  # its frame was let go for better-read texts: the best frame kept
            best = max(track.images.values(), key=lambda s: s.confidence)
        readings: dict[str, int] = defaultdict(int)
        regions: dict[str, int] = defaultdict(int)
        for s in ss:
            readings[s.text] += 1
            if s.region:
                regions[s.region] += 1
        return Pass(
            plate=text,
            confidence=best.confidence * share,
            best=best,
            first_t=ss[0].t,
            last_t=ss[-1].t,
            sightings=len(ss),
            direction=travel(ss[0].box, ss[-1].box, self.frame_width, self.camera_heading, self.moving),
            readings=dict(readings),
            region=max(sorted(regions), key=lambda r: regions[r]) if regions else None,
        )
