"""Find and read licence plates in an image: text detection, plate reading, plate choice.

Pipeline (all ONNX Runtime on the CPU, models in ``rtcc/plates/models``):

1. :class:`~rtcc.plates.detect.TextDetector` (PP-OCRv4 DB) finds every text region.
2. Each region that could hold a plate (tall enough, wider than tall) is rectified and read by
   :class:`~rtcc.plates.ocr.PlateOCR`, a CRNN trained to read plate numbers and to return nothing
   for other text (dealer frames, state names, stickers, date stamps).
3. Each region is read from a few crops (its own and slightly grown / shrunk ones); the text with
   the highest summed confidence wins (mean character confidence, penalised when too short for a
   plate).
4. When no region is read confidently (best below :attr:`Fusion.below`), the best few regions are
   read again by a second, independent recognizer (since session 7 the PP-OCRv4 recognizer
   fine-tuned on plates, ``plate_ppocr.onnx``; before it the general PP-OCRv4 one, its output
   restricted to ``0-9 A-Z``), and each region's text is chosen among both recognizers' readings by how well
   both models' CTC outputs agree with it (:class:`Fusion`).
5. When nothing is read, the image is looked at again closer (contrast-equalised, in four
   overlapping tiles at about twice the size). The best region is checked for a character cut off
   at its edge (a wider crop read alike by both recognizers).
6. Reads that fit a known European layout get look-alike digits in letter positions turned into
   letters (:func:`fix_layout`); reads that spell a state name are dropped. Plates are returned best
   first, overlapping duplicates removed.
7. The best plate's state or country is told when clear: a state name printed around it, the sign
   on an EU band, or the plate's look (:mod:`rtcc.plates.region`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from rtcc.errors import ValidationFailed
from rtcc.plates.backend import Backend, resolve
from rtcc.plates.detect import DET_MODEL, DET_MODEL_INT8, TextDetector, TextRegion
from rtcc.plates.normalize import normalize_plate
from rtcc.plates.ocr import SECOND_MODEL, PlateOCR, Reading, decode, rectify, text_confidence
from rtcc.plates.region import RegionReader, TextRecognizer, is_state_name


class SecondReader(Protocol):
    """A recognizer that re-reads crops for :class:`Fusion`: the general one
    (:class:`~rtcc.plates.region.TextRecognizer`) or a plate one (:class:`~rtcc.plates.ocr.PlateOCR`)."""

    def plate_probs(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """CTC output of one BGR crop over ``blank + 0-9 + A-Z``, shape (T, 37)."""
        ...


MIN_CHARS = 4
"""Readings shorter than this are scaled down: few real plates have fewer characters."""

VARIANTS: tuple[tuple[float, float], ...] = ((-0.06, 0.0), (0.1, 0.06), (0.0, -0.08))
"""Default extra crops per region (``(pad_x, pad_y)`` in region heights) read at test time."""

EDGE: tuple[float, float] = (0.3, 0.1)
"""Default growth ``(pad_x, pad_y)`` (region heights) of the crop that looks for a character cut off at
the best region's edge (:meth:`PlateReader._extend`)."""

STATIC_AFTER = 3
"""With OpenVINO, a frame size seen this many times gets the detectors compiled for it alone
(:class:`rtcc.plates.backend.OpenVinoSession`): a camera's frames after its third."""


