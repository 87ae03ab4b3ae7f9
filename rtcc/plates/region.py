"""Issuing state or country of a plate: the text printed around its number, the plate's look, its EU band.

Three kinds of evidence, tried in this order by :class:`RegionReader` (the first that tells wins):

1. **Printed name.** US plates print the state's name (often in script) or a slogan above or below the
   number. When the detector finds that text as a region of its own, it is read with the general
   PP-OCRv4 recognizer (:class:`TextRecognizer`) and matched against the names and slogans of
   :data:`US_STATES`; only a clear match (at most one edit in five letters, one state) tells.
2. **EU band.** European plates print the country's distinguishing sign (``D``, ``SK`` ...) in white
   under the circle of stars on a blue band left of the number. :func:`find_band` looks for that
   blue strip at the left end of the number's box; :class:`BandReader` reads its letters with the
   general recognizer (restricted to ``A-Z``) and maps the sign to the ISO 3166 code
   (:data:`EU_SIGNS`, ``D`` -> ``DE``) only when the band read alone and doubled agree on a known
   sign, confidently. At the sizes plates have in traffic images those letters are 5-10 px high and
   mostly unreadable: the country is then not told. A plate with a band is European: the US look
   classifier is not asked.
3. **The plate's look** (background art, colours, layout): :class:`StateClassifier`, a small CNN on
   the whole plate (grown from the number's box, :func:`plate_box`), trained on the ``seg_and_ocr``
   US crops (``training/plates/state_train.py``); it tells a state only when its calibrated
   probability reaches the threshold chosen on ``val`` (stored in the model), and only for numbers
   shaped like a US plate's (at most 3.2 times as wide as tall). **Off by default**
   (``RegionReader(..., state_model=STATE_MODEL)`` turns it on): on the traffic images of the tune
   set it told wrong states too often (see the model card).

US states are two-letter postal codes (``CA``), European countries ISO 3166-1 alpha-2 (``DE``), so
``DE`` is Delaware or Germany: the camera's location tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from rtcc.plates.backend import Backend, ModelSession, ort_session, session
from rtcc.plates.detect import MODEL_DIR, TextRegion
from rtcc.plates.ocr import ALPHABET, REC_H, REC_MAX_W, rec_input, rectify

GENERAL_REC_MODEL = MODEL_DIR / "ppocrv4_rec.onnx"
STATE_MODEL = MODEL_DIR / "plate_state.onnx"
STATE_H, STATE_W = 32, 64
"""Input size (pixels) of the plate-state classifier: a whole US plate (about 2:1)."""


def state_input(plate: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A BGR plate crop as the state classifier's input: ``(3, STATE_H, STATE_W)`` BGR in [0, 1]."""
    r = cv2.resize(plate, (STATE_W, STATE_H), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray((r.astype(np.float32) / 255.0).transpose(2, 0, 1))


US_STATES: dict[str, str] = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "FLORIDA": "FL", "GEORGIA": "GA",
    "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL", "INDIANA": "IN", "IOWA": "IA",
    "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD",
    "MASSACHUSETTS": "MA", "MICHIGAN": "MI", "MINNESOTA": "MN", "MISSISSIPPI": "MS",
    "MISSOURI": "MO", "MONTANA": "MT", "NEBRASKA": "NE", "NEVADA": "NV", "NEWHAMPSHIRE": "NH",
    "NEWJERSEY": "NJ", "NEWMEXICO": "NM", "NEWYORK": "NY", "NORTHCAROLINA": "NC",
    "NORTHDAKOTA": "ND", "OHIO": "OH", "OKLAHOMA": "OK", "OREGON": "OR", "PENNSYLVANIA": "PA",
    "RHODEISLAND": "RI", "SOUTHCAROLINA": "SC", "SOUTHDAKOTA": "SD", "TENNESSEE": "TN",
    "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA",
    "WESTVIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY",
    "WASHINGTONDC": "DC", "DISTRICTOFCOLUMBIA": "DC",
    # slogans printed instead of, or beside, the name
    "SUNSHINESTATE": "FL", "GRANDCANYONSTATE": "AZ", "LANDOFLINCOLN": "IL", "GARDENSTATE": "NJ",
    "EMPIRESTATE": "NY", "LONESTARSTATE": "TX", "LIVEFREEORDIE": "NH", "FIRSTINFLIGHT": "NC",
    "FAMOUSPOTATOES": "ID", "LANDOFENCHANTMENT": "NM", "SHOWMESTATE": "MO",
    "EVERGREENSTATE": "WA", "AMERICASDAIRYLAND": "WI", "PEACHSTATE": "GA",
    "TAXATIONWITHOUTREPRESENTATION": "DC",
}  # fmt: skip
"""Printed name or slogan (letters only, uppercase) -> the state's two-letter postal code (as NCIC)."""


