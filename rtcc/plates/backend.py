"""Where the plate detector's network runs: ONNX Runtime (float32), or OpenVINO in bfloat16.

The detector is ~80 % of a plate read's CPU time (``rtcc/plates/models/MODEL_CARD.md``). On CPUs
that compute bfloat16 natively (Intel AMX / AVX-512 BF16: Sapphire Rapids and later Xeons), the
OpenVINO runtime runs the same ONNX file with bfloat16 arithmetic, about 1.3-1.6x faster on the
detector; elsewhere OpenVINO would compute in float32 and gain nothing, so
:func:`bf16_available` says whether the choice means anything. bfloat16 keeps 8 bits of mantissa:
the probability map moves by ~4e-5 on average and region borders by a pixel here and there, so
what a reader reads can change, so the plate reader detects again in float32 when the bfloat16
pass leaves an image uncertain (``PlateReader(precise=...)``; measured in the model card: the same
reads on the tuning images, 28 % less CPU). ``auto`` (the default, ``plates.detector_backend``)
picks OpenVINO where the CPU computes bfloat16 and ONNX Runtime elsewhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

Backend = Literal["onnxruntime", "openvino"]
BACKENDS: tuple[Backend, ...] = ("onnxruntime", "openvino")


class ModelSession(Protocol):
    """The part of :class:`onnxruntime.InferenceSession` the plate reader uses."""

    def get_inputs(self) -> list[Any]: ...

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


def ort_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """Open an ONNX model on the CPU with ``threads`` intra-op threads (1 = one core per reader)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


@cache
def bf16_available() -> bool:
    """Whether OpenVINO is installed and this CPU computes bfloat16 natively."""
    try:
        import openvino as ov
    except ImportError:
        return False
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in caps


@dataclass(frozen=True)
class _Input:
    name: str


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, answering like an ONNX Runtime session.

    Parameters
    ----------
    path : Path
        The ONNX file.
    threads : int
        Inference threads (1 = one core per reader).
    precision : {"bf16", "f32"}
        Inference precision; ``bf16`` needs :func:`bf16_available`.

    Raises
    ------
    RuntimeError
        OpenVINO is not installed, or ``bf16`` was asked of a CPU without it.
    """

    def __init__(self, path: Path, threads: int = 1, precision: Literal["bf16", "f32"] = "bf16") -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise RuntimeError("the openvino backend needs OpenVINO: pip install 'rtcc[openvino]'") from exc
        if precision == "bf16" and not bf16_available():
            raise RuntimeError("this CPU has no native bfloat16 (AMX or AVX-512 BF16): use onnxruntime")
        core = ov.Core()
        model = core.read_model(str(path))
        self._inputs = [_Input(i.get_any_name()) for i in model.inputs]
        self._n_out = len(model.outputs)
        self._compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": str(threads),
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": precision,
            },
        )
        self._local = threading.local()  # an infer request is not shared between threads

    def get_inputs(self) -> list[_Input]:
        return list(self._inputs)

    def run(
        self, output_names: list[str] | None, input_feed: dict[str, npt.NDArray[np.float32]]
    ) -> list[npt.NDArray[np.float32]]:
        req = getattr(self._local, "req", None)
        if req is None:
            req = self._local.req = self._compiled.create_infer_request()
        req.infer({i.name: input_feed[i.name] for i in self._inputs})
        return [np.array(req.get_output_tensor(k).data, copy=True) for k in range(self._n_out)]


def resolve(choice: Backend | Literal["auto"]) -> Backend:
    """``auto``: OpenVINO where this CPU computes bfloat16 natively (:func:`bf16_available`), else
    ONNX Runtime; any other choice as it is."""
    if choice == "auto":
        return "openvino" if bf16_available() else "onnxruntime"
    return choice


def session(path: Path, threads: int = 1, backend: Backend = "onnxruntime") -> ModelSession:
    """Open an ONNX model with ``backend`` (OpenVINO: bfloat16, see the module notes)."""
    if backend == "openvino":
        return OpenVinoSession(path, threads)
    if backend != "onnxruntime":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    out: ModelSession = ort_session(path, threads)
    return out
