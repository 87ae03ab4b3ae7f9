"""Issuing state of a plate, read from the text printed around its number.

US plates print the state's name (often in script) or a slogan above or below the number. When the
detector finds that text as a region of its own, it is read with the general PP-OCRv4 recognizer
(:class:`TextRecognizer`) and matched against the names and slogans of :data:`US_STATES`; only a
clear match (at most one edit in five letters, one state) is returned, otherwise ``None``.

European plates print the country's sign (``D``, ``SK`` ...) in a band left of the number; at the
sizes plates have in traffic images (number 15-30 px high) those letters are 5-10 px high, and the
general recognizer read none of them on the tune images, so the country is not told (``None``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from rtcc.plates.detect import MODEL_DIR, TextRegion, session
from rtcc.plates.ocr import ALPHABET, rectify

GENERAL_REC_MODEL = MODEL_DIR / "ppocrv4_rec.onnx"
REC_H, REC_MAX_W = 48, 320

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


class TextRecognizer:
    """PP-OCRv4 general text recognizer (CTC over the PaddleOCR character list), ONNX Runtime CPU."""

    def __init__(self, model: Path = GENERAL_REC_MODEL, threads: int = 1) -> None:
        self.sess = session(model, threads)
        self.input_name = self.sess.get_inputs()[0].name
        chars = self.sess.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.chars = ["", *chars, " "]
        index = {c: i for i, c in enumerate(self.chars) if c}
        # blank, 0-9 A-Z (ALPHABET), a-z: the columns plate_probs keeps
        self._plate_cols = [0, *(index[c] for c in ALPHABET + ALPHABET[10:].lower())]

    def plate_probs(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The recognizer's CTC output for one BGR crop, seen through the plate alphabet.

        Returns an array of shape (T, 1 + 36): column 0 is the blank plus every character that is
        not ``0-9``, ``A-Z`` or ``a-z`` (separators, CJK, punctuation: "no plate character here"),
        then ``0-9`` and ``A-Z`` with each lower-case letter's probability added to its capital, in
        the order of :data:`rtcc.plates.ocr.ALPHABET`. Rows sum to 1. One crop per run (no padding).
        """
        w = min(REC_MAX_W, max(16, int(np.ceil(REC_H * crop.shape[1] / crop.shape[0]))))
        r = cv2.resize(crop, (w, REC_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x = (r / 127.5 - 1.0).transpose(2, 0, 1)[None]
        p = self.sess.run(None, {self.input_name: x})[0][0]
        kept = p[:, self._plate_cols]
        out = np.zeros((p.shape[0], 1 + len(ALPHABET)), np.float32)
        out[:, 1:] = kept[:, 1 : 1 + len(ALPHABET)]
        out[:, 11:] += kept[:, 1 + len(ALPHABET) :]
        out[:, 0] = kept[:, 0] + np.clip(1.0 - kept.sum(axis=1), 0.0, None)
        return out

    def __call__(self, crops: list[npt.NDArray[np.uint8]]) -> list[TextRead]:
        """Read BGR crops (each resized to height 48, up to 320 wide; one batch)."""
        if not crops:
            return []
        widths = [min(REC_MAX_W, max(16, int(np.ceil(REC_H * c.shape[1] / c.shape[0])))) for c in crops]
        x = np.zeros((len(crops), 3, REC_H, max(widths)), np.float32)
        for i, (c, w) in enumerate(zip(crops, widths, strict=True)):
            r = cv2.resize(c, (w, REC_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            x[i, :, :, :w] = (r / 127.5 - 1.0).transpose(2, 0, 1)
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


class RegionReader:
    """Tells a plate's US state from the text regions around its number; ``None`` when unsure.

    Parameters
    ----------
    recognizer : TextRecognizer
        General text recognizer.
    max_regions : int
        At most this many regions around a plate are read (nearest to the detector's order first).
    """

    def __init__(self, recognizer: TextRecognizer, max_regions: int = 4) -> None:
        self.recognizer = recognizer
        self.max_regions = max_regions

    def __call__(
        self, image: npt.NDArray[np.uint8], plate: TextRegion, regions: list[TextRegion]
    ) -> str | None:
        """The state (``CA`` ...) of the plate whose number is ``plate``, or ``None``."""
        around = nearby(plate, regions)[: self.max_regions]
        if not around:
            return None
        reads = self.recognizer([rectify(image, r.quad) for r in around])
        states = {s for s in (us_state(r.text) for r in reads) if s}
        return states.pop() if len(states) == 1 else None
