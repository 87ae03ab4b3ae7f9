"""Plate recognition: exact-plate accuracy on the end-to-end US / EU sets and images/s per core.

Accuracy: the reader's best (first) plate of each image of the declared split part
(``training/plates/split.json``; ``test`` by default, never tuned on) against the ground truth text,
strict and with O->0 folded (as ``../shared/eval/eval_plates.py`` scores it). Speed: every image of
that part resized to 1280x720, one ONNX Runtime thread per model, images/s on one core (wall time,
models loaded before timing). The machine's cores are shared, so speed figures are a floor.

With ``--scorer``, the independent scorer ``../shared/eval/eval_plates.py`` is also run on the same
part (a temporary folder of symlinks laid out like the data, one per region) through
``rtcc plates read``, and its summary lines are recorded with the figures.

Usage: python bench/plates_recognition.py [--part test|tune] [--data DIR] [--no-write] [--misses] [--scorer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

from rtcc.plates import PlateReader

DATA = ROOT.parent / "shared/data/alpr/openalpr-benchmarks"
SCORER = ROOT.parent / "shared/eval/eval_plates.py"
# `rtcc plates read` whether or not the `plates` group is mounted on the main app yet
RTCC_PLATES = (
    "import typer; from rtcc.cli.plates import register; a = typer.Typer(); register(a); "
    "a.command('noop')(lambda: None); a()"
)


def run_scorer(data: Path, region: str, names: list[str]) -> str:
    """Run the independent scorer on ``names`` of ``region``; return its summary line."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for f in (name, name[:-4] + ".txt"):
                (Path(tmp) / f).symlink_to(data / "endtoend" / region / f)
        cmd = [sys.executable, str(SCORER), tmp, "--", sys.executable, "-c", RTCC_PLATES]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.startswith("plates:")][-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["test", "tune"], default="test")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--misses", action="store_true", help="print every miss")
    ap.add_argument("--scorer", action="store_true", help="also run ../shared/eval/eval_plates.py")
    args = ap.parse_args()
    split = json.loads((ROOT / "training/plates/split.json").read_text())
    reader = PlateReader.load(threads=1)
    figures: dict[str, object] = {}
    all_frames = []
    for region in ("us", "eu"):
        names = split[region][args.part]
        strict = folded = 0
        for name in names:
            img = cv2.imread(str(args.data / "endtoend" / region / name))
            fields = (args.data / "endtoend" / region / (name[:-4] + ".txt")).read_text().strip().split("\t")
            truth = fields[-1].upper()
            plates = reader.read(img)
            got = plates[0].text if plates else ""
            strict += got == truth
            folded += got.replace("O", "0") == truth.replace("O", "0")
            if args.misses and got.replace("O", "0") != truth.replace("O", "0"):
                top = [(p.text, round(p.confidence, 2)) for p in plates[:3]]
                print(f"miss {region} {name}: {truth} -> {got} {top}")
            all_frames.append(cv2.resize(img, (1280, 720), interpolation=cv2.INTER_AREA))
        n = len(names)
        figures[f"{region}_images"] = n
        figures[f"{region}_exact_pct"] = round(100 * strict / n, 1)
        figures[f"{region}_exact_folded_pct"] = round(100 * folded / n, 1)
        print(
            f"{region}: exact {strict}/{n} = {100 * strict / n:.1f}%, O->0 folded {folded}/{n} = "
            f"{100 * folded / n:.1f}%",
            flush=True,
        )
    reader.read(all_frames[0])
    t0 = time.perf_counter()
    for frame in all_frames:
        reader.read(frame)
    dt = time.perf_counter() - t0
    figures["images_per_s_per_core_1280x720"] = round(len(all_frames) / dt, 2)
    figures["ms_per_image_1280x720"] = round(1000 * dt / len(all_frames), 1)
    ms = 1000 * dt / len(all_frames)
    print(f"speed: {len(all_frames) / dt:.2f} images/s on one core ({ms:.0f} ms/image)")
    if args.scorer:
        for region in ("us", "eu"):
            line = run_scorer(args.data, region, split[region][args.part])
            figures[f"{region}_eval_plates_summary"] = line
            print(f"{region} scorer: {line}")
    if not args.no_write:
        write_result(
            "plates_recognition",
            figures,
            {
                "split": f"training/plates/split.json part={args.part}",
                "threads": 1,
                "data": "openalpr-benchmarks endtoend",
            },
        )


if __name__ == "__main__":
    main()
