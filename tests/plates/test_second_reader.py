"""The fine-tuned PP-OCRv4 plate recognizer as the shipped second reader (session 7, issue 3).

Uses the shipped model file (no ``../shared`` data): it must read rendered plates as plates, at the
padded width it was trained at (:func:`rtcc.plates.ocr.rec_padded`), and ``PlateReader.load`` must pick
it as the second reader while the general recognizer still tells the state.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtcc.plates.ocr import SECOND_MODEL, PlateOCR
from rtcc.plates.recognize import PlateReader
from rtcc.plates.region import TextRecognizer
from tests.plates.render_helpers import car_with_plate


@pytest.fixture(scope="module")
def second() -> PlateOCR:
    return PlateOCR(SECOND_MODEL)


def plate_crop(text: str, seed: int, margin: int) -> np.ndarray:
    """The text region of the plate of :func:`car_with_plate` (as the detector hands it to the second
    reader), cut with ``margin`` px around the characters."""
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.1, 3)
    y, x = 480 - th // 2 - margin, 640 - tw // 2 - margin
    return car_with_plate(text, seed=seed)[y : y + th + 2 * margin, x : x + tw + 2 * margin]


def test_the_shipped_second_reader_is_a_colour_plate_recognizer(second: PlateOCR) -> None:
    assert SECOND_MODEL.is_file() and second.colour


@pytest.mark.parametrize(
    ("text", "seed", "margin"),
    [("7KDR582", 0, 4), ("4FCW533", 1, 8), ("ABC1234", 2, 12), ("8XYZ09", 3, 8), ("2DA044", 4, 4)],
)
def test_it_reads_rendered_plates(second: PlateOCR, text: str, seed: int, margin: int) -> None:
    (reading,) = second([plate_crop(text, seed, margin)])
    assert reading.text == text
    assert min(reading.char_confidences) > 0.5


def test_it_reads_nothing_on_a_blank_plate(second: PlateOCR) -> None:
    blank = np.full((80, 160, 3), 245, np.uint8)
    assert second([blank])[0].text == ""


def test_load_picks_it_as_second_reader_and_keeps_the_general_one_for_the_state() -> None:
    reader = PlateReader.load(rescue=False)
    assert isinstance(reader.second, PlateOCR) and reader.second.colour
    assert reader.region_reader is not None
    assert isinstance(reader.region_reader.recognizer, TextRecognizer)
    plates = reader.read(car_with_plate("7KDR582"))
    assert plates and plates[0].text == "7KDR582"