def _allowance(name: str) -> int:
    """Edits a printed ``name`` may be misread by: one per five letters, and at most half the
    letters it adds to a shorter name inside it (``WASHINGTON`` read must not match ``WASHINGTONDC``)."""
    inner = [len(other) for other in US_STATES if other != name and other in name]
    return min(len(name) // 5, (len(name) - max(inner)) // 2) if inner else len(name) // 5


_ALLOWANCE = {name: _allowance(name) for name in US_STATES}


@dataclass(frozen=True)
class TextRead:
    """A general-recognizer reading: text and mean character probability (0-1)."""

    text: str
    confidence: float


def _batch(crops: list[npt.NDArray[np.uint8]]) -> tuple[npt.NDArray[np.float32], list[int]]:
    """BGR crops as one recognizer batch: height :data:`REC_H`, widths up to :data:`REC_MAX_W`, padded."""
    widths = [min(REC_MAX_W, max(16, int(np.ceil(REC_H * c.shape[1] / c.shape[0])))) for c in crops]
    x = np.zeros((len(crops), 3, REC_H, max(widths)), np.float32)
    for i, (c, w) in enumerate(zip(crops, widths, strict=True)):
        r = cv2.resize(c, (w, REC_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x[i, :, :, :w] = (r / 127.5 - 1.0).transpose(2, 0, 1)
    return x, widths


class TextRecognizer:
    """PP-OCRv4 general text recognizer (CTC over the PaddleOCR character list) on the CPU.

    ``backend="openvino"``: OpenVINO in float32 (the same outputs to ~1e-5, about half the CPU time
    of ONNX Runtime for this network; ``rtcc/plates/models/MODEL_CARD.md``, session 8).
    """

    def __init__(
        self, model: Path = GENERAL_REC_MODEL, threads: int = 1, backend: Backend = "onnxruntime"
    ) -> None:
        self.sess: ModelSession = (
            ort_session(model, threads)
            if backend == "onnxruntime"
            else session(model, threads, backend, precision="f32")
        )
        self.input_name = self.sess.get_inputs()[0].name
        chars = self.sess.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.chars = ["", *chars, " "]
        index = {c: i for i, c in enumerate(self.chars) if c}
        # blank, 0-9 A-Z (ALPHABET), a-z: the columns plate_probs keeps
        self._plate_cols = [0, *(index[c] for c in ALPHABET + ALPHABET[10:].lower())]
        # each letter A-Z with its lower-case and full-width forms (a lone letter is often read full-width)
        self._letter_cols = [
            [index[c] for c in (u, u.lower(), chr(0xFF21 + k), chr(0xFF41 + k)) if c in index]
            for k, u in enumerate(ALPHABET[10:])
        ]

    def plate_probs(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The recognizer's CTC output for one BGR crop, seen through the plate alphabet.

        Returns an array of shape (T, 1 + 36): column 0 is the blank plus every character that is
        not ``0-9``, ``A-Z`` or ``a-z`` (separators, CJK, punctuation: "no plate character here"),
        then ``0-9`` and ``A-Z`` with each lower-case letter's probability added to its capital, in
        the order of :data:`rtcc.plates.ocr.ALPHABET`. Rows sum to 1. One crop per run (no padding).
        """
        x = rec_input(crop)[None]
        p = self.sess.run(None, {self.input_name: x})[0][0]
        kept = p[:, self._plate_cols]
        out = np.zeros((p.shape[0], 1 + len(ALPHABET)), np.float32)
        out[:, 1:] = kept[:, 1 : 1 + len(ALPHABET)]
        out[:, 11:] += kept[:, 1 + len(ALPHABET) :]
        out[:, 0] = kept[:, 0] + np.clip(1.0 - kept.sum(axis=1), 0.0, None)
        return out

    def letter_probs(self, crops: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        """The recognizer's CTC output for BGR crops (one batch) seen through the letters ``A-Z``.

        Returns one array per crop of shape (T, 1 + 26): column 0 is "no letter" (the blank and every
        character that is not a letter), then ``A-Z``, each with its lower-case and full-width forms
        added. Rows sum to 1; only the columns of the crop's own width are kept.
        """
        if not crops:
            return []
        x, widths = _batch(crops)
        probs = self.sess.run(None, {self.input_name: x})[0]
        steps = probs.shape[1] / x.shape[3]
        out = []
        for p, w in zip(probs, widths, strict=True):
            p = p[: max(1, round(w * steps))]
            letters = np.stack([p[:, cols].sum(axis=1) for cols in self._letter_cols], axis=1)
            none = np.clip(1.0 - letters.sum(axis=1, keepdims=True), 0.0, None)
            out.append(np.concatenate([none, letters], axis=1).astype(np.float32))
        return out

    def __call__(self, crops: list[npt.NDArray[np.uint8]]) -> list[TextRead]:
        """Read BGR crops (each resized to height 48, up to 320 wide; one batch)."""
        if not crops:
            return []
        x, _ = _batch(crops)
        probs = self.sess.run(None, {self.input_name: x})[0]
        out = []
        for p in probs:
            idx = p.argmax(axis=1)
            chars, confs = [], []
            for t, k in enumerate(idx):
                if k and (t == 0 or k != idx[t - 1]):
                    chars.append(self.chars[int(k)] if k < len(self.chars) else "")
                    confs.append(float(p[t, k]))
            out.append(TextRead("".join(chars).strip(), float(np.mean(confs)) if confs else 0.0))
        return out


def _approx_substring_distance(needle: str, hay: str) -> int:
    """Fewest edits turning ``needle`` into some substring of ``hay`` (semi-global Levenshtein)."""
    prev = [0] * (len(hay) + 1)
    for i, a in enumerate(needle, 1):
        cur = [i] + [0] * len(hay)
        for j, b in enumerate(hay, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b))
        prev = cur
    return min(prev)


def us_state(text: str) -> str | None:
    """The state named in ``text`` (a printed name or slogan), or ``None``.

    Letters only are compared; a name of ``n`` letters may be misread by ``n // 5`` edits (names of
    four letters must be read exactly), a name holding a shorter one by at most half the letters
    it adds (so ``WASHINGTON`` is never ``WASHINGTON DC``). A name inside a longer matching one
    counts as part of it (``WEST VIRGINIA`` is WV, not VA too); two different states matching gives
    ``None``.

    Examples
    --------
    >>> us_state("Illinois")
    'IL'
    >>> us_state("GRAND CANYON STATE")
    'AZ'
    >>> us_state("Califomia")
    'CA'
    >>> us_state("2012") is None
    True
    """
    letters = re.sub(r"[^A-Z]", "", text.upper())
    if len(letters) < 4:
        return None
    names = [
        name
        for name, allowed in _ALLOWANCE.items()
        if len(letters) >= len(name) - allowed and _approx_substring_distance(name, letters) <= allowed
    ]
    # a name inside a longer matched one is part of it (VIRGINIA in WESTVIRGINIA, KANSAS in ARKANSAS)
    found = {US_STATES[n] for n in names if not any(n != m and n in m for m in names)}
    return found.pop() if len(found) == 1 else None


_LOOKALIKE_LETTERS = str.maketrans("0125678", "OIZSGTB")


def is_state_name(plate_text: str) -> bool:
    """Whether a plate read spells a state name or slogan of five or more letters, not a number.

    Digits are read as their look-alike letters (``NEWY0RK`` is NEW YORK, ``TEXA5`` is TEXAS); the
    whole read must then be the name. Shorter names (``OHIO``, ``IOWA``, ``UTAH``) are left alone:
    they are plausible personalised plates.

    Examples
    --------
    >>> is_state_name("TEXAS"), is_state_name("NEWY0RK"), is_state_name("TEXAS1"), is_state_name("OHIO")
    (True, True, False, False)
    """
    return _STATE_NAMES_5.get(plate_text.upper().translate(_LOOKALIKE_LETTERS)) is not None


_STATE_NAMES_5 = {name: code for name, code in US_STATES.items() if len(name) >= 5}


def _box_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min(a[2] * a[3], b[2] * b[3]))


def nearby(plate: TextRegion, regions: list[TextRegion]) -> list[TextRegion]:
    """Text regions around a plate's number where a state name or slogan may be printed.

    Their centre lies within half the number's width left or right of it and within 2.5 number heights
    above or below it; they are 0.2-1.0 times as tall as the number, at least twice as wide as tall
    (a name of four or more letters) and do not overlap the number much.
    """
    x, y, w, h = plate.box
    out = []
    for r in regions:
        rx, ry, rw, rh = r.box
        cx, cy = rx + rw / 2, ry + rh / 2
        if (
            x - 0.5 * w <= cx <= x + 1.5 * w
            and y - 2.5 * h <= cy <= y + 3.5 * h
            and 0.2 * h <= rh <= 1.0 * h
            and rw >= 2.0 * rh
            and _box_overlap(plate.box, r.box) < 0.5
        ):
            out.append(r)
    return out


PLATE_GROW = (0.15, 0.35, 0.1, 0.25)
"""Growth ``(left, top, right, bottom)`` of the number's box, in its heights, to the whole US plate
(the state's name above, the slogan below). On the US tune images the end-to-end ground-truth plate
boxes are about the number's box grown by (0, 0.12, -0.06, 0) heights (medians), and those boxes are
tight: the classifier was trained on whole plates with a +-15 % box jitter."""


def plate_box(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The whole plate around a number's ``(x, y, w, h)`` box (:data:`PLATE_GROW`), inside the image."""
    x, y, w, h = box
    left, top, right, bottom = PLATE_GROW
    x0, y0 = max(0, round(x - left * h)), max(0, round(y - top * h))
    x1, y1 = min(shape[1], round(x + w + right * h)), min(shape[0], round(y + h + bottom * h))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


@dataclass(frozen=True)
class StateGuess:
    """The look classifier's best state and its calibrated probability (0-1)."""

    state: str
    probability: float


class StateClassifier:
    """US state from a whole-plate crop (``plate_state.onnx``: a small CNN, softmax with temperature).

    The model's metadata holds the state list (``states``, output order), the temperature it was
    calibrated with on ``val`` and the abstain ``threshold`` chosen on ``val`` (one harshly degraded
    view per crop) so that the states it tells there are right at least 95 % of the time.

    Parameters
    ----------
    model : Path
        The ONNX model (input ``(n, 3, STATE_H, STATE_W)`` BGR in [0, 1], output ``(n, len(states))``
        probabilities).
    threads : int
        ONNX Runtime intra-op threads.
    threshold : float or None
        Tell a state only when its probability is at least this; ``None``: the model's own.
    """

    def __init__(self, model: Path = STATE_MODEL, threads: int = 1, threshold: float | None = None) -> None:
        self.sess = ort_session(model, threads)
        meta = self.sess.get_modelmeta().custom_metadata_map
        self.states: list[str] = meta["states"].split(",")
        self.threshold = float(meta["threshold"]) if threshold is None else threshold
        self.input_name = self.sess.get_inputs()[0].name

    def probs(self, plates: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Probabilities ``(len(plates), len(states))`` for BGR whole-plate crops (rows sum to 1)."""
        if not plates:
            return np.zeros((0, len(self.states)), np.float32)
        x = np.stack([state_input(p) for p in plates])
        return np.asarray(self.sess.run(None, {self.input_name: x})[0], dtype=np.float32)

    def guess(self, plate: npt.NDArray[np.uint8]) -> StateGuess:
        """The most probable state of one BGR whole-plate crop, told or not."""
        p = self.probs([plate])[0]
        k = int(p.argmax())
        return StateGuess(self.states[k], float(p[k]))

    def __call__(self, plate: npt.NDArray[np.uint8]) -> str | None:
        """The state of one BGR whole-plate crop when its probability reaches the threshold, else ``None``."""
        g = self.guess(plate)
        return g.state if g.probability >= self.threshold else None


EU_SIGNS: dict[str, str] = {
    "A": "AT", "B": "BE", "BG": "BG", "CY": "CY", "CZ": "CZ", "D": "DE", "DK": "DK", "E": "ES",
    "EST": "EE", "F": "FR", "FIN": "FI", "GR": "GR", "H": "HU", "HR": "HR", "I": "IT", "IRL": "IE",
    "L": "LU", "LT": "LT", "LV": "LV", "M": "MT", "NL": "NL", "P": "PT", "PL": "PL", "RO": "RO",
    "S": "SE", "SK": "SK", "SLO": "SI", "IS": "IS", "FL": "LI", "N": "NO", "GB": "GB",
}  # fmt: skip
"""Distinguishing sign printed on the EU band (EU and EEA members, and ``GB`` as printed before 2021)
-> ISO 3166-1 alpha-2 country code."""


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of ``True`` in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _closed_runs(mask: npt.NDArray[np.bool_], gap: float) -> list[tuple[int, int]]:
    """Runs of ``True`` (:func:`_runs`) with gaps of at most ``gap`` between them closed."""
    out: list[tuple[int, int]] = []
    for a, b in _runs(mask):
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def find_band(
    image: npt.NDArray[np.uint8], box: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """The blue EU band at the left end of a number's ``(x, y, w, h)`` box, as ``(x, y, w, h)``, or ``None``.

    Pixels are blue when their hue is 190-260 degrees (OpenCV 95-130), saturation >= 70 and value >=
    40 (of 255). In the strip from 1.6 number-heights left of the box to 1 height into it (rows of
    the box, grown by 0.15 heights), columns at least 45 % blue form runs (gaps up to 0.3 heights, the
    letters, closed); the rightmost run at least
    0.2 heights wide that ends no more than 0.5 heights left of the box is the band (a longer run, the
    band on a blue car, over 1 height, is cut to its rightmost 0.55 heights). Its rows are the longest
    run of rows at least 30 % blue within those columns (gaps up to 0.3 heights closed), at least 0.5
    heights tall. A band is narrow: at most 0.85 number-heights wide and 0.7 times as wide as tall (on
    the tune images EU bands were 0.3-0.7 times as wide as tall; blue art on US plates, wider).
    """
    x, y, _, h = box
    if h < 4:
        return None
    x0, x1 = max(0, int(x - 1.6 * h)), min(image.shape[1], int(x + 1.0 * h))
    y0, y1 = max(0, int(y - 0.15 * h)), min(image.shape[0], int(y + 1.15 * h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    hsv = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    blue = (hue >= 95) & (hue <= 130) & (sat >= 70) & (val >= 40)
    runs = [r for r in _closed_runs(blue.mean(axis=0) >= 0.45, 0.3 * h) if r[1] - r[0] >= 0.2 * h]
    if not runs or x0 + runs[-1][1] < x - 0.5 * h:
        return None
    a, b = runs[-1]
    if b - a > 1.0 * h:
        a = b - round(0.55 * h)
    rows = _closed_runs(blue[:, a:b].mean(axis=1) >= 0.3, 0.3 * h)
    if not rows:
        return None
    ra, rb = max(rows, key=lambda r: r[1] - r[0])
    if rb - ra < 0.5 * h or b - a > 0.85 * h or b - a > 0.7 * (rb - ra):
        return None
    return x0 + a, y0 + ra, b - a, rb - ra


BAND_TOP = 0.6
"""The band's letters are read from its rows below this fraction of its height."""


def band_letters(
    image: npt.NDArray[np.uint8], band: tuple[int, int, int, int], top: float, twice: bool = False
) -> npt.NDArray[np.uint8]:
    """The lower part of a band (from ``top`` of its height) as dark letters on light, BGR.

    The red channel, inverted (white letters are bright in red, the blue band dark) and stretched to
    0-255, with a 2-4 px border; ``twice`` puts two copies side by side (the general recognizer often
    reads a lone letter as nothing, but reads ``DD`` in a doubled crop).
    """
    bx, by, bw, bh = band
    crop = image[by + int(top * bh) : by + bh, bx : bx + bw]
    inverted = 255.0 - crop[..., 2].astype(np.float32)
    lo, hi = (float(inverted.min()), float(inverted.max())) if inverted.size else (0.0, 0.0)
    stretched = np.rint((inverted - lo) * (255.0 / max(hi - lo, 1.0))).astype(np.uint8)
    grey = np.pad(stretched, ((2, 2), (4, 4)), mode="edge")
    if twice:
        grey = np.hstack([grey, grey])
    return np.repeat(grey[:, :, None], 3, axis=2)


def read_letters(probs: npt.NDArray[np.float32]) -> tuple[str, float]:
    """Greedy CTC reading of a letter output (:meth:`TextRecognizer.letter_probs`): the text and its
    least confident character's probability (0 when nothing is read)."""
    idx = probs.argmax(axis=1)
    chars, confs = [], []
    for t, k in enumerate(idx):
        if k and (t == 0 or k != idx[t - 1]):
            chars.append(ALPHABET[9 + int(k)])
            confs.append(float(probs[t, k]))
    return "".join(chars), min(confs) if confs else 0.0


def _once(text: str) -> str:
    """A doubled crop's reading, once: ``SKSK`` -> ``SK``; other readings as they are."""
    half = len(text) // 2
    return text[:half] if len(text) % 2 == 0 and text[:half] == text[half:] else text


class BandReader:
    """The country of a European plate from the sign on its blue band; ``None`` when unsure.

    The band's letters (its rows below :data:`BAND_TOP` of its height) are read twice in one batch,
    alone and doubled (:func:`band_letters`). The country is told when at least ``agree`` readings
    give the same sign of :data:`EU_SIGNS` with every character at least ``min_confidence``, and no
    reading gives another text with confidence at least ``conflict``.
    Bands lower than ``min_height`` pixels are not read (letters under ~9 px: on the tune images the
    recognizer read none of them, and each reading costs 5-15 ms).
    """

    def __init__(
        self,
        recognizer: TextRecognizer,
        min_confidence: float = 0.85,
        agree: int = 2,
        conflict: float = 0.5,
        min_height: int = 28,
    ) -> None:
        self.recognizer = recognizer
        self.min_height = min_height
        self.min_confidence = min_confidence
        self.agree = agree
        self.conflict = conflict

    def readings(
        self, image: npt.NDArray[np.uint8], band: tuple[int, int, int, int]
    ) -> list[tuple[str, float]]:
        """The readings ``(sign, confidence)`` of a band, alone and doubled (the doubled one taken once)."""
        crops = [band_letters(image, band, BAND_TOP, twice) for twice in (False, True)]
        return [(_once(t), c) for t, c in map(read_letters, self.recognizer.letter_probs(crops))]

    def __call__(self, image: npt.NDArray[np.uint8], band: tuple[int, int, int, int]) -> str | None:
        """The ISO code of the country whose sign is on ``band`` (from :func:`find_band`), or ``None``."""
        if band[3] < self.min_height:
            return None
        reads = self.readings(image, band)
        sure = [t for t, c in reads if t and c >= self.min_confidence]
        if not sure:
            return None
        sign = max(set(sure), key=sure.count)
        if sure.count(sign) < self.agree or any(t and t != sign and c >= self.conflict for t, c in reads):
            return None
        return EU_SIGNS.get(sign)


class RegionReader:
    """Tells a plate's US state or European country; ``None`` when unsure.

    In order (the first that tells wins): a state name or slogan printed around the number, the
    country on an EU band (a plate with a band is not given a US state), the state from the plate's
    look (:class:`StateClassifier`; only for numbers shaped like a US plate's, ``max_aspect``).

    Parameters
    ----------
    recognizer : TextRecognizer
        General text recognizer (names around the number, the band's letters).
    max_regions : int
        At most this many regions around a plate are read (nearest to the detector's order first).
    state_model : Path or None
        The look classifier's ONNX model (:data:`STATE_MODEL`); ``None`` (the default: it did not
        meet its bar on the tune images, see the model card): states are told from printed names only.
    bands : bool
        Look for an EU band and read its country.
    max_aspect : float
        The look classifier is asked only when the number's box is at most this many times as wide as
        tall (US plates are 2:1; on the tune images their numbers' boxes were 1.6-3.1 wide per height,
        European ones 2.1-5.0, most above 3.3).
    """

    def __init__(
        self,
        recognizer: TextRecognizer,
        max_regions: int = 4,
        state_model: Path | None = None,
        bands: bool = True,
        max_aspect: float = 3.2,
    ) -> None:
        self.recognizer = recognizer
        self.max_regions = max_regions
        self.max_aspect = max_aspect
        self.states = StateClassifier(state_model) if state_model is not None else None
        self.bands = BandReader(recognizer) if bands else None

    def printed(
        self, image: npt.NDArray[np.uint8], plate: TextRegion, regions: list[TextRegion]
    ) -> str | None:
        """The state named by the text printed around the number, or ``None``."""
        around = nearby(plate, regions)[: self.max_regions]
        if not around:
            return None
        reads = self.recognizer([rectify(image, r.quad) for r in around])
        states = {s for s in (us_state(r.text) for r in reads) if s}
        return states.pop() if len(states) == 1 else None

    def __call__(
        self, image: npt.NDArray[np.uint8], plate: TextRegion, regions: list[TextRegion]
    ) -> str | None:
        """The state (``CA``) or country (``DE``) of the plate whose number is ``plate``, or ``None``."""
        told = self.printed(image, plate, regions)
        if told is not None or (self.bands is None and self.states is None):
            return told
        box = plate.box
        if self.bands is not None:
            band = find_band(image, box)
            if band is not None:
                return self.bands(image, band)
        if self.states is None or box[2] > self.max_aspect * box[3]:
            return None
        x, y, w, h = plate_box(box, image.shape)
        if w < 8 or h < 4:
            return None
        return self.states(image[y : y + h, x : x + w])
