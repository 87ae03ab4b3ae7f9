"""Audit 8: ``rtcc plates read`` checks an image's pixel count from its header before decoding it."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.errors import PayloadTooLarge
from rtcc.plates.ingest import decode_image, image_header
from tests.plates.render_helpers import car_with_plate

PLATE = "ABC1234"


def png_header(width: int, height: int) -> bytes:
    """A small PNG file declaring ``width`` x ``height`` RGB pixels (its pixel data is cut short)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `plates` a sub-command
    return app


def test_header_check_refuses_before_decoding() -> None:
    assert image_header(png_header(640, 480), max_pixels=400_000) == (640, 480, "PNG")
    with pytest.raises(PayloadTooLarge, match="8000x8000 pixels; the limit is 40000000"):
        image_header(png_header(8000, 8000), max_pixels=40_000_000)
    with pytest.raises(PayloadTooLarge, match="too large"):  # beyond PIL's own decompression-bomb limit
        decode_image(png_header(20000, 20000), max_bytes=2**20, max_pixels=40_000_000)


def test_cli_read_skips_images_with_too_many_pixels(tmp_path: Path) -> None:
    good = tmp_path / "car.jpg"
    cv2.imwrite(str(good), car_with_plate(PLATE))
    big = tmp_path / "big.png"
    big.write_bytes(png_header(8000, 8000))  # 64 Mpx: over the default limit (40 Mpx)
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(20000, 20000))  # the auditor's 20000x20000 PNG
    result = CliRunner().invoke(_app(), ["plates", "read", str(big), str(good), str(huge)])
    assert result.exit_code == 2
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [line["file"] for line in lines] == [str(good)]
    assert lines[0]["plates"] and lines[0]["plates"][0]["text"] == PLATE
    errors = result.stderr.replace("\n", " ")
    assert "big.png: the image is 8000x8000 pixels; the limit is 40000000 (option --max-pixels)" in errors
    assert "huge.png: the image is too large" in errors
    assert "2 of 3 file(s) could not be read" in errors


def test_cli_read_max_pixels_option(tmp_path: Path) -> None:
    good = tmp_path / "car.jpg"
    cv2.imwrite(str(good), car_with_plate(PLATE))
    h, w = cv2.imread(str(good)).shape[:2]
    result = CliRunner().invoke(_app(), ["plates", "read", "--max-pixels", str(w * h - 1), str(good)])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{w}x{h} pixels" in result.stderr.replace("\n", " ")


def test_the_pixel_limit_stops_at_what_the_decoder_accepts(tmp_path: Path) -> None:
    """Audit (session 12): `--max-pixels 400000000` was accepted, then a 182 Mpx image was refused as
    "over 178956970 pixels; the limit is 400000000": the option now stops at the decoder's limit."""
    result = CliRunner().invoke(_app(), ["plates", "read", "--max-pixels", "400000000", "x.png"])
    assert result.exit_code == 2 and "178000000" in result.output
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(14000, 13000))  # 182 Mpx
    result = CliRunner().invoke(_app(), ["plates", "read", "--max-pixels", "178000000", str(huge)])
    assert result.exit_code == 2
    assert "more than the image decoder accepts" in result.stderr.replace("\n", " ")
