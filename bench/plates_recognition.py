"""Plate recognition: exact-plate accuracy on the end-to-end US / EU sets and images/s per core.

Accuracy: the reader's best (first) plate of each image of the declared split part
(``training/plates/split.json``; ``test`` by default, never tuned on; ``val`` is the held-out half of
``tune`` from ``training/plates/tune_holdout.py``) against the ground truth text,
strict and with O->0 folded (as ``../shared/eval/eval_plates.py`` scores it). Speed: every image of
that part resized to 1280x720, one inference thread per model, images/s on one core: wall time
and process CPU time (models loaded and the frame size compiled before timing, as for a camera that
has sent three frames). The machine's 2 cores are shared with other jobs, so the wall figure is a
floor; CPU time (one thread) is the work one core does per image. It moves by 10-25 % from run to
run on this VM: ``--speed-repeat N`` times the images N times and reports the median run (every run's
CPU ms per image in ``cpu_ms_per_image_runs``).

With ``--scorer``, the independent scorer ``../shared/eval/eval_plates.py`` is also run on the same
part (a temporary folder of symlinks laid out like the data, one per region) through
``rtcc plates read``, and its summary lines are recorded with the figures.

The default reader re-reads uncertain plates with the shipped second reader (``PlateReader(second=...)``,
``rtcc.plates.recognize.Fusion``; since session 7 the fine-tuned PP-OCRv4 plate recognizer
``plate_ppocr.onnx``, before it the general recognizer: ``--second-model general``); ``--no-second``
measures the plate recognizer alone; ``--second-model ONNX`` re-reads with another plate recognizer (
``--model`` too takes either kind). It also
looks again closer when nothing is read and checks the best plate for a character cut off at its
edge (``PlateReader(rescue=..., edge=...)``, session 4 round 2); ``--no-rescue`` / ``--no-edge`` turn
those off. It also reads
the state (``region``) of each image's best plate; each image where it is told is printed
(``region ...``) so it can be checked by eye, and counted (``*_region_told``).

Usage: python bench/plates_recognition.py [--part test|tune|val] [--data DIR] [--no-write] [--misses]
[--scorer] [--model ONNX] [--second-model ONNX] [--detector ONNX] [--fast] [--no-regions] [--no-second]
[--no-rescue] [--no-edge] [--regions-text-only] [--speed-repeat N] [--note TEXT]
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
from rtcc.plates.detect import DET_MODEL, DET_MODEL_INT8, TextDetector
from rtcc.plates.ocr import SECOND_MODEL, PlateOCR
from rtcc.plates.recognize import EDGE, STATIC_AFTER
from rtcc.plates.region import RegionReader, TextRecognizer

sys.path.insert(0, str(ROOT / "training/plates"))
from tune_holdout import holdout

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
    ap.add_argument("--part", choices=["test", "tune", "val"], default="test")
    ap.add_argument("--model", type=Path, help="recognizer ONNX (default: the shipped one)")
    ap.add_argument("--fast", action="store_true", help="int8 detector (PlateReader.load(fast=True))")
    ap.add_argument("--detector", type=Path, help="detector ONNX (default: the shipped float one)")
    ap.add_argument("--no-regions", action="store_true", help="no state reading (load(regions=False))")
    ap.add_argument(
        "--regions-text-only", action="store_true", help="state from printed names only (before session 5)"
    )
    ap.add_argument("--no-second", action="store_true", help="no second recognizer (load(second=False))")
    ap.add_argument(
        "--second-model",
        help="a plate recognizer ONNX as the second reader, or 'general' (default: the shipped one)",
    )
    ap.add_argument(
        "--backend",
        choices=["onnxruntime", "openvino"],
        default="onnxruntime",
        help="detector runtime (openvino: bfloat16, float re-detection when uncertain)",
    )
    ap.add_argument("--no-rescue", action="store_true", help="no closer look when nothing is read")
    ap.add_argument("--no-edge", action="store_true", help="no check for a character cut off at the edge")
    ap.add_argument("--note", default="", help="free text recorded with the figures")
    ap.add_argument("--speed-images", type=int, default=0, help="time only this many images (0 = all)")
    ap.add_argument(
        "--speed-repeat", type=int, default=1, help="time the images this many times; report the median run"
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--misses", action="store_true", help="print every miss")
    ap.add_argument("--scorer", action="store_true", help="also run ../shared/eval/eval_plates.py")
    args = ap.parse_args()
    split = json.loads((ROOT / "training/plates/split.json").read_text())
    if args.part == "val":
        split = {region: {"val": names} for region, names in holdout(args.data).items()}
    det_model = args.detector or (DET_MODEL_INT8 if args.fast else DET_MODEL)
    # as PlateReader.load: with OpenVINO, frame sizes compiled alone after STATIC_AFTER uses, the float
    # detector and the PP-OCR recognizers in float32 (session 8)
    static = STATIC_AFTER if args.backend == "openvino" else None
    det = TextDetector(threads=1, model=det_model, backend=args.backend, static_after=static)
    precise = (
        TextDetector(threads=1, model=det_model, backend=args.backend, precision="f32", static_after=static)
        if args.backend != "onnxruntime"
        else None
    )
    general = TextRecognizer(threads=1, backend=args.backend)
    region_reader = (
        None
        if args.no_regions
        else RegionReader(general, state_model=None, bands=False)
        if args.regions_text_only
        else RegionReader(general)
    )
    second: PlateOCR | TextRecognizer | None = None
    if args.second_model == "general" and not args.no_second:
        second = general
    elif not args.no_second:
        second = PlateOCR(
            Path(args.second_model) if args.second_model else SECOND_MODEL, threads=1, backend=args.backend
        )
    reader = PlateReader(
        det,
        PlateOCR(args.model, threads=1),
        region_reader=region_reader,
        second=second,
        rescue=not args.no_rescue,
        edge=None if args.no_edge else EDGE,
        precise=precise,
    )
    figures: dict[str, object] = {}
    all_frames = []
    for region in ("us", "eu"):
        names = split[region][args.part]
        strict = folded = told = 0
        for name in names:
            img = cv2.imread(str(args.data / "endtoend" / region / name))
            fields = (args.data / "endtoend" / region / (name[:-4] + ".txt")).read_text().strip().split("\t")
            truth = fields[-1].upper()
            plates = reader.read(img)
            got = plates[0].text if plates else ""
            if plates and plates[0].region:
                told += 1
                print(f"region {region} {name}: {truth} -> {got} {plates[0].region}")
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
        figures[f"{region}_region_told"] = told
        print(
            f"{region}: exact {strict}/{n} = {100 * strict / n:.1f}%, O->0 folded {folded}/{n} = "
            f"{100 * folded / n:.1f}%",
            flush=True,
        )
    for _ in range(STATIC_AFTER):  # a camera's steady state: its frame size compiled (OpenVINO)
        reader.read(all_frames[0])
    if args.speed_images:
        all_frames = all_frames[: args.speed_images]
    n = len(all_frames)
    runs: list[tuple[float, float]] = []
    for _ in range(args.speed_repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for frame in all_frames:
            reader.read(frame)
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    runs.sort(key=lambda r: r[1])
    dt, cpu = runs[len(runs) // 2]  # the median run by CPU time
    if len(runs) > 1:
        figures["cpu_ms_per_image_runs"] = [round(1000 * c / n, 1) for _, c in runs]
    figures["images_per_s_per_core_1280x720"] = round(n / dt, 2)
    figures["ms_per_image_1280x720"] = round(1000 * dt / n, 1)
    figures["images_per_cpu_s_1280x720"] = round(n / cpu, 2)
    figures["cpu_ms_per_image_1280x720"] = round(1000 * cpu / n, 1)
    print(
        f"speed: {n / dt:.2f} images/s on one core wall ({1000 * dt / n:.0f} ms/image), "
        f"{n / cpu:.2f} images per CPU-second ({1000 * cpu / n:.0f} CPU ms/image)"
    )
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
                "model": str(args.model or "shipped"),
                "detector": str(args.detector)
                if args.detector
                else "int8"
                if args.fast
                else "float (fused graph, training/plates/fuse_det.py)",
                "regions": False if args.no_regions else "text only" if args.regions_text_only else True,
                "second_reader": False if args.no_second else str(args.second_model or SECOND_MODEL.name),
                "rescue": not args.no_rescue,
                "edge": not args.no_edge,
                "backend": args.backend,
                "note": args.note,
                "threads": 1,
                "data": "openalpr-benchmarks endtoend",
            },
        )


if __name__ == "__main__":
    main()
