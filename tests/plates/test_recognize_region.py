"""The plate's state, told from the text printed around its number (``rtcc.plates.region``).

Rendered in the test (no shared data): a plate with a state name or slogan above its number, read
by the shipped detector, plate recognizer and general recognizer.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtcc.plates import PlateReader
from rtcc.plates.detect import TextDetector, TextRegion
from rtcc.plates.region import (
    EU_SIGNS,
    GENERAL_REC_MODEL,
    STATE_H,
    STATE_MODEL,
    STATE_W,
    BandReader,
    RegionReader,
    StateClassifier,
    TextRecognizer,
    find_band,
    is_state_name,
    nearby,
    plate_box,
    state_input,
    us_state,
)

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


# --- session 5: the EU band and the plate's look -------------------------------------------------


def eu_plate(
    sign: str | None, text: str = "B MW 1234", body: tuple[int, int, int] = (150, 140, 135)
) -> np.ndarray:
    """A 1280x720 BGR frame: a car with a white European plate; ``sign`` in white under a ring of
    stars on a blue band at its left end (``None``: no band)."""
    rng = np.random.default_rng(0)
    img = rng.normal(90, 12, (720, 1280, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(img, (300, 220), (980, 620), body, -1)
    x0, y0, x1, y1 = 490, 440, 790, 512
    cv2.rectangle(img, (x0, y0), (x1, y1), (245, 245, 245), -1)
    cv2.rectangle(img, (x0, y0), (x1, y1), (30, 30, 30), 2)
    left = x0
    if sign is not None:
        bw = 34
        cv2.rectangle(img, (x0 + 2, y0 + 2), (x0 + bw, y1 - 2), (160, 60, 0), -1)
        for k in range(12):
            a = 2 * np.pi * k / 12
            star = (int(x0 + 2 + bw // 2 + 8 * np.cos(a)), int(y0 + 20 + 8 * np.sin(a)))
            cv2.circle(img, star, 1, (0, 220, 255), -1)
        (sw, _), _ = cv2.getTextSize(sign, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
        origin = (x0 + 2 + bw // 2 - sw // 2, y1 - 10)
        cv2.putText(img, sign, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        left = x0 + bw + 2
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.4, 3)
    origin = ((left + x1) // 2 - tw // 2, 476 + th // 2)
    cv2.putText(img, text, origin, cv2.FONT_HERSHEY_DUPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    return img


@pytest.mark.parametrize(("sign", "code"), [("D", "DE"), ("SK", "SK"), ("CZ", "CZ"), ("NL", "NL")])
def test_the_country_on_a_blue_band_is_told(reader: PlateReader, sign: str, code: str) -> None:
    plates = reader.read(eu_plate(sign))
    assert plates and plates[0].text == "BMW1234"
    assert plates[0].region == code


def test_band_letters_that_are_no_country_tell_nothing(reader: PlateReader) -> None:
    img = eu_plate("XQ")
    plates = reader.read(img)
    assert plates and plates[0].text == "BMW1234"
    assert find_band(img, plates[0].box) is not None  # the band is there, its sign is not a country
    assert plates[0].region is None


@pytest.mark.parametrize("body", [(150, 140, 135), (170, 60, 20)], ids=["grey car", "blue car"])
def test_a_plate_without_band_has_no_band(reader: PlateReader, body: tuple[int, int, int]) -> None:
    img = eu_plate(None, body=body)
    plates = reader.read(img)
    assert plates and plates[0].text == "BMW1234"
    assert find_band(img, plates[0].box) is None
    assert plates[0].region is None  # no band, and a number too wide for a US plate's look
    no_looks = RegionReader(TextRecognizer(), state_model=None)
    region = _region(*plates[0].box)
    assert no_looks(img, region, [region]) is None


def test_find_band_ignores_blue_far_from_the_number() -> None:
    img = np.full((200, 400, 3), 240, np.uint8)
    img[50:100, 20:40] = (160, 60, 0)  # a blue sticker 2.5 heights left of the number
    assert find_band(img, (140, 60, 120, 24)) is None
    img[50:100, 120:134] = (160, 60, 0)  # a band touching the number
    band = find_band(img, (140, 60, 120, 24))
    assert band is not None and band[0] == 120 and band[2] == 14


class _FakeRecognizer(TextRecognizer):
    """The general recognizer's seam for :class:`BandReader`: canned letter outputs."""

    def __init__(self, texts: list[tuple[str, float]]) -> None:
        self.texts = texts

    def letter_probs(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        assert len(crops) == len(self.texts) == 2  # the band alone, then doubled
        assert crops[1].shape[1] == 2 * crops[0].shape[1]
        out = []
        for text, conf in self.texts:
            p = np.zeros((2 * len(text) + 1, 27), np.float32)
            p[:, 0] = 1.0
            for i, c in enumerate(text):
                p[2 * i + 1] = 0.0
                p[2 * i + 1, 0] = 1 - conf
                p[2 * i + 1, 1 + ord(c) - ord("A")] = conf
            out.append(p)
        return out


BAND = (0, 0, 20, 40)
IMAGE = np.full((60, 60, 3), 128, np.uint8)


@pytest.mark.parametrize(
    ("reads", "agree", "expected"),
    [
        ([("SK", 0.99), ("SKSK", 0.95)], 2, "SK"),
        ([("D", 0.9), ("DD", 0.95)], 2, "DE"),
        ([("", 0.0), ("DD", 0.95)], 2, None),  # one reading is not enough
        ([("M", 0.96), ("MM", 0.81)], 2, None),  # one sure reading of two
        ([("", 0.0), ("DD", 0.95)], 1, "DE"),
        ([("SK", 0.99), ("CZCZ", 0.6)], 1, None),  # a conflicting reading
        ([("XQ", 0.99), ("XQXQ", 0.99)], 2, None),  # not a sign
        ([("", 0.0), ("", 0.0)], 1, None),
    ],
)
def test_band_reader_tells_only_agreeing_confident_signs(
    reads: list[tuple[str, float]], agree: int, expected: str | None
) -> None:
    assert BandReader(_FakeRecognizer(reads), agree=agree, min_height=10)(IMAGE, BAND) == expected


def test_band_reader_does_not_read_small_bands() -> None:
    sure = [("SK", 0.99), ("SKSK", 0.99)]
    assert BandReader(_FakeRecognizer(sure), min_height=41)(IMAGE, BAND) is None
    assert BandReader(_FakeRecognizer(sure), min_height=40)(IMAGE, BAND) == "SK"


def test_every_sign_maps_to_a_two_letter_country() -> None:
    assert EU_SIGNS["D"] == "DE" and EU_SIGNS["SK"] == "SK" and EU_SIGNS["GB"] == "GB"
    assert all(len(c) == 2 and c.isupper() for c in EU_SIGNS.values())
    assert len(set(EU_SIGNS.values())) == len(EU_SIGNS)


def test_state_model_ships_with_its_states_and_threshold() -> None:
    assert STATE_MODEL.is_file() and STATE_MODEL.stat().st_size <= 2_000_000
    clf = StateClassifier()
    assert len(clf.states) == 51 and {"CA", "TX", "DC", "NY"} <= set(clf.states)
    assert 0.0 < clf.threshold <= 1.0
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((30, 60), (90, 200), (12, 20))]
    p = clf.probs(crops)
    assert p.shape == (3, 51) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4) and (p >= 0).all()
    assert clf.probs([]).shape == (0, 51)
    assert state_input(crops[1]).shape == (3, STATE_H, STATE_W)


