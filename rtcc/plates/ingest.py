"""Camera images in, plate reads out: decode, recognize, store media and reads, publish.

:class:`CameraIngest` serves ``POST /api/v1/plates/images`` (and through it
the watched folder). For one uploaded image it

1. checks the image (not empty, not over ``max_image_bytes`` or
   ``max_image_pixels``, decodable) before any pixel buffer is allocated;
2. recognizes the plates in a bounded thread pool (``recognition_workers``
   threads, at most ``recognition_queue`` uploads waiting; beyond that the
   camera is told to retry with 503);
3. stores the vehicle image (the uploaded bytes) and one crop per plate in
   the media store — only when a plate was read: an image nothing was read
   in is not kept (it is personal data with no read to account for it);
4. stores one ``plate_reads`` row per plate and publishes one
   :class:`~rtcc.events.PlateRead` per plate through the device ingest
   (:class:`rtcc.ingest.service.IngestService`), so the recorder and the
   hotlist processor get it like any device event.

Idempotency: a read's event id is a UUIDv5 of (camera, SHA-256 of the image,
camera time, plate index), so the same upload sent again yields the same
reads. A repeated upload is not recognized again: its stored reads are
answered (``duplicate: true``) and published again (the bus and every
consumer drop duplicates by event id), so a camera that retries after a lost
answer loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rtcc.errors import Conflict, PayloadTooLarge, Unavailable, ValidationFailed
from rtcc.events import PlateRead, Position
from rtcc.plates import reads as repo
from rtcc.plates.media import MediaStore

if TYPE_CHECKING:
    from rtcc.ingest.service import IngestService
    from rtcc.oversight.device_keys import DeviceIdentity
    from rtcc.plates.recognize import PlateReader, PlateResult
    from rtcc.settings import Settings
    from rtcc.store.db import Store
    from rtcc.store.tables_plates import PlateReadRow

READ_NAMESPACE = uuid.UUID("6f0d5f3e-2b8e-4c1e-9a57-5d1a2c6b7e01")
"""Namespace of the UUIDv5 event ids of reads made from uploaded images."""

MAX_PLATES = 64
"""Most plates kept from one image (best first)."""

COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

NOT_AN_IMAGE = "not a readable image (JPEG, PNG or WebP expected)"
"""The message for bytes no image format recognizes (what PIL says names its internals)."""

log = logging.getLogger("rtcc.plates.ingest")


def compass(heading_deg: float | None) -> str | None:
    """The compass point (``N`` … ``NW``) nearest a heading in degrees, or None."""
    if heading_deg is None:
        return None
    return COMPASS[int(((heading_deg % 360.0) + 22.5) // 45.0) % 8]


def read_id(camera: str, image_sha256: str, at: datetime | None, index: int) -> uuid.UUID:
    """The event id of plate ``index`` of an uploaded image (stable across re-uploads).

    ``at`` None: the camera gave no time (the center stamps it on arrival), so the same bytes from
    the same camera are the same picture whenever they come: a retried upload is a duplicate.
    """
    when = at.astimezone(UTC).isoformat() if at is not None else "untimed"
    return uuid.uuid5(READ_NAMESPACE, f"{camera}|{image_sha256}|{when}|{index}")


@dataclass(frozen=True)
class DecodedImage:
    """An uploaded image: its BGR pixels, its bytes' SHA-256 and its media extension."""

    pixels: npt.NDArray[np.uint8]
    sha256: str
    ext: str


def image_header(
    data: bytes, *, max_pixels: int, limit_name: str = "setting plates.max_image_pixels"
) -> tuple[int, int, str]:
    """Width, height and format (PIL's name) of an encoded image, read from its header only.

    The check every image passes before a pixel buffer is allocated (uploads and ``rtcc plates
    read``): a small file can declare a huge image (a 1 MB PNG of 20000x20000 pixels decodes to 1.2 GB).
    ``limit_name`` names where the limit is set, for the message.

    Raises
    ------
    ValidationFailed
        Not an image (no known format in the header).
    PayloadTooLarge
        More than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            fmt = probe.format or ""
    except Image.DecompressionBombError:  # beyond PIL's own limit (~179 Mpx): too large anyway
        bomb = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise PayloadTooLarge(
            f"the image is too large: it declares over {bomb} pixels, more than the image decoder "
            f"accepts (a decompression bomb guard; the limit here is {max_pixels}, {limit_name})"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        # PIL's text names its own objects ("<_io.BytesIO object at 0x…>"): kept for the log only
        log.debug("image header unreadable: %s", exc)
        raise ValidationFailed(NOT_AN_IMAGE) from None
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} pixels; the limit is {max_pixels} ({limit_name})"
        )
    return width, height, fmt


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Check and decode an uploaded image.

    Raises
    ------
    ValidationFailed
        Empty, unreadable, or not a JPEG/PNG/WebP image.
    PayloadTooLarge
        More than ``max_bytes`` bytes or more than ``max_pixels`` pixels (the
        size is read from the header, before decoding: :func:`image_header`).
    """
    import cv2

    if not data:
        raise ValidationFailed("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes; the limit is {max_bytes} (setting plates.max_image_bytes)"
        )
    _, _, fmt = image_header(data, max_pixels=max_pixels)
    if fmt not in _FORMATS:
        raise ValidationFailed(f"image format {fmt or 'unknown'} is not accepted; send JPEG, PNG or WebP")
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.size == 0:
        raise ValidationFailed("the image is corrupt (it could not be decoded)")
    return DecodedImage(
        np.ascontiguousarray(pixels, dtype=np.uint8), hashlib.sha256(data).hexdigest(), _FORMATS[fmt]
    )


