"""The detector's network under OpenVINO computes what it computes under ONNX Runtime.

float32 must agree to rounding; bfloat16 (only on CPUs that have it) to its 8-bit mantissa: the
same plate region on a rendered read photo. Without OpenVINO installed these tests skip.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from rtcc.plates import backend
from rtcc.plates.detect import DET_MODEL, TextDetector, TextRegion, to_input
from rtcc.plates.recognize import PlateReader
from rtcc.sim.plate_photos import render_read_photo

ov = pytest.importorskip("openvino")


def _photo() -> tuple[npt.NDArray[np.uint8], tuple[int, int, int, int]]:
    data, box = render_read_photo("7ABC123", seed=3)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8), box


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        backend.session(DET_MODEL, 1, "tensorrt")  # type: ignore[arg-type]


def test_float32_maps_agree_with_onnxruntime() -> None:
    image, _ = _photo()
    x = to_input(np.asarray(cv2.resize(image, (640, 384)), dtype=np.uint8))
    ref = backend.ort_session(DET_MODEL).run(None, {"x": x})[0]
    sess = backend.OpenVinoSession(DET_MODEL, precision="f32")
    [out] = sess.run(None, {sess.get_inputs()[0].name: x})
    assert out.shape == ref.shape
    assert float(np.abs(out - ref).max()) < 1e-3
    # the same request object answers again, with the same result
    [again] = sess.run(None, {sess.get_inputs()[0].name: x})
    assert np.array_equal(again, out)


def test_bf16_is_refused_where_the_cpu_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "bf16_available", lambda: False)
    with pytest.raises(RuntimeError, match="bfloat16"):
        backend.OpenVinoSession(DET_MODEL)


@pytest.mark.skipif(not backend.bf16_available(), reason="this CPU has no native bfloat16")
def test_bf16_detector_finds_the_same_plate_region() -> None:
    image, (bx, by, bw, bh) = _photo()
    plain = TextDetector()(image)
    fast = TextDetector(backend="openvino")(image)

    def plate(regions: list[TextRegion]) -> tuple[int, int, int, int]:
        """The region that overlaps the rendered plate most (the characters' line, inside it)."""

        def inter(r: tuple[int, int, int, int]) -> int:
            x, y, w, h = r
            return max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))

        best: tuple[int, int, int, int] = max((r.box for r in regions), key=inter)
        assert inter(best) > 0.9 * best[2] * best[3] and best[2] > 0.8 * bw
        return best

    a, b = plate(plain), plate(fast)
    assert max(abs(p - q) for p, q in zip(a, b, strict=True)) <= 3


def test_auto_picks_openvino_only_where_the_cpu_has_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "bf16_available", lambda: True)
    assert backend.resolve("auto") == "openvino"
    monkeypatch.setattr(backend, "bf16_available", lambda: False)
    assert backend.resolve("auto") == "onnxruntime"
    assert backend.resolve("openvino") == "openvino" and backend.resolve("onnxruntime") == "onnxruntime"


def test_the_precise_detector_reads_what_the_fast_one_left_uncertain() -> None:
    """A fast detector that finds nothing (thresholds no pixel reaches): without ``precise`` the
    plate is lost to the rescue's tiles at best; with it, the float detector's reading is the answer."""
    image, _ = _photo()
    blind = TextDetector(thresh=0.999, box_thresh=0.999)
    assert blind(image) == []
    plain = PlateReader.load(backend="onnxruntime")
    want = plain.read(image)
    assert want and want[0].text == "7ABC123"
    cascade = PlateReader(blind, plain.ocr, second=plain.second, rescue=False, precise=plain.detector)
    assert [p.text for p in cascade.read(image)] == [p.text for p in want]
    alone = PlateReader(blind, plain.ocr, second=plain.second, rescue=False)
    assert alone.read(image) == []


def test_a_frequent_shape_is_compiled_alone_and_computes_the_same() -> None:
    """``static_after``: the third input of one shape runs on a model compiled for that shape, with
    the dynamic model's result (float32: to rounding); ``static_max`` drops the least recent."""
    image, _ = _photo()
    small = to_input(np.asarray(cv2.resize(image, (320, 192)), dtype=np.uint8))
    other = to_input(np.asarray(cv2.resize(image, (256, 160)), dtype=np.uint8))
    sess = backend.OpenVinoSession(DET_MODEL, precision="f32", static_after=3, static_max=1)
    name = sess.get_inputs()[0].name
    first = sess.run(None, {name: small})[0]
    sess.run(None, {name: small})
    assert sess.static_shapes == []
    third = sess.run(None, {name: small})[0]
    assert sess.static_shapes == [(small.shape,)]
    assert float(np.abs(third - first).max()) < 1e-4
    for _ in range(3):
        sess.run(None, {name: other})
    assert sess.static_shapes == [(other.shape,)]  # static_max=1: the older shape was dropped
    again = sess.run(None, {name: small})[0]  # the dynamic model again, and still the same answer
    assert float(np.abs(again - first).max()) < 1e-4
    assert sess.run(None, {name: small})[0].shape == first.shape


def test_recognizers_under_openvino_read_what_onnxruntime_reads() -> None:
    """The PP-OCR recognizers in OpenVINO float32 (``PlateReader.load`` with OpenVINO): the same
    text and per-character confidences as ONNX Runtime on a rendered plate; the general recognizer's
    character list comes from the ONNX metadata through OpenVINO too."""
    from rtcc.plates.ocr import SECOND_MODEL, PlateOCR
    from rtcc.plates.region import TextRecognizer

    image, (bx, by, bw, bh) = _photo()
    crop = np.ascontiguousarray(image[by : by + bh, bx : bx + bw])
    ort_ocr, ov_ocr = PlateOCR(SECOND_MODEL), PlateOCR(SECOND_MODEL, backend="openvino")
    assert isinstance(ov_ocr.sess, backend.OpenVinoSession) and ov_ocr.colour
    [a], [b] = ort_ocr([crop]), ov_ocr([crop])
    assert a.text == b.text and a.text
    assert np.allclose(a.char_confidences, b.char_confidences, atol=1e-3)
    crnn = PlateOCR(backend="openvino")  # the grey CRNN stays on ONNX Runtime (faster there)
    assert not isinstance(crnn.sess, backend.OpenVinoSession)
    ort_gen, ov_gen = TextRecognizer(), TextRecognizer(backend="openvino")
    assert ov_gen.chars == ort_gen.chars and len(ov_gen.chars) > 6000
    assert [r.text for r in ov_gen([crop])] == [r.text for r in ort_gen([crop])]
