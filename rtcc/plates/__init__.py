"""Licence plates: read plates in images offline on the CPU, and match reads against hotlists.

* ``recognize`` — :class:`PlateReader` / :class:`PlateResult`: the public API. ``PlateReader.load()``
  opens the shipped models; ``reader.read(bgr_image)`` returns the plates best first, each with
  normalized text, overall and per-character confidence, a pixel box and the US state when the
  plate's own text tells it (``region``). When nothing is read, a contrast-equalised, tiled second
  detection (the rescue) runs; an edge check adds a character cut off at the region's border.
* ``detect`` — PP-OCRv4 text detector (ONNX, Apache-2.0, from the rapidocr wheel).
* ``region`` — the general PP-OCRv4 recognizer: the state from the text around the plate, and a
  second reading of uncertain plates restricted to ``0-9A-Z`` (fused with the CRNN in ``recognize``).
* ``ocr`` — the plate CRNN (ONNX, trained here; see ``models/MODEL_CARD.md``).
* ``normalize`` — the normalized plate form of reads (uppercase ``0-9A-Z``).
* ``matching`` / ``hotlist_import`` — hotlist entries, NCIC and CSV imports, exact / look-alike /
  wildcard matching of reads.

The command line is ``rtcc plates read IMAGE...`` (``rtcc.cli.plates``); the accuracy and speed
figures come from ``bench/plates_recognition.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtcc.plates.normalize import normalize_plate

if TYPE_CHECKING:
    from rtcc.plates.recognize import PlateReader, PlateResult

__all__ = ["PlateReader", "PlateResult", "normalize_plate"]


def __getattr__(name: str) -> Any:
    # lazy: hotlist matching imports this package and must not pay for OpenCV / ONNX Runtime
    if name in ("PlateReader", "PlateResult"):
        from rtcc.plates import recognize

        return getattr(recognize, name)
    raise AttributeError(f"module 'rtcc.plates' has no attribute {name!r}")
