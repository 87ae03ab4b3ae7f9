"""Plate recognition: shipped models, a rendered plate read back, normalization, boxes, the CLI.

No shared data needed: the plate is drawn in the test (OpenCV Hershey font, black on white, on a
grey "car" with a bumper and lights), so CI runs it as is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.errors import ValidationFailed
from rtcc.plates import PlateReader, PlateResult, normalize_plate
from rtcc.plates.detect import DET_MODEL, DET_MODEL_INT8
from rtcc.plates.ocr import REC_MODEL, Reading
from rtcc.plates.region import GENERAL_REC_MODEL

PLATE = "7KDR582"


def car_with_plate(text: str = PLATE, size: tuple[int, int] = (1280, 720), seed: int = 0) -> np.ndarray:
    """A 1280x720 BGR frame: noisy road, a grey car body, lights, and a white plate with ``text``."""
    w, h = size
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(img, (380, 220), (900, 620), (150, 140, 135), -1)  # body
    cv2.rectangle(img, (420, 250), (860, 380), (60, 55, 50), -1)  # rear window
    cv2.circle(img, (430, 450), 30, (30, 30, 200), -1)
    cv2.circle(img, (850, 450), 30, (30, 30, 200), -1)
    cv2.rectangle(img, (380, 560), (900, 610), (40, 40, 40), -1)  # bumper
    cv2.rectangle(img, (560, 440), (720, 520), (245, 245, 245), -1)  # plate
    cv2.rectangle(img, (560, 440), (720, 520), (30, 30, 30), 2)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.1, 3)
    cv2.putText(
        img, text, (640 - tw // 2, 480 + th // 2), cv2.FONT_HERSHEY_DUPLEX, 1.1, (20, 20, 20), 3, cv2.LINE_AA
    )
    return img


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader.load()


def test_shipped_models_exist_and_are_small() -> None:
    models = (DET_MODEL, DET_MODEL_INT8, REC_MODEL, GENERAL_REC_MODEL)
    for model in models:
        assert model.is_file(), model
    total = sum(m.stat().st_size for m in models)
    assert total < 20 * 2**20


def test_shipped_models_match_their_checksums() -> None:
    sums = (DET_MODEL.parent / "SHA256SUMS").read_text().split("\n")
    listed = {name: digest for digest, name in (line.split() for line in sums if line.strip())}
    assert set(listed) == {p.name for p in DET_MODEL.parent.glob("*.onnx")}
    for name, digest in listed.items():
        assert hashlib.sha256((DET_MODEL.parent / name).read_bytes()).hexdigest() == digest, name


def test_fast_reader_reads_a_rendered_plate() -> None:
    plates = PlateReader.load(fast=True).read(car_with_plate("4XYZ019", seed=3))
    assert plates and plates[0].text == "4XYZ019"


def test_vote_prefers_the_text_most_crops_agree_on() -> None:
    readings = [
        Reading("7KDR582", (0.9,) * 7),
        Reading("7KDR58", (0.95,) * 6),
        Reading("7KDR582", (0.8,) * 7),
        Reading("", ()),
    ]
    voted = PlateReader._vote(readings)
    assert voted is not None
    text, conf, chars = voted
    assert text == "7KDR582"
    assert conf == pytest.approx((0.9 + 0.8) / 4)  # crops that disagree lower the confidence
    assert chars == (0.9,) * 7  # the most confident agreeing crop's characters
    assert PlateReader._vote([Reading("", ()), Reading("A", (0.99,))]) is None  # nothing plate-like


def test_reads_a_rendered_plate(reader: PlateReader) -> None:
    img = car_with_plate()
    plates = reader.read(img)
    assert plates, "no plate found"
    best = plates[0]
    assert isinstance(best, PlateResult)
    assert best.text == PLATE
    assert len(best.char_confidences) == len(best.text)
    assert 0.0 <= best.confidence <= 1.0
    x, y, w, h = best.box
    # the plate text is drawn around (640, 480): the box must cover it
    assert x <= 600 and x + w >= 680 and y <= 480 <= y + h


def test_boxes_inside_image_even_at_the_border(reader: PlateReader) -> None:
    img = car_with_plate()
    shifted = np.ascontiguousarray(img[:, 500:])  # plate now near the left edge
    for frame in (img, shifted, cv2.resize(img, (320, 180))):
        fh, fw = frame.shape[:2]
        for p in reader.read(frame):
            x, y, w, h = p.box
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= fw and y + h <= fh


def test_blank_image_has_no_plates(reader: PlateReader) -> None:
    assert reader.read(np.full((720, 1280, 3), 128, np.uint8)) == []


def test_bad_array_is_refused(reader: PlateReader) -> None:
    with pytest.raises(ValidationFailed):
        reader.read(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValidationFailed):
        reader.read(np.zeros((0, 10, 3), np.uint8))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" abc-12 3 ", "ABC123"), ("7·KDR·582", "7KDR582"), ("öz 99", "OZ99"), ("--", ""), ("A\tB\n1", "AB1")],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_plate(raw) == expected


def test_cli_reads_and_reports_corrupt_files(tmp_path: Path) -> None:
    good = tmp_path / "car.jpg"
    cv2.imwrite(str(good), car_with_plate())
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `plates` a sub-command
    result = CliRunner().invoke(app, ["plates", "read", str(corrupt), str(good), str(empty), str(missing)])
    assert result.exit_code == 2
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [line["file"] for line in lines] == [str(good)]
    plates = lines[0]["plates"]
    assert plates and plates[0]["text"] == PLATE
    assert set(plates[0]) == {"text", "confidence", "box", "region", "char_confidences"}
    assert len(plates[0]["box"]) == 4
    chars = plates[0]["char_confidences"]
    assert len(chars) == len(PLATE) and all(0.0 <= c <= 1.0 for c in chars)
    assert plates[0]["region"] is None  # no state printed on the rendered plate
    for name in ("broken.jpg", "empty.png", "missing.jpg"):
        assert name in result.stderr