def test_state_classifier_abstains_below_its_threshold() -> None:
    crop = plate_with_state("")[400:540, 520:760]
    guess = StateClassifier().guess(crop)
    assert guess.state in StateClassifier().states and 0.0 < guess.probability <= 1.0
    assert StateClassifier(threshold=guess.probability)(crop) == guess.state
    assert StateClassifier(threshold=min(1.0, guess.probability + 1e-3))(crop) is None


def test_a_printed_name_wins_over_the_look() -> None:
    img = plate_with_state("TEXAS")
    plates = PlateReader.load().read(img)
    assert plates[0].region == "TX"
    # the look, made to tell whatever it guesses, is not asked: the printed name is read first
    reader = RegionReader(TextRecognizer(), state_model=STATE_MODEL)
    assert reader.states is not None
    reader.states.threshold = 0.0
    assert reader(img, _region(*plates[0].box), TextDetector()(img)) == "TX"


def test_plate_box_grows_the_number_to_the_plate_inside_the_image() -> None:
    assert plate_box((100, 100, 200, 40), (720, 1280, 3)) == (94, 86, 210, 64)
    assert plate_box((0, 0, 50, 20), (30, 40, 3)) == (0, 0, 40, 25)


def test_the_look_is_asked_only_for_numbers_shaped_like_a_us_plates() -> None:
    img = plate_with_state("")
    reader = RegionReader(TextRecognizer(), state_model=STATE_MODEL, bands=False)
    assert reader.states is not None
    reader.states.threshold = 0.0  # tell whatever it guesses
    us_shaped = _region(560, 430, 120, 50)  # 2.4 times as wide as tall
    told = reader(img, us_shaped, [us_shaped])
    assert told is not None and told in reader.states.states
    wide = _region(560, 440, 180, 40)  # 4.5: a European number
    assert reader(img, wide, [wide]) is None
    assert RegionReader(TextRecognizer())(img, us_shaped, [us_shaped]) is None  # off by default