@dataclass(frozen=True)
class Fusion:
    """When and how a second recognizer re-reads the uncertain regions (chosen on the ``val`` half of
    tune with recognizers trained without it; see ``rtcc/plates/models/MODEL_CARD.md``).

    For a re-read region, every text either recognizer read in any of its crops is a candidate;
    each scores ``(1 - weight) * c1 + weight * c2``, where ``c1`` / ``c2`` is how well the plate
    recognizer's / the second recognizer's crops agree with it
    (:func:`~rtcc.plates.ocr.text_confidence`, CTC likelihood per character). The best candidate
    becomes the region's text, and its score (penalised when short) the region's confidence.

    Attributes
    ----------
    below : float
        Re-read only when the best region's plate-recognizer confidence is below this (0-1).
    above : float
        Re-read regions whose plate-recognizer confidence is at least this (0-1): a near-miss of
        ``min_confidence`` counts, a region the plate recognizer reads as no plate does not.
    regions : int
        At most this many regions (best first) are re-read.
    crops : int
        The second recognizer reads the first ``crops`` crops of a region (the region itself, then
        :data:`VARIANTS` in order): each costs ~12-20 ms of CPU.
    weight : float
        Weight of the second recognizer in a text's score, 0-1.
    """

    below: float = 0.7
    above: float = 0.15
    regions: int = 2
    crops: int = 2
    weight: float = 0.3