def crop_jpeg(pixels: npt.NDArray[np.uint8], box: Sequence[int], margin: float = 0.15) -> bytes:
    """The plate's box (grown by ``margin`` of its height on each side) as JPEG bytes."""
    import cv2

    x, y, w, h = (int(v) for v in box)
    pad = round(margin * h)
    hh, ww = pixels.shape[:2]
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(ww, x + w + pad), min(hh, y + h + pad)
    ok, buf = cv2.imencode(".jpg", pixels[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:  # pragma: no cover - encoding a non-empty BGR array does not fail
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf)


def edge_read(upload: Upload, image: DecodedImage) -> PlateResult:
    """The plate a camera read itself, checked against its image."""
    from rtcc.plates.normalize import normalize_plate
    from rtcc.plates.recognize import PlateResult

    text = normalize_plate(upload.plate or "")
    if not 1 <= len(text) <= 16:
        raise ValidationFailed("plate must have 1 to 16 letters or digits")
    if upload.box is None or upload.confidence is None:
        raise ValidationFailed("a plate read by the camera needs its box (x,y,w,h) and confidence")
    x, y, w, h = upload.box
    height, width = image.pixels.shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValidationFailed(f"box {list(upload.box)} is not inside the {width}x{height} image")
    conf = float(upload.confidence)
    region = (upload.region or "").strip().upper() or None
    if region is not None and not (region.replace("-", "").isalnum() and len(region) <= 16):
        raise ValidationFailed("region must be up to 16 letters or digits (e.g. TX, DE, GB-SCT)")
    return PlateResult(text, conf, tuple(conf for _ in text), (x, y, w, h), region)


@dataclass
class Upload:
    """One camera image and what the camera says about it."""

    data: bytes
    at: datetime
    lat: float | None = None
    lon: float | None = None
    heading_deg: float | None = None
    plate: str | None = None
    """A plate the camera read itself (edge recognition, e.g. ``rtcc plates video``): not read again."""
    box: tuple[int, int, int, int] | None = None
    """Where that plate is in the image, (x, y, w, h) pixels."""
    confidence: float | None = None
    """The camera's confidence in that plate, 0-1."""
    region: str | None = None
    """With ``plate``: the state or region the camera told, if any."""
    direction: str | None = None
    """Direction of travel the camera worked out itself (e.g. from tracking), ``N`` … ``NW``."""
    timed: bool = True
    """Whether the camera gave ``at`` (False: stamped on arrival; the bytes alone identify it)."""


@dataclass
class UploadResult:
    """The reads of one upload (``duplicate``: the same upload was accepted before)."""

    reads: list[PlateReadRow]
    duplicate: bool
    published: int


class CameraIngest:
    """Recognizes uploaded camera images into stored, published plate reads.

    Parameters
    ----------
    settings, store, ingest
        The center's settings, store and device ingest service.
    reader
        A loaded :class:`~rtcc.plates.recognize.PlateReader`; loaded on first
        use when None.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        ingest: IngestService,
        reader: PlateReader | None = None,
    ) -> None:
        p = settings.plates
        self.store = store
        self.ingest = ingest
        self.media = MediaStore(Path(p.media_dir) if p.media_dir else settings.data_dir / "media")
        self.max_bytes = p.max_image_bytes
        self.max_pixels = p.max_image_pixels
        self.workers = p.recognition_workers
        self.detector_backend = p.detector_backend
        self._reader = reader
        self._reader_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="plates-recognize")
        self._slots = asyncio.Semaphore(self.workers + p.recognition_queue)
        self._waiting = 0
        self._capacity = self.workers + p.recognition_queue

    def reader(self) -> PlateReader:
        """The plate reader (loaded once, on first use)."""
        with self._reader_lock:
            if self._reader is None:
                from rtcc.plates.recognize import PlateReader

                self._reader = PlateReader.load(threads=1, backend=self.detector_backend)
            return self._reader

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def recognize(self, pixels: npt.NDArray[np.uint8]) -> list[PlateResult]:
        """Read the plates of one image in the bounded pool.

        Raises
        ------
        Unavailable
            When ``recognition_queue`` uploads are already waiting (retry later).
        """
        if self._waiting >= self._capacity:
            raise Unavailable(
                "plate recognition is busy; retry shortly (setting plates.recognition_queue)",
                details={"retry_after_s": 1},
            )
        self._waiting += 1
        try:
            async with self._slots:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, lambda: self.reader().read(pixels))
        finally:
            self._waiting -= 1

    async def _device_position(self, device_id: str) -> tuple[float | None, float | None]:
        from rtcc.store.tables import Device

        def load(s: Any) -> tuple[float | None, float | None]:
            d = s.get(Device, device_id)
            return (d.lat, d.lon) if d is not None else (None, None)

        result: tuple[float | None, float | None] = await self.store.read(load)
        return result

    def _check_time(self, at: datetime) -> None:
        now = datetime.now(UTC)
        if at.tzinfo is None:
            raise ValidationFailed("the camera time needs a time zone (e.g. 2026-11-21T12:00:00Z)")
        if at > now + self.ingest.max_future:
            raise ValidationFailed(f"camera time {at.isoformat()} is in the future (check the camera clock)")
        if at < now - self.ingest.max_age:
            raise ValidationFailed(f"camera time {at.isoformat()} is older than the ingest window")

    async def _stored(self, ids: list[uuid.UUID]) -> list[PlateReadRow]:
        def load(s: Any) -> list[PlateReadRow]:
            out = []
            for rid in ids:
                row = repo.get_read(s, rid)
                if row is None:
                    break
                s.expunge(row)
                out.append(row)
            return out

        rows: list[PlateReadRow] = await self.store.read(load)
        return rows

    async def _publish(self, ident: DeviceIdentity, events: list[PlateRead]) -> int:
        if not events:
            return 0
        try:
            result = await self.ingest.ingest(ident, [e.model_dump(mode="json") for e in events], "http")
        except Conflict:
            return 0  # already published (a repeated upload): nothing to do
        return result.accepted

    async def accept(self, ident: DeviceIdentity, upload: Upload) -> UploadResult:
        """Recognize, store and publish the plates of one upload (see the module docstring)."""
        at = upload.at
        self._check_time(at)
        image = decode_image(upload.data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        lat, lon, heading = upload.lat, upload.lon, upload.heading_deg
        if lat is None or lon is None:
            if (lat is None) != (lon is None):
                raise ValidationFailed("send both lat and lon, or neither (fixed cameras)")
            lat, lon = await self._device_position(ident.id)
            if lat is None or lon is None:
                raise ValidationFailed(
                    f"camera {ident.id!r} has no registered position: send lat and lon with the image"
                )
            direction = None  # a fixed camera's heading says where it looks, not where the cars go
        else:
            direction = compass(heading)
        if upload.direction is not None:
            if upload.direction not in COMPASS:
                raise ValidationFailed(f"direction must be one of {', '.join(COMPASS)}")
            direction = upload.direction
        if lat == 0.0 and lon == 0.0:
            raise ValidationFailed("position (0, 0) is not a real position (no GPS fix?)")
        pos = Position(lat=lat, lon=lon)
        # loads reads 0, 1, … of this upload until one is missing: one query for a new upload
        edge = [edge_read(upload, image)] if upload.plate is not None else None  # checked before all else
        key_at = at if upload.timed else None
        before = await self._stored([read_id(ident.id, image.sha256, key_at, i) for i in range(MAX_PLATES)])
        if before:
            events = [repo.read_event(row) for row in before]
            published = await self._publish(ident, events)
            return UploadResult(before, duplicate=True, published=published)
        plates = await self.recognize(image.pixels) if edge is None else edge
        if not plates:  # nothing read: the image is not kept (a retry is recognized again, same answer)
            return UploadResult([], duplicate=False, published=0)
        image_ref = self.media.put(upload.data, image.ext)
        events = []
        for i, p in enumerate(plates[:MAX_PLATES]):
            crop_ref = self.media.put(crop_jpeg(image.pixels, p.box), "jpg")
            events.append(
                PlateRead(
                    event_id=read_id(ident.id, image.sha256, key_at, i),
                    occurred_at=at,
                    source=ident.id,
                    device=ident.id,
                    pos=pos,
                    plate=p.text[:16],
                    region=p.region,
                    confidence=min(1.0, max(0.0, p.confidence)),
                    heading_deg=heading,
                    image_ref=image_ref,
                    crop_ref=crop_ref,
                    direction=direction,
                )
            )
        await self.store.write(lambda s: repo.insert_reads(s, events))
        published = await self._publish(ident, events)
        rows = await self._stored([e.event_id for e in events])
        return UploadResult(rows, duplicate=False, published=published)


SERVICE_KEY = "plates.camera_ingest"
"""Name of the :class:`CameraIngest` in ``ctx.services`` / ``center.services``."""


def service_of(ctx: Any) -> CameraIngest:
    """The context's :class:`CameraIngest`, made on first use (shared by API requests)."""
    svc = ctx.services.get(SERVICE_KEY)
    if svc is None:
        svc = CameraIngest(ctx.settings, ctx.store, ctx.ingest)
        ctx.services[SERVICE_KEY] = svc
    assert isinstance(svc, CameraIngest)
    return svc
