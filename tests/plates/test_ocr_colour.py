"""PlateOCR with a PP-OCRv4-style (3-channel, height 48, any width) plate recognizer (session 6).

The model here is a tiny ONNX graph written in the test (one strided convolution per 8 columns and a
softmax over ``blank + 0-9 + A-Z``): it stands for a fine-tuned recognizer at the ONNX seam, so the
input preparation, the kind detection by input shape and the second-reader use are checked without
``../shared``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rtcc.plates.ocr import ALPHABET, REC_H, REC_MAX_W, REC_PAD, PlateOCR, decode, rec_input, rec_padded
from rtcc.plates.recognize import PlateReader
from tests.plates.test_recognize import PLATE, car_with_plate

K = 1 + len(ALPHABET)


def _model(path: Path, bright: str, dark: str) -> Path:
    """Columns of 8 px: bright ones read as ``bright``, dark ones as ``dark`` (blank in between)."""
    w = np.zeros((K, 3, REC_H, 8), np.float32)
    b = np.zeros(K, np.float32)
    w[1 + ALPHABET.index(bright)] = 4.0 / (3 * REC_H * 8)  # mean brightness in -1..1, times 4
    w[1 + ALPHABET.index(dark)] = -4.0 / (3 * REC_H * 8)
    b[0] = 1.0
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[REC_H, 8], strides=[REC_H, 8]),
        helper.make_node("Squeeze", ["c", "axes"], ["s"]),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["t"], ["probs"], axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, REC_H, "width"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", "steps", K])],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_rec_input_keeps_the_aspect_within_the_width_bounds() -> None:
    assert rec_input(np.zeros((24, 100, 3), np.uint8)).shape == (3, REC_H, 200)
    assert rec_input(np.zeros((10, 1000, 3), np.uint8)).shape == (3, REC_H, REC_MAX_W)
    assert rec_input(np.zeros((100, 10), np.uint8)).shape == (3, REC_H, 16)  # grey taken as BGR
    x = rec_input(np.full((48, 48, 3), 255, np.uint8))
    assert x.min() == pytest.approx(1.0) and x.max() == pytest.approx(1.0)


def test_a_three_channel_model_reads_colour_crops_at_their_own_width(tmp_path: Path) -> None:
    ocr = PlateOCR(_model(tmp_path / "tiny.onnx", bright="7", dark="B"))
    assert ocr.colour
    stripes = np.zeros((48, 160, 3), np.uint8)
    stripes[:, 32:64] = 255  # columns 4-7 of 20 bright
    wide = np.full((24, 160, 3), 255, np.uint8)  # twice as wide per height: 320 px, 40 steps
    probs = ocr.probs([stripes, wide])
    assert [p.shape for p in probs] == [(20, K), (40, K)]
    for p in probs:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert decode(probs[0]).text == "B7B"
    assert decode(probs[1]).text == "7"
    np.testing.assert_allclose(ocr.plate_probs(stripes), probs[0], rtol=1e-6)


def test_rec_padded_pads_the_width_to_a_multiple_with_mid_grey() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (24, 50, 3), dtype=np.uint8)  # 100 px at height 48
    x, padded = rec_input(crop), rec_padded(crop)
    assert x.shape == (3, REC_H, 100) and padded.shape == (3, REC_H, 4 * REC_PAD)
    np.testing.assert_array_equal(padded[:, :, :100], x)
    assert not padded[:, :, 100:].any()
    assert rec_padded(np.zeros((48, 160, 3), np.uint8)).shape == (3, REC_H, 160)  # already a multiple
    assert rec_padded(np.zeros((10, 1000, 3), np.uint8)).shape == (3, REC_H, REC_MAX_W)


def test_a_three_channel_model_reads_the_padded_width_as_training_does(tmp_path: Path) -> None:
    ocr = PlateOCR(_model(tmp_path / "tiny.onnx", bright="7", dark="B"))
    dark_then_bright = np.zeros((48, 100, 3), np.uint8)
    dark_then_bright[:, 48:] = 255  # 100 px: dark steps 0-5, bright 6-11, the 28 px of padding after
    p = ocr.plate_probs(dark_then_bright)
    assert p.shape == (128 // 8, K)  # padded to 128 px, not read at 100 px (12 steps)
    assert decode(p).text == "B7"
    assert (p[13:].argmax(axis=1) == 0).all()  # the padding reads as blank


def test_the_plate_crnn_is_still_read_as_one_channel() -> None:
    ocr = PlateOCR()
    assert not ocr.colour
    assert ocr.probs([np.zeros((20, 80, 3), np.uint8)])[0].shape == (32, K)


def test_load_can_take_a_plate_recognizer_as_second_reader(tmp_path: Path) -> None:
    model = _model(tmp_path / "tiny.onnx", bright="1", dark="0")
    reader = PlateReader.load(second_model=model, rescue=False)
    assert isinstance(reader.second, PlateOCR) and reader.second.colour
    # the tiny second reader cannot read plates; the plate recognizer still does, end to end
    plates = reader.read(car_with_plate(PLATE))
    assert plates and plates[0].text == PLATE
