"""``rtcc plates read IMAGE...`` — the licence-plate recognition contract.

One JSON object per line per image, in argument order::

    {"file": "a.jpg", "plates": [{"text": "ABC123", "confidence": 0.97, "box": [x, y, w, h]}]}

best plate first. A file that cannot be read as an image is named on stderr and skipped; the
command goes on with the others and exits 2 at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rtcc.cli.output import err, fail

MAX_FILE_BYTES = 64 * 2**20
"""Larger files are refused unread (a camera frame is a few MB)."""


def _skip(path: Path, why: str) -> None:
    err.print(f"[bold red]error:[/] {escape(str(path))}: {why}", highlight=False)


def read(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, …).", show_default=False)],
    threads: Annotated[int, typer.Option(min=1, max=64, help="ONNX Runtime threads per model.")] = 1,
) -> None:
    """Detect and read the licence plates in each image; one JSON line per image."""
    import cv2
    import numpy as np

    from rtcc.plates.recognize import PlateReader

    reader = PlateReader.load(threads=threads)
    bad = 0
    for path in images:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                _skip(path, f"larger than {MAX_FILE_BYTES >> 20} MiB, skipped")
                bad += 1
                continue
            data = np.fromfile(path, dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        except OSError as exc:
            _skip(path, f"cannot read: {exc.strerror or exc}")
            bad += 1
            continue
        if image is None:
            _skip(path, "not a readable image (corrupt, empty or unknown format)")
            bad += 1
            continue
        plates = reader.read(np.asarray(image, dtype=np.uint8))
        line = {
            "file": str(path),
            "plates": [
                {"text": p.text, "confidence": round(p.confidence, 4), "box": list(p.box)} for p in plates
            ],
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    if bad:
        fail(f"{bad} of {len(images)} file(s) could not be read", 2)


def register(app: typer.Typer) -> None:
    """Add the ``plates`` command group (``plates read``) to ``app``."""
    plates_app = typer.Typer(help="Licence plates: read plates in images.", no_args_is_help=True)
    plates_app.command("read")(read)
    app.add_typer(plates_app, name="plates")
