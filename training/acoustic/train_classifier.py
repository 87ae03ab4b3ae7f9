#!/usr/bin/env python3
"""Train the shipped gunshot classifier: features -> gradient-boosted trees -> ONNX + Platt calibration.

Usage (training extra: scikit-learn, skl2onnx, onnx)::

    python training/acoustic/train_classifier.py [--data ../shared/data/acoustic] [--jobs 2]

Writes ``rtcc/acoustic/models/gunshot_classifier.onnx`` (calibration in its metadata),
``rtcc/acoustic/models/gunshot_classifier.card.json`` (split sizes, leakage check, calibration
figures) and, when missing, ``training/acoustic/split.json``. The test split is never read here;
``bench/acoustic_classify.py`` measures it. See ``data.py`` for how windows are cut and degraded.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import data as D  # noqa: E402

from rtcc.acoustic import features as F  # noqa: E402

MODEL_DIR = ROOT / "rtcc" / "acoustic" / "models"
N_DEG_NEG_TRAIN = 4
N_DEG_GUN_TRAIN = 2
N_DEG_NEG_CAL = 3

_BGS: list[np.ndarray] = []
_ROOT = Path()


def _init(bgs: list[np.ndarray], root: Path) -> None:
    global _BGS, _ROOT
    _BGS, _ROOT = bgs, root


def _job(args: tuple[dict[str, str], str, int]) -> list[tuple[np.ndarray, int, str, str, str]]:
    """Feature rows of one manifest row: (features, y, label, variant, file)."""
    row, mode, seed = args
    path = _ROOT / row["file"]
    x, _ = D.load(path)
    rng = np.random.default_rng(seed)
    gun = row["label"] == "gunshot"
    out: list[tuple[np.ndarray, int, str, str, str]] = []
    if gun:
        anchors = D.gun_anchors(path) if row["file"].startswith("shotspotter_pittsburgh") else None
        n_deg = N_DEG_GUN_TRAIN if mode == "train" else 0
        variants = [("orig", x)] + [(f"deg{i}", D.degrade(x, _BGS, rng, gunshot=True)) for i in range(n_deg)]
        for name, v in variants:
            if mode == "train":
                for o in D.positive_onsets(v, anchors):
                    out.append((F.window_features(F.cut_window(v, o)), 1, "gunshot", name, row["file"]))
                for o in D.street_onsets(v, anchors):
                    out.append((F.window_features(F.cut_window(v, o)), 0, "sensor_street", name, row["file"]))
            else:  # calibration: all run-time candidates, scored as a clip
                feats, _ = F.clip_features(v)
                out += [(f, 1, "gunshot", name, row["file"]) for f in feats]
    else:
        n_deg = N_DEG_NEG_TRAIN if mode == "train" else N_DEG_NEG_CAL
        variants = [("raw", x)] + [(f"deg{i}", D.degrade(x, _BGS, rng, gunshot=False)) for i in range(n_deg)]
        for name, v in variants:
            feats, _ = F.clip_features(v)
            out += [(f, 0, row["label"], name, row["file"]) for f in feats]
    return out


def build(
    rows: list[dict[str, str]], groups: set[str], mode: str, bgs: list[np.ndarray], root: Path, jobs: int
) -> dict[str, np.ndarray]:
    todo = [
        (r, mode, 1000 + i)
        for i, r in enumerate(rows)
        if r["group_id"] in groups and r["label"] != "sensor_test_unlabeled"
    ]
    with Pool(jobs, initializer=_init, initargs=(bgs, root)) as pool:
        res = pool.map(_job, todo, chunksize=4)
    flat = [t for r in res for t in r]
    return {
        "X": np.stack([t[0] for t in flat]),
        "y": np.array([t[1] for t in flat]),
        "label": np.array([t[2] for t in flat]),
        "variant": np.array([t[3] for t in flat]),
        "path": np.array([t[4] for t in flat]),
    }


def export_onnx(model: Any, props: dict[str, str]) -> Any:
    """A fitted binary HistGradientBoostingClassifier as an ONNX TreeEnsembleRegressor giving log-odds.

    Input ``features`` float32 (n, N_FEATURES); output ``logit`` float32 (n, 1) = the model's
    ``decision_function``. Written by hand (skl2onnx 1.20 fails on scikit-learn 1.9's trees); the
    training script checks it against scikit-learn. Features never hold NaN, so missing-value routing
    is not needed.
    """
    from onnx import TensorProto, helper

    a: dict[str, list[Any]] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for t, (pred,) in enumerate(model._predictors):
        nodes = pred.nodes
        for i, nd in enumerate(nodes):
            if nd["is_categorical"]:
                raise ValueError("categorical splits are not supported")
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            leaf = bool(nd["is_leaf"])
            a["nodes_featureids"].append(0 if leaf else int(nd["feature_idx"]))
            a["nodes_values"].append(0.0 if leaf else float(nd["num_threshold"]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(nd["left"]))
            a["nodes_falsenodeids"].append(0 if leaf else int(nd["right"]))
            a["nodes_missing_value_tracks_true"].append(0 if leaf else int(nd["missing_go_to_left"]))
            if leaf:
                a["target_treeids"].append(t)
                a["target_nodeids"].append(i)
                a["target_ids"].append(0)
                a["target_weights"].append(float(nd["value"]))
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["features"],
        ["logit"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[float(np.ravel(model._baseline_prediction)[0])],
        **a,
    )
    graph = helper.make_graph(
        [node],
        "gunshot_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, F.N_FEATURES])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, [None, 1])],
    )
    onx = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="rtcc training/acoustic/train_classifier.py",
    )
    onx.ir_version = 8
    helper.set_model_props(onx, props)
    return onx


def quiet_window_check(
    rows: list[dict[str, str]],
    split: dict[str, list[str]],
    bgs_train: list[np.ndarray],
    bgs_cal: list[np.ndarray],
    root: Path,
) -> dict[str, float]:
    """Leakage check: can a model tell the classes apart from the quietest 0.5 s of each clip alone?"""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    def quiet(x: np.ndarray) -> np.ndarray:
        # Live part only: ShotSpotter clips open with seconds of digital silence (and ESC-50 clips may
        # end with it), a trivial cue that says nothing about the sound channel.
        live = np.nonzero(np.abs(np.diff(x)) > 0)[0]
        if live.size > 2:
            x = x[live[0] + 1 : live[-1] + 1]
        env = np.convolve(x**2, np.ones(600) / 600, mode="valid")
        n = int(F.WINDOW_S * F.SAMPLE_RATE_HZ)
        c = np.concatenate(([0.0], np.cumsum(env)))
        s = 0 if env.size <= n else int(np.argmin(c[n:] - c[:-n]))
        return F.window_features(F.cut_window(x, s + int(F.PRE_S * F.SAMPLE_RATE_HZ)))

    sets: dict[str, dict[str, list[Any]]] = {}
    for part, bgs in (("train", bgs_train), ("calibration", bgs_cal)):
        groups = set(split[part])
        rng = np.random.default_rng(7)
        acc: dict[str, list[Any]] = {"Xr": [], "Xd": [], "y": []}
        for r in rows:
            if r["group_id"] not in groups or r["label"] == "sensor_test_unlabeled":
                continue
            x, _ = D.load(root / r["file"])
            gun = r["label"] == "gunshot"
            acc["Xr"].append(quiet(x))
            acc["Xd"].append(quiet(x if gun else D.degrade(x, bgs, rng, gunshot=False)))
            acc["y"].append(int(gun))
        sets[part] = acc
    out = {}
    for key, name in (("Xr", "raw_negatives"), ("Xd", "degraded_negatives")):
        m = HistGradientBoostingClassifier(max_iter=200, random_state=0, class_weight="balanced")
        m.fit(np.array(sets["train"][key]), np.array(sets["train"]["y"]))
        p = m.predict_proba(np.array(sets["calibration"][key]))[:, 1]
        out[f"quiet_window_auc_{name}"] = round(float(roc_auc_score(sets["calibration"]["y"], p)), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "acoustic")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rtcc_gunshot_features"))
    ap.add_argument("--skip-leakage-check", action="store_true")
    ap.add_argument("--out", type=Path, default=MODEL_DIR, help="folder for the model and its card")
    ap.add_argument("--refit", action="store_true", help="ignore a cached fitted model")
    args = ap.parse_args()

    import onnx
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from rtcc.acoustic.classify import GunshotClassifier

    t_start = time.time()
    rows = D.read_manifest(args.data)
    split_file = HERE / "split.json"
    if not split_file.exists():
        split_file.write_text(json.dumps(D.make_split(rows), indent=1) + "\n")
    split = json.loads(split_file.read_text())["splits"]
    bgs = {p: D.backgrounds(rows, args.data, set(split[p])) for p in ("train", "calibration")}
    args.cache.mkdir(parents=True, exist_ok=True)
    parts: dict[str, dict[str, np.ndarray]] = {}
    for part in ("train", "calibration"):
        cf = args.cache / f"{part}_v{F.FEATURE_VERSION}_r3.npz"
        if cf.exists():
            parts[part] = dict(np.load(cf))
        else:
            t = time.time()
            parts[part] = build(rows, set(split[part]), part, bgs[part], args.data, args.jobs)
            np.savez(cf, **parts[part])
            print(f"{part}: {len(parts[part]['y'])} windows in {time.time() - t:.0f} s", flush=True)
    tr, cal = parts["train"], parts["calibration"]
    print(f"train windows: {int(tr['y'].sum())} gunshot, {int((1 - tr['y']).sum())} other", flush=True)

    model_cache = args.cache / f"model_v{F.FEATURE_VERSION}_r3.pkl"
    if model_cache.exists() and not args.refit:
        model = pickle.loads(model_cache.read_bytes())
    else:
        model = HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.06,
            max_leaf_nodes=15,
            min_samples_leaf=20,
            l2_regularization=1.0,
            class_weight="balanced",
            early_stopping=False,
            random_state=0,
        )
        t = time.time()
        model.fit(tr["X"], tr["y"])
        print(f"fit {time.time() - t:.0f} s", flush=True)
        model_cache.write_bytes(pickle.dumps(model))

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gunshot_classifier.onnx"
    onx = export_onnx(model, {"feature_version": str(F.FEATURE_VERSION)})
    onnx.save(onx, str(path))
    check = GunshotClassifier.from_path(path).window_logits(cal["X"])
    diff = float(np.max(np.abs(check - model.decision_function(cal["X"]))))
    print(f"ONNX vs sklearn log-odds: max |diff| {diff:.2e}", flush=True)

    # Calibration split: clip score = max window log-odds, through the ONNX model as served.
    clf = GunshotClassifier.from_path(path)
    z = clf.window_logits(cal["X"])
    keys = np.char.add(np.char.add(cal["path"], "|"), cal["variant"])
    uniq, inv = np.unique(keys, return_inverse=True)
    clip_z = np.full(uniq.size, -np.inf)
    np.maximum.at(clip_z, inv, z)
    clip_y = np.zeros(uniq.size, int)
    clip_y[inv] = cal["y"]
    clip_label = np.empty(uniq.size, dtype=object)
    clip_label[inv] = cal["label"]
    lr = LogisticRegression(C=1e4).fit(clip_z[:, None], clip_y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    prob = 1.0 / (1.0 + np.exp(-(a * clip_z + b)))
    neg = prob[clip_y == 0]
    # Label threshold: above every calibration negative, and not below 0.5.
    threshold = float(max(0.5, min(0.99, float(neg.max()) + 1e-3)))
    onx = export_onnx(
        model,
        {
            "feature_version": str(F.FEATURE_VERSION),
            "platt_a": repr(a),
            "platt_b": repr(b),
            "threshold": repr(threshold),
        },
    )
    onnx.save(onx, str(path))

    bins = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(prob, bins) - 1, 0, 9)
    ece = float(
        sum(
            abs(prob[idx == k].mean() - clip_y[idx == k].mean()) * np.sum(idx == k)
            for k in range(10)
            if np.any(idx == k)
        )
        / prob.size
    )
    cal_fig = {
        "clips": int(uniq.size),
        "gunshot_clips": int(clip_y.sum()),
        "auc": round(float(roc_auc_score(clip_y, clip_z)), 5),
        "ece_10bin": round(ece, 4),
        "platt_a": a,
        "platt_b": b,
        "threshold": threshold,
        "recall_at_threshold": round(float(np.mean(prob[clip_y == 1] >= threshold)), 4),
        "fp_at_threshold": round(float(np.mean(neg >= threshold)), 4),
    }
    print("calibration:", cal_fig, flush=True)
    leak = (
        {}
        if args.skip_leakage_check
        else quiet_window_check(rows, split, bgs["train"], bgs["calibration"], args.data)
    )
    print("leakage check:", leak, flush=True)
    card = {
        "model": "gunshot_classifier.onnx",
        "type": "sklearn HistGradientBoostingClassifier -> ONNX (ai.onnx.ml TreeEnsemble), Platt-calibrated",
        "hyperparameters": {k: v for k, v in model.get_params().items() if v is not None},
        "feature_version": F.FEATURE_VERSION,
        "n_features": F.N_FEATURES,
        "sample_rate_hz": F.SAMPLE_RATE_HZ,
        "split_file": "training/acoustic/split.json",
        "split_groups": {k: len(v) for k, v in split.items()},
        "train_windows": {"gunshot": int(tr["y"].sum()), "other": int((1 - tr["y"]).sum())},
        "augmentation": {
            "negatives_degraded_copies": N_DEG_NEG_TRAIN,
            "gunshots_degraded_copies": N_DEG_GUN_TRAIN,
            "calibration_negative_degraded_copies": N_DEG_NEG_CAL,
        },
        "calibration": cal_fig,
        "leakage_check": leak,
        "training_seconds": round(time.time() - t_start),
        "model_bytes": path.stat().st_size,
    }
    (args.out / "gunshot_classifier.card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
