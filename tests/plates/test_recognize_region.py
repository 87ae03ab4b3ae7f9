"""The plate's state, told from the text printed around its number (``rtcc.plates.region``).

Rendered in the test (no shared data): a plate with a state name or slogan above its number, read
by the shipped detector, plate recognizer and general recognizer.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtcc.plates import PlateReader
from rtcc.plates.detect import TextRegion
from rtcc.plates.region import GENERAL_REC_MODEL, TextRecognizer, is_state_name, nearby, us_state

PLATE = "7KDR582"


def plate_with_state(state: str, text: str = PLATE, seed: int = 0) -> np.ndarray:
    """A 1280x720 BGR frame: a grey car with a white plate, ``state`` printed above the number."""
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 12, (720, 1280, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(img, (380, 220), (900, 620), (150, 140, 135), -1)
    cv2.rectangle(img, (540, 410), (740, 530), (245, 245, 245), -1)
    cv2.rectangle(img, (540, 410), (740, 530), (30, 30, 30), 2)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.1, 3)
    cv2.putText(
        img, text, (640 - tw // 2, 480 + th // 2), cv2.FONT_HERSHEY_DUPLEX, 1.1, (20, 20, 20), 3, cv2.LINE_AA
    )
    (sw, _), _ = cv2.getTextSize(state, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
    cv2.putText(
        img, state, (640 - sw // 2, 432), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 160), 2, cv2.LINE_AA
    )
    return img


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader.load()


@pytest.mark.parametrize(
    ("state", "code"),
    [("TEXAS", "TX"), ("Illinois", "IL"), ("CALIFORNIA", "CA"), ("NEW YORK", "NY"), ("SUNSHINE STATE", "FL")],
)
def test_state_printed_above_the_number_is_told(reader: PlateReader, state: str, code: str) -> None:
    plates = reader.read(plate_with_state(state))
    assert plates and plates[0].text == PLATE
    assert plates[0].region == code


def test_the_state_name_is_not_returned_as_a_plate(reader: PlateReader) -> None:
    texts = [p.text for p in reader.read(plate_with_state("NEW YORK"))]
    assert texts[0] == PLATE
    assert not any(is_state_name(t) for t in texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TEXAS", True),
        ("TEXA5", True),
        ("NEWY0RK", True),
        ("CALIFORNIA", True),
        ("TEXAS1", False),
        ("OHIO", False),
        ("IOWA", False),
        ("7KDR582", False),
        ("", False),
    ],
)
def test_state_name_reads(text: str, expected: bool) -> None:
    assert is_state_name(text) is expected


def test_other_text_above_the_number_tells_nothing(reader: PlateReader) -> None:
    plates = reader.read(plate_with_state("DEALER"))
    assert plates and plates[0].text == PLATE and plates[0].region is None


def test_reader_without_region_reader_never_tells() -> None:
    plates = PlateReader.load(regions=False).read(plate_with_state("TEXAS"))
    assert plates and plates[0].text == PLATE and plates[0].region is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("WASHINGTON", "WA"),
        ("WASHINGTON9", "WA"),  # a digit beside the name
        ("Califomia", "CA"),  # one edit in ten letters
        ("texas.gov", "TX"),
        ("LAND OF LINCOLN", "IL"),
        ("NEW JERSEY", "NJ"),
        ("Garden State", "NJ"),
        ("Ohio", "OH"),
    ],
)
def test_state_names_and_slogans_match(text: str, code: str) -> None:
    assert us_state(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7KDR582",
        "LAMBORGHINI",
        "DEALER",
        "OHI0",
        "TXS",
        "2012",
        "NSCA",
        "CALIF",
        "VIRGINIA WEST IOWA OHIO",
    ],
)
def test_unclear_text_tells_no_state(text: str) -> None:
    # too short, not a name, a name misread beyond the allowance, or several states at once
    assert us_state(text) is None


def test_a_name_inside_a_longer_one_is_part_of_it() -> None:
    assert us_state("VIRGINIA") == "VA"
    assert us_state("WEST VIRGINIA") == "WV"
    assert us_state("KANSAS") == "KS"
    assert us_state("ARKANSAS") == "AR"
    assert us_state("WASHINGTON, DC") == "DC"  # the District, not Washington state


def _region(x: float, y: float, w: float, h: float) -> TextRegion:
    quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)
    return TextRegion(quad, 0.9)


def test_nearby_keeps_name_shaped_text_around_the_number_only() -> None:
    plate = _region(500, 400, 200, 40)
    above = _region(540, 360, 120, 20)  # a state name above
    below = _region(520, 450, 160, 16)  # a slogan below
    far = _region(100, 100, 120, 20)  # a shop sign elsewhere
    tall = _region(540, 330, 120, 60)  # taller than the number: another plate or a sign
    square = _region(560, 360, 20, 20)  # a sticker, not a word
    itself = _region(502, 402, 196, 36)
    got = nearby(plate, [plate, above, below, far, tall, square, itself])
    assert got == [above, below]


def test_general_recognizer_reads_a_word() -> None:
    img = np.full((40, 200, 3), 255, np.uint8)
    cv2.putText(img, "TEXAS", (30, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    assert GENERAL_REC_MODEL.is_file()
    (read,) = TextRecognizer()([img])
    assert read.text.upper() == "TEXAS" and 0.5 < read.confidence <= 1.0
    assert TextRecognizer()([]) == []