@dataclass(frozen=True)
class PlateResult:
    """One plate read in an image.

    Attributes
    ----------
    text : str
        Normalized plate text: uppercase ``0-9A-Z``, no spaces or separators.
    confidence : float
        Overall confidence, 0-1 (mean character probability, scaled down for short reads).
    char_confidences : tuple of float
        Probability of each character of ``text``, 0-1.
    box : tuple of int
        ``(x, y, w, h)`` of the plate text in image pixels, inside the image.
    region : str or None
        Issuing US state (two-letter postal code, ``CA``) or European country (ISO 3166-1 alpha-2,
        ``DE``) when it can be told (:mod:`rtcc.plates.region`); else ``None``.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    box: tuple[int, int, int, int]
    region: str | None = None


FORMATS: tuple[str, ...] = ("LLDDDLL", "LLDDLLL")
"""Plate layouts (``L`` letter, ``D`` digit) whose letter / digit confusions are corrected: the
``AA999AA`` plates of Slovakia, Italy and France (without separators) and the ``AA99AAA`` ones of
Great Britain."""

_AS_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}


def fix_layout(text: str, max_changes: int = 2) -> str:
    """Turn look-alike digits into letters in a plate read that fits one of :data:`FORMATS`.

    A read fits a layout when its digit positions hold digits and its letter positions letters or
    look-alike digits (``0``/``O``, ``1``/``I``, ``2``/``Z``, ``5``/``S``, ``6``/``G``, ``8``/``B``), at most
    ``max_changes`` of them; the first layout that fits wins. Other reads are returned as they are.
    Letters are never turned into digits: a letter in a digit position means another layout (a
    personalised plate), not a misread.

    Examples
    --------
    >>> fix_layout("BA3020Z")
    'BA302OZ'
    >>> fix_layout("0Y09FEU")
    'OY09FEU'
    >>> fix_layout("KMB0RAK")
    'KMB0RAK'
    >>> fix_layout("7KDR582")
    '7KDR582'
    """
    for layout in FORMATS:
        if len(text) != len(layout):
            continue
        out = []
        for c, kind in zip(text, layout, strict=True):
            if kind == "L":
                out.append(c if c.isalpha() else _AS_LETTER.get(c, ""))
            else:
                out.append(c if c.isdigit() else "")
        fixed = "".join(out)
        if len(fixed) == len(text) and sum(a != b for a, b in zip(text, fixed, strict=True)) <= max_changes:
            return fixed
    return text


_FOLD = str.maketrans("IOQDZSBG", "10002586")


def _fold(text: str) -> str:
    """``text`` with look-alike letters as their digits (``I`` -> ``1``, ``O``/``Q``/``D`` -> ``0`` ...)."""
    return text.translate(_FOLD)


def enhance(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Local contrast equalisation (CLAHE, clip 3, 8x8 tiles, on the lightness of Lab) of a BGR image.

    The detector can miss a dim or low-contrast plate entirely (no text probability on it) when the
    rest of the frame is bright; equalising the contrast locally brings it back.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), dtype=np.uint8)


def _clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    x1, y1 = min(max(x + w, x0 + 1), width), min(max(y + h, y0 + 1), height)
    return x0, y0, x1 - x0, y1 - y0


def grow(quad: npt.NDArray[np.float32], pad_x: float, pad_y: float) -> npt.NDArray[np.float32]:
    """Grow a (tl, tr, br, bl) quad along its own axes by ``pad_x`` / ``pad_y`` times its height."""
    tl, tr, br, bl = quad
    h = 0.5 * (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr))
    ux = (tr - tl) / max(float(np.linalg.norm(tr - tl)), 1e-6)
    uy = (bl - tl) / max(float(np.linalg.norm(bl - tl)), 1e-6)
    dx, dy = ux * pad_x * h, uy * pad_y * h
    return np.array([tl - dx - dy, tr + dx - dy, br + dx + dy, bl - dx + dy], dtype=np.float32)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min(a[2] * a[3], b[2] * b[3]))


class PlateReader:
    """Detects and reads licence plates in BGR images.

    Parameters
    ----------
    detector : TextDetector
        Text-region detector.
    ocr : PlateOCR
        Plate-text recognizer.
    min_confidence : float
        Plates scoring below this (0-1) are dropped.
    min_text_px : int
        Regions lower than this many pixels are not read (too small to hold readable characters).
    pad_x, pad_y : float
        Each region is grown by this fraction of its height left and right (``pad_x``) and above and
        below (``pad_y``) before reading. 0 by default: the recognizer is trained on the detector's own
        margins, and padding lowered tune accuracy (US 50 -> 37 of 72 at ``pad_x`` = 0.15).
    variants : sequence of (float, float)
        Test-time augmentation: each region is also read grown by these extra ``(pad_x, pad_y)``
        (negative shrinks), and the text with the highest summed confidence over all readings wins;
        its confidence is that sum divided by the number of readings, so a text only some crops
        agree on scores lower. Empty: one reading per region.
    region_reader : RegionReader or None
        Tells the state of the best ``region_plates`` plates; ``None``: never told.
    region_plates : int
        How many plates (best first) get a region read (each costs a few general-OCR crops).
    second : SecondReader or None
        The second recognizer of :class:`Fusion` (its ``plate_probs``: the general recognizer
        through the plate alphabet, or a second plate recognizer); ``None``: the plate recognizer alone.
    fusion : Fusion
        When the second recognizer is used, and how its readings are weighed.
    rescue : bool
        When no plate is read, look again closer: detect in 2 x 2 overlapping tiles of the
        contrast-equalised image (:func:`enhance`) and read those regions. Costs four detector
        passes, on those images only.
    edge : (float, float) or None
        Growth of the crop that checks the best region for a character cut off at its edge (needs
        ``second``; :meth:`_extend`); ``None``: no check.
    precise : TextDetector or None
        With a fast, less exact ``detector`` (bfloat16, :mod:`rtcc.plates.backend`): the float
        detector, which detects again when the fast pass reads nothing or its best plate's
        confidence is below ``fusion.below`` (the same "uncertain" line the second reader uses);
        that reading replaces the first.
    """

    def __init__(
        self,
        detector: TextDetector,
        ocr: PlateOCR,
        min_confidence: float = 0.3,
        min_text_px: int = 8,
        pad_x: float = 0.0,
        pad_y: float = 0.0,
        variants: Sequence[tuple[float, float]] = VARIANTS,
        region_reader: RegionReader | None = None,
        region_plates: int = 1,
        second: SecondReader | None = None,
        fusion: Fusion = Fusion(),
        rescue: bool = True,
        edge: tuple[float, float] | None = EDGE,
        precise: TextDetector | None = None,
    ) -> None:
        self.detector = detector
        self.precise = precise
        self.ocr = ocr
        self.min_confidence = min_confidence
        self.min_text_px = min_text_px
        self.pad_x = pad_x
        self.pad_y = pad_y
        self.variants = [(0.0, 0.0), *variants]
        self.region_reader = region_reader
        self.region_plates = region_plates
        self.second = second
        self.fusion = fusion
        self.rescue = rescue
        self.edge = edge
        if rescue:
            # OpenCV fills its Lab conversion tables on first use (~0.1 s): at load, not in a read
            enhance(np.zeros((1, 1, 3), np.uint8))

    @classmethod
    def load(
        cls,
        threads: int = 1,
        fast: bool = False,
        regions: bool = True,
        second: bool = True,
        rescue: bool = True,
        second_model: Path | None = None,
        backend: Backend | Literal["auto"] = "auto",
    ) -> PlateReader:
        """Load the shipped models (``threads`` ONNX Runtime threads per model; 1 = one core).

        ``fast`` uses the int8 detector: more images per second, fewer plates read (see
        ``rtcc/plates/models/MODEL_CARD.md``). ``regions`` uses the general recognizer to tell the
        state (:mod:`rtcc.plates.region`); ``second`` re-reads uncertain plates (:class:`Fusion`) with
        ``second_model``. ``rescue`` looks again closer when nothing is read (4 more detector
        passes on such images: turn it off where most images hold no plate, e.g. sampled video).
        ``second_model``: the plate recognizer (:class:`~rtcc.plates.ocr.PlateOCR` format) that re-reads
        uncertain plates; default the shipped fine-tuned one (``SECOND_MODEL``, session 7; before it, the
        general recognizer re-read them); the general recognizer only tells the state.
        ``backend="openvino"`` runs the detector in bfloat16 (:mod:`rtcc.plates.backend`) and keeps
        the float one for the uncertain images (``precise``); ``"auto"``: OpenVINO where the CPU
        computes bfloat16 natively, else ONNX Runtime.
        """
        model = DET_MODEL_INT8 if fast else DET_MODEL
        chosen = resolve(backend)
        # session 8: OpenVINO compiles a frame size on its own once seen 3 times (the same outputs,
        # ~30 % less detector time), and runs the float detector and the PP-OCR recognizers in
        # float32 (the same reads as ONNX Runtime, less CPU): MODEL_CARD.md, "Session 8"
        static = STATIC_AFTER if chosen == "openvino" else None
        det = TextDetector(threads=threads, model=model, backend=chosen, static_after=static)
        precise = (
            TextDetector(threads=threads, model=model, backend=chosen, precision="f32", static_after=static)
            if chosen != "onnxruntime"
            else None
        )
        general = TextRecognizer(threads=threads, backend=chosen) if regions else None
        region_reader = RegionReader(general) if regions and general is not None else None
        # session 7: the fine-tuned plate recognizer re-reads (MODEL_CARD.md); the general one tells the state
        reread = PlateOCR(second_model or SECOND_MODEL, threads=threads, backend=chosen) if second else None
        return cls(
            det,
            PlateOCR(threads=threads),
            region_reader=region_reader,
            second=reread if second else None,
            rescue=rescue,
            precise=precise,
        )

    def _candidates(self, regions: list[TextRegion]) -> list[TextRegion]:
        out = []
        for r in regions:
            _, _, w, h = r.box
            if h >= self.min_text_px and h * 1.2 <= w <= h * 16:
                out.append(r)
        return out

    @staticmethod
    def _vote(readings: Sequence[Reading]) -> tuple[str, float, tuple[float, ...]] | None:
        """Combine the readings of one region's crops: ``(text, confidence, char confidences)``."""
        totals: dict[str, float] = {}
        chars: dict[str, tuple[float, tuple[float, ...]]] = {}
        for reading in readings:
            text = normalize_plate(reading.text)
            if len(text) < 2 or len(text) != len(reading.char_confidences):
                continue
            conf = float(np.mean(reading.char_confidences)) * min(1.0, len(text) / MIN_CHARS)
            totals[text] = totals.get(text, 0.0) + conf
            if conf > chars.get(text, (-1.0, ()))[0]:
                chars[text] = (conf, reading.char_confidences)
        if not totals:
            return None
        text = max(totals, key=lambda t: totals[t])
        return text, totals[text] / len(readings), chars[text][1]

    def _to_reread(self, votes: Sequence[tuple[str, float, tuple[float, ...]] | None]) -> list[int]:
        """Indices of the regions the second recognizer re-reads (:class:`Fusion`), best first."""
        if self.second is None:
            return []
        conf = [v[1] if v is not None else 0.0 for v in votes]
        order = sorted(range(len(votes)), key=lambda i: -conf[i])
        if not order or conf[order[0]] >= self.fusion.below:
            return []
        out = []
        for i in order:
            v = votes[i]
            if v is not None and v[1] >= self.fusion.above and not is_state_name(fix_layout(v[0])):
                out.append(i)
        return out[: self.fusion.regions]

    def _reread(
        self,
        crops: Sequence[npt.NDArray[np.uint8]],
        probs: Sequence[npt.NDArray[np.float32]],
        readings: Sequence[Reading],
    ) -> tuple[str, float, tuple[float, ...]] | None:
        """One region re-read by both recognizers (:class:`Fusion`): ``(text, confidence, chars)``."""
        assert self.second is not None
        second = [self.second.plate_probs(c) for c in crops[: self.fusion.crops]]
        reads = [*readings, *(decode(p) for p in second)]
        best: tuple[float, str] | None = None
        for text in sorted({normalize_plate(r.text) for r in reads}):
            if not 2 <= len(text) <= 10:
                continue
            w = self.fusion.weight
            score = (1 - w) * text_confidence(probs, text) + w * text_confidence(second, text)
            if best is None or score > best[0]:
                best = (score, text)
        if best is None:
            return None
        score, text = best
        # per-character confidences of the most confident crop that read the chosen text
        chars = max(
            (r.char_confidences for r in reads if r.text == text),
            key=lambda c: float(np.mean(c)),
            default=(score,) * len(text),
        )
        return text, score * min(1.0, len(text) / MIN_CHARS), chars

    def _extend(
        self, image: npt.NDArray[np.uint8], region: TextRegion, vote: tuple[str, float, tuple[float, ...]]
    ) -> tuple[str, float, tuple[float, ...]]:
        """Add a character cut off at the region's edge when a wider crop shows it (:attr:`edge`).

        The detector's region sometimes ends just before a plate's first or last character (a thin
        ``I`` or ``1``, a character touching the frame); the tight crops then agree on the shorter
        text. The region grown by :attr:`edge` is read by both recognizers: when both read the same
        text up to look-alikes (:func:`_fold`), and it is the voted text with one more character at one
        end, that character is added (the recognizers' choice weighed as in :class:`Fusion`).
        """
        assert self.second is not None and self.edge is not None
        text, conf, chars = vote
        crop = rectify(image, grow(region.quad, self.pad_x + self.edge[0], self.pad_y + self.edge[1]))
        p1 = self.ocr.probs([crop])[0]
        r1 = decode(p1)
        t1 = normalize_plate(r1.text)
        if len(t1) != len(text) + 1 or len(t1) != len(r1.char_confidences):
            return vote
        if _fold(t1[:-1]) == _fold(text):
            at_end, extra = True, r1.char_confidences[-1]
        elif _fold(t1[1:]) == _fold(text):
            at_end, extra = False, r1.char_confidences[0]
        else:
            return vote
        # only now the (slower) second recognizer: it must read the same, up to look-alikes
        p2 = self.second.plate_probs(crop)
        t2 = normalize_plate(decode(p2).text)
        if _fold(t1) != _fold(t2):
            return vote
        ends = {text + t1[-1], text + t2[-1]} if at_end else {t1[0] + text, t2[0] + text}
        w = self.fusion.weight

        def score(t: str) -> float:
            return (1 - w) * text_confidence([p1], t) + w * text_confidence([p2], t)

        best = max(sorted(ends), key=score)
        new_chars = (*chars, extra) if at_end else (extra, *chars)
        return best, conf, new_chars

    def read(self, image: npt.NDArray[np.uint8]) -> list[PlateResult]:
        """Find and read the plates of one image.

        Parameters
        ----------
        image : ndarray, shape (H, W, 3), uint8
            BGR image (as from ``cv2.imread``).

        Returns
        -------
        list of PlateResult
            Best plate first; empty when no plate was found.

        Raises
        ------
        ValidationFailed
            The array is not a non-empty (H, W, 3) uint8 image.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
            raise ValidationFailed(f"expected a non-empty (H, W, 3) uint8 BGR image, got {image.shape}")
        all_regions = self.detector(image)
        kept = self._read_regions(image, all_regions)
        if self.precise is not None and (not kept or kept[0][0].confidence < self.fusion.below):
            all_regions = self.precise(image)
            kept = self._read_regions(image, all_regions)
        if not kept and self.rescue:
            all_regions = self._rescue_regions(image)
            kept = self._read_regions(image, all_regions)
        if self.region_reader is not None:
            for i, (p, region) in enumerate(kept[: self.region_plates]):
                kept[i] = (replace(p, region=self.region_reader(image, region, all_regions)), region)
        return [p for p, _ in kept]

    def _rescue_regions(self, image: npt.NDArray[np.uint8]) -> list[TextRegion]:
        """Text regions of a closer look: 2 x 2 overlapping tiles of the contrast-equalised image.

        Each tile is detected at the detector's own size, i.e. about twice as large as in the first
        pass. Regions found twice (in the overlaps) are kept once (the higher score).
        """
        enhanced = enhance(image)
        height, width = image.shape[:2]
        tw, th = min(width, round(width * 0.625)), min(height, round(height * 0.625))
        found: list[TextRegion] = []
        for x0 in (0, width - tw):
            for y0 in (0, height - th):
                offset = np.array([x0, y0], dtype=np.float32)
                tile = np.ascontiguousarray(enhanced[y0 : y0 + th, x0 : x0 + tw])
                found += [TextRegion(r.quad + offset, r.score) for r in self.detector(tile)]
        kept: list[TextRegion] = []
        for r in sorted(found, key=lambda r: -r.score):
            if all(_overlap(r.box, q.box) < 0.7 for q in kept):
                kept.append(r)
        return kept

    def _read_regions(
        self, image: npt.NDArray[np.uint8], all_regions: list[TextRegion]
    ) -> list[tuple[PlateResult, TextRegion]]:
        """Read the plate candidates among ``all_regions``: results best first, duplicates removed."""
        height, width = image.shape[:2]
        regions = self._candidates(all_regions)
        crops = [
            rectify(image, grow(r.quad, self.pad_x + vx, self.pad_y + vy))
            for r in regions
            for vx, vy in self.variants
        ]
        probs = self.ocr.probs(crops)
        readings = [decode(p) for p in probs]
        k = len(self.variants)
        votes = [self._vote(readings[i * k : (i + 1) * k]) for i in range(len(regions))]
        for i in self._to_reread(votes):
            part = slice(i * k, (i + 1) * k)
            votes[i] = self._reread(crops[part], probs[part], readings[part]) or votes[i]
        if self.edge is not None and self.second is not None and votes:
            scores = [v[1] if v is not None else -1.0 for v in votes]
            i = max(range(len(votes)), key=lambda j: scores[j])
            v = votes[i]
            if v is not None and v[1] >= self.min_confidence:
                votes[i] = self._extend(image, regions[i], v)
        found: list[tuple[PlateResult, TextRegion]] = []
        for region, best in zip(regions, votes, strict=True):
            if best is None or best[1] < self.min_confidence:
                continue
            text, conf, chars = best
            text = fix_layout(text)
            if is_state_name(text):  # the state printed on the plate, read by the plate recognizer
                continue
            found.append((PlateResult(text, conf, chars, _clip_box(region.box, width, height)), region))
        found.sort(key=lambda p: -p[0].confidence)
        kept: list[tuple[PlateResult, TextRegion]] = []
        for p, region in found:
            if all(_overlap(p.box, q.box) < 0.5 for q, _ in kept):
                kept.append((p, region))
        return kept
