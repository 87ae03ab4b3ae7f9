"""Quantize the PP-OCRv4 detector to int8 (static, QDQ, per-channel) with ONNX Runtime.

Calibration: the ``tune`` part of the end-to-end sets (never ``test``), each image resized like
:class:`rtcc.plates.detect.TextDetector` does at its default input size. The int8 model runs about
2-3x faster on CPUs with VNNI (AVX512-VNNI / AVX-VNNI) and at the same speed or faster elsewhere.

The DB head (everything after the neck's last Concat: conv, two transposed convs, sigmoid) stays
in float: its probability map sets the region borders the recognizer was trained on.

Usage: python training/plates/quantize_det.py FP32.onnx OUT_INT8.onnx [DATA_ROOT] [N_IMAGES] [keep-head|all]
    [minmax|percentile]
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parents[2] / "shared/data/alpr/openalpr-benchmarks"


class TuneImages(CalibrationDataReader):
    """Feeds detector inputs made from ``tune`` images."""

    def __init__(self, root: Path, n: int, input_name: str, long_side: int = 960) -> None:
        split = json.loads((HERE / "split.json").read_text())
        names = [(r, name) for r in ("us", "eu") for name in split[r]["tune"]]
        step = max(1, len(names) // n)
        self.items: Iterator[dict[str, np.ndarray]] = (
            {input_name: self._prep(cv2.imread(str(root / "endtoend" / r / name)), long_side)}
            for r, name in names[::step][:n]
        )

    @staticmethod
    def _prep(img: np.ndarray, long_side: int) -> np.ndarray:
        h, w = img.shape[:2]
        s = long_side / max(h, w)
        rh, rw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
        x = cv2.resize(img, (rw, rh)).astype(np.float32) * (2.0 / 255.0) - 1.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    root = Path(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_ROOT
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    keep_head = (sys.argv[5] if len(sys.argv) > 5 else "keep-head") == "keep-head"
    method = sys.argv[6] if len(sys.argv) > 6 else "minmax"
    import onnxruntime as ort

    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        op13, pre = Path(tmp) / "op13.onnx", Path(tmp) / "pre.onnx"
        # the wheel's model is opset 12; per-channel DequantizeLinear needs opset 13 (the graph
        # rewritten by fuse_det.py is opset 14 already and is used as it is)
        model = onnx.load(str(src))
        opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        onnx.save(model if opset >= 13 else version_converter.convert_version(model, 13), str(op13))
        quant_pre_process(str(op13), str(pre), skip_symbolic_shape=True)
        nodes = onnx.load(str(pre)).graph.node
        concat = max(i for i, node in enumerate(nodes) if node.op_type == "Concat")
        head = [node.name for node in nodes[concat + 1 :]] if keep_head else []
        quantize_static(
            str(pre),
            str(out),
            TuneImages(root, n, name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head,
            calibrate_method=CalibrationMethod.Percentile
            if method == "percentile"
            else CalibrationMethod.MinMax,
            extra_options={"CalibPercentile": 99.99},
        )
    print("wrote", out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
