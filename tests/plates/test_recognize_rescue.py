"""The closer look when nothing is read (tiles of the equalised image) and the cut-off edge check."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from rtcc.plates import PlateReader
from rtcc.plates.detect import TextDetector, TextRegion
from rtcc.plates.recognize import _fold, enhance
from tests.plates.test_recognize import PLATE, car_with_plate
from tests.plates.test_recognize_fusion import FakeSecond, _sharp


class BlindFirst:
    """The real detector, except that it finds nothing in the first ``blind`` images it is given."""

    def __init__(self, detector: TextDetector, blind: int = 1) -> None:
        self.detector = detector
        self.blind = blind
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, image: npt.NDArray[np.uint8]) -> list[TextRegion]:
        self.shapes.append(image.shape)
        return [] if len(self.shapes) <= self.blind else self.detector(image)


@pytest.fixture(scope="module")
def base() -> PlateReader:
    return PlateReader.load(regions=False)


def _reader(base: PlateReader, detector: object, **kw: object) -> PlateReader:
    return PlateReader(detector, base.ocr, second=base.second, **kw)  # type: ignore[arg-type]


def test_nothing_found_looks_again_in_tiles_and_maps_boxes_back(base: PlateReader) -> None:
    image = car_with_plate()
    det = BlindFirst(base.detector)
    plates = _reader(base, det).read(image)
    assert [s[:2] for s in det.shapes] == [(720, 1280)] + [(450, 800)] * 4  # the image, then 4 tiles
    assert plates and plates[0].text == PLATE
    x, y, w, h = plates[0].box  # in the whole image's pixels: the plate is at x 560-720, y 440-520
    assert x >= 560 and x + w <= 725 and y >= 440 and y + h <= 525
    # the plate lies in two tiles: one plate comes back, not two
    assert [p.text for p in plates].count(PLATE) == 1


def test_no_closer_look_when_off_or_when_a_plate_is_read(base: PlateReader) -> None:
    image = car_with_plate()
    det = BlindFirst(base.detector)
    assert _reader(base, det, rescue=False).read(image) == []
    assert len(det.shapes) == 1
    det = BlindFirst(base.detector, blind=0)
    assert _reader(base, det).read(image)[0].text == PLATE
    assert len(det.shapes) == 1


def test_blank_image_stays_blank_after_the_closer_look(base: PlateReader) -> None:
    image = np.full((720, 1280, 3), 128, np.uint8)
    assert _reader(base, base.detector).read(image) == []


def test_enhance_raises_local_contrast() -> None:
    image = np.full((200, 300, 3), 70, np.uint8)
    cv2.putText(image, "AB12", (40, 120), cv2.FONT_HERSHEY_DUPLEX, 2, (85, 85, 85), 3)  # dim text
    out = enhance(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.std() > 1.5 * image.std()


class FakeOCR:
    """A plate recognizer that reads every crop as ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def probs(self, crops: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        return [_sharp(self.text) for _ in crops]


def _extend(wide_first: str, wide_second: str, voted: str) -> tuple[str, FakeSecond, tuple[float, ...]]:
    second = FakeSecond(wide_second)
    reader = PlateReader(None, FakeOCR(wide_first), second=second)  # type: ignore[arg-type]
    quad = np.array([[100, 100], [200, 100], [200, 130], [100, 130]], np.float32)
    image = np.full((300, 400, 3), 200, np.uint8)
    text, conf, chars = reader._extend(image, TextRegion(quad, 0.9), (voted, 0.8, (0.9,) * len(voted)))
    assert conf == 0.8
    assert len(chars) == len(text)
    return text, second, chars


def test_a_character_cut_off_at_the_edge_is_added_when_both_recognizers_see_it() -> None:
    assert _extend("627WWI", "627WWI", "627WW")[0] == "627WWI"
    assert _extend("X627WW", "X627WW", "627WW")[0] == "X627WW"  # at the start too
    # look-alikes agree; the plate recognizer's character weighs more
    assert _extend("627WWI", "627WW1", "627WW")[0] == "627WWI"
    # the voted text is kept as read, only the new character is taken from the wide crop
    assert _extend("NE1LDMND", "NEILDMND", "NEILDMN")[0] == "NEILDMND"


def test_the_edge_check_changes_nothing_otherwise() -> None:
    # the wide crop reads the same: the second recognizer is not even asked
    text, second, _ = _extend("627WW", "627WW", "627WW")
    assert text == "627WW" and second.crops == 0
    # the recognizers disagree on the new character
    assert _extend("627WWI", "627WWX", "627WW")[0] == "627WW"
    # two more characters, or another text
    assert _extend("627WWII", "627WWII", "627WW")[0] == "627WW"
    assert _extend("628WWI", "628WWI", "627WW")[0] == "627WW"
    # and without a second recognizer no check at all
    assert PlateReader.load(regions=False, second=False).edge is not None  # on, but needs `second`


def test_fold_maps_look_alike_letters_to_digits() -> None:
    assert _fold("IOQDZSBG") == "10002586"
    assert _fold("AC7") == "AC7"


def test_load_turns_the_closer_look_on_by_default() -> None:
    assert PlateReader.load(regions=False, second=False).rescue
    assert not PlateReader.load(regions=False, second=False, rescue=False).rescue
