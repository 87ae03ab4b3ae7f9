"""``rtcc acoustic classify AUDIO...`` — gunshot probability of each file, one JSON object per line.

Output per readable file: ``{"file", "gunshot_probability", "label"}`` (label ``gunshot`` or
``not_gunshot``). A file that cannot be read or holds no usable audio (missing, a directory, a WAV
file shorter than its header says) is named on stderr and skipped; the others are still classified,
and the command exits 2 at the end if any file failed. Of a multichannel file the channel with the
most energy is scored, as ``detect`` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``classify`` command to the ``acoustic`` command group.

    Parameters
    ----------
    app : typer.Typer
        The ``rtcc acoustic`` group.
    """

    @app.command("classify")
    def classify(
        audio: Annotated[
            list[Path],
            typer.Argument(help="Sound files (WAV, FLAC…, any rate) around an impulse.", show_default=False),
        ],
    ) -> None:
        """Gunfire or not: calibrated probability for each file (shipped ONNX model)."""
        from rtcc.acoustic.classify import AudioError, GunshotClassifier, classify_file
        from rtcc.cli.output import err

        clf = GunshotClassifier.load()
        failed = 0
        for path in audio:
            try:
                p = classify_file(path, clf)
            except AudioError as exc:
                failed += 1
                err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
                continue
            record = {"file": str(path), "gunshot_probability": round(p, 6), "label": clf.label(p)}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        if failed:
            err.print(
                f"[bold red]error:[/] {failed} of {len(audio)} files could not be classified", highlight=False
            )
            raise typer.Exit(2)
