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
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

Backend = Literal["onnxruntime", "openvino"]
BACKENDS: tuple[Backend, ...] = ("onnxruntime", "openvino")
Shapes = tuple[tuple[int, ...], ...]


class ModelSession(Protocol):
    """The part of :class:`onnxruntime.InferenceSession` the plate reader uses."""

    def get_inputs(self) -> list[Any]: ...

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...

    def get_modelmeta(self) -> Any: ...


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
    shape: list[int | str]


@dataclass(frozen=True)
class _Meta:
    custom_metadata_map: dict[str, str]


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
    static_after : int or None
        When an input shape has been seen this many times, the model is also compiled for that
        shape alone, and inputs of that shape run there: OpenVINO's CPU kernels for a static shape
        are much faster than its dynamic-shape ones (the plate detector at 544 x 960: ~31 vs ~45 ms in
        bfloat16, ~75 vs ~104 ms of ONNX Runtime in float32; session 8 of
        ``rtcc/plates/models/MODEL_CARD.md``), while a compilation costs ~0.4 s. A camera sends
        frames of one size, so its shape is compiled once; shapes seen fewer times keep the dynamic
        model. ``None``: the dynamic model only.
    static_max : int
        At most this many shapes are kept compiled (the least recently used is dropped).

    Raises
    ------
    RuntimeError
        OpenVINO is not installed, or ``bf16`` was asked of a CPU without it.
    """

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        precision: Literal["bf16", "f32"] = "bf16",
        static_after: int | None = None,
        static_max: int = 8,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise RuntimeError("the openvino backend needs OpenVINO: pip install 'rtcc[openvino]'") from exc
        if precision == "bf16" and not bf16_available():
            raise RuntimeError("this CPU has no native bfloat16 (AMX or AVX-512 BF16): use onnxruntime")
        self._core = ov.Core()
        self._path = path
        model = self._core.read_model(str(path))
        self._inputs = [
            _Input(i.get_any_name(), [d.get_length() if d.is_static else "?" for d in i.get_partial_shape()])
            for i in model.inputs
        ]
        framework = model.get_rt_info()["framework"] if model.has_rt_info("framework") else {}
        self._meta = _Meta({str(k): v.astype(str) for k, v in framework.items()})
        self._n_out = len(model.outputs)
        self._config = {
            "INFERENCE_NUM_THREADS": str(threads),
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        }
        self._compiled = self._core.compile_model(model, "CPU", self._config)
        self._static_after = static_after
        self._static_max = static_max
        self._static: OrderedDict[Shapes, Any] = OrderedDict()
        self._seen: dict[Shapes, int] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # infer requests are not shared between threads

    def get_inputs(self) -> list[_Input]:
        return list(self._inputs)

    def get_modelmeta(self) -> _Meta:
        """The ONNX file's metadata (``metadata_props``), as ONNX Runtime's ``custom_metadata_map``."""
        return self._meta

    @property
    def static_shapes(self) -> list[Shapes]:
        """The input shapes compiled on their own now, least recently used first."""
        with self._lock:
            return list(self._static)

    def _compiled_for(self, shapes: Shapes) -> Any:
        """The compiled model that runs inputs of ``shapes`` (see ``static_after``)."""
        if self._static_after is None:
            return self._compiled
        with self._lock:
            compiled = self._static.get(shapes)
            if compiled is not None:
                self._static.move_to_end(shapes)
                return compiled
            if len(self._seen) > 4096:  # many one-off shapes: forget the counts
                self._seen.clear()
            seen = self._seen[shapes] = self._seen.get(shapes, 0) + 1
            if seen < self._static_after:
                return self._compiled
            model = self._core.read_model(str(self._path))
            model.reshape({i.name: list(shape) for i, shape in zip(self._inputs, shapes, strict=True)})
            compiled = self._static[shapes] = self._core.compile_model(model, "CPU", self._config)
            if len(self._static) > self._static_max:
                self._static.popitem(last=False)
            return compiled

    def run(
        self, output_names: list[str] | None, input_feed: dict[str, npt.NDArray[np.float32]]
    ) -> list[npt.NDArray[np.float32]]:
        feed = {i.name: input_feed[i.name] for i in self._inputs}
        shapes = tuple(x.shape for x in feed.values())
        compiled = self._compiled_for(shapes)
        reqs: dict[Shapes | None, tuple[Any, Any]] | None = getattr(self._local, "reqs", None)
        if reqs is None:
            reqs = self._local.reqs = {}
        key = None if compiled is self._compiled else shapes
        entry = reqs.get(key)
        if entry is None or entry[0] is not compiled:  # new, or compiled again after being dropped
            if len(reqs) > self._static_max + 1:
                reqs.clear()
            entry = reqs[key] = (compiled, compiled.create_infer_request())
        req = entry[1]
        req.infer(feed)
        return [np.array(req.get_output_tensor(k).data, copy=True) for k in range(self._n_out)]


def resolve(choice: Backend | Literal["auto"]) -> Backend:
    """``auto``: OpenVINO where this CPU computes bfloat16 natively (:func:`bf16_available`), else
    ONNX Runtime; any other choice as it is."""
    if choice == "auto":
        return "openvino" if bf16_available() else "onnxruntime"
    return choice


def session(
    path: Path,
    threads: int = 1,
    backend: Backend = "onnxruntime",
    precision: Literal["bf16", "f32"] = "bf16",
    static_after: int | None = None,
) -> ModelSession:
    """Open an ONNX model with ``backend``; OpenVINO computes in ``precision`` and compiles frequent
    input shapes on their own after ``static_after`` uses (:class:`OpenVinoSession`)."""
    if backend == "openvino":
        return OpenVinoSession(path, threads, precision, static_after)
    if backend != "onnxruntime":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    out: ModelSession = ort_session(path, threads)
    return out
