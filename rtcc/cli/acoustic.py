"""``rtcc acoustic detect|locate|calibrate|classify`` — the command-line contracts of the gunshot room.

Each command lives in its own module (``acoustic_detect``, ``acoustic_locate``, ``acoustic_calibrate``,
``acoustic_classify``) that defines ``register(app)``.
"""

from __future__ import annotations

import importlib

import typer

acoustic_app = typer.Typer(
    help="Gunshot detection: detect pulses, locate shots, classify sounds.", no_args_is_help=True
)

for _name in ("acoustic_detect", "acoustic_locate", "acoustic_calibrate", "acoustic_classify"):
    try:
        _mod = importlib.import_module(f"rtcc.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command not written yet
        if _exc.name != f"rtcc.cli.{_name}":
            raise
        continue
    _mod.register(acoustic_app)
