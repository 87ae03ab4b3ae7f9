"""Rolling-origin evaluation of the hotspot methods: fit on one period, test on the next.

The split
---------
Calendar months. For each test month ``m``: fit on the ``fit_months`` months before ``m``,
flag the top-scoring cells until they cover ``share`` of the study area, and count the test
month's incidents that fall in flagged cells. Roll ``m`` one month at a time across the record.
A test month is used only if the whole fitting window lies inside the record, the month itself is
complete (the record's last, partial month is never a test month) and it holds at least
``min_test`` incidents (months in a data gap are skipped, and said so).

Tuning
------
Each method's parameters (``methods.GRIDS``) are chosen by the mean PAI at the primary share over
the first ``tune_folds`` usable test months only; those months are then left out of the reported
figures, which come only from the later months.

Measures
--------
hit rate ``h = hits / total`` and the Predictive Accuracy Index
``PAI = (hits / total) / (area_flagged / area_total)`` (Chainey, Tompson & Uhlig 2008), with the
actual flagged area (whole cells, H3 cell areas in km²); per share: mean and median over the test
months, the number of months a method beat / lost to the naive baseline, and the two-sided Wilcoxon
signed-rank p-value of the paired monthly PAI differences (``scipy.stats.wilcoxon``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rtcc.errors import ValidationFailed

from .grid import StudyArea
from .methods import GRIDS, METHODS, Prepared, Window, gi_weights, rank
from .records import FloatArray, Incidents

BASELINE = "naive"


def month(t: np.datetime64, add: int = 0) -> np.datetime64:
    """The first instant of ``t``'s month, moved by ``add`` months (datetime64[s])."""
    out: np.datetime64 = (t.astype("datetime64[M]") + np.timedelta64(add, "M")).astype("datetime64[s]")
    return out


def flag(scores: FloatArray, area_km2: FloatArray, share: float) -> tuple[np.ndarray[Any, Any], float]:
    """The top cells covering at most ``share`` of the area (at least one cell), and their share."""
    order = rank(scores)
    cum = np.cumsum(area_km2[order])
    total = float(cum[-1])
    n = max(1, int(np.searchsorted(cum, share * total, side="right")))
    chosen = order[:n]
    return chosen, float(cum[n - 1] / total)


@dataclass(frozen=True)
class Score:
    """One method on one test month at one flagged-area share."""

    hits: int
    total: int
    area_share: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.total if self.total else 0.0

    @property
    def pai(self) -> float:
        return self.hit_rate / self.area_share if self.area_share else 0.0


def score(p: Prepared, scores: FloatArray, test: slice, share: float) -> Score:
    """Hits of the test incidents in the cells flagged by ``scores`` at ``share`` of the area."""
    chosen, actual = flag(scores, p.area.area_km2, share)
    flagged = np.zeros(len(p.area), dtype=bool)
    flagged[chosen] = True
    cells = p.cell[test]
    hits = int(np.count_nonzero(flagged[cells[cells >= 0]]))
    # incidents outside the study area still count in the total (they were missed)
    return Score(hits=hits, total=int(cells.shape[0]), area_share=actual)


@dataclass
class Fold:
    """A test month and its fitting window."""

    test_start: np.datetime64
    test_end: np.datetime64
    window: Window
    n_test: int


def folds(p: Prepared, fit_months: int, min_test: int) -> tuple[list[Fold], list[str]]:
    """Usable folds, and a note for each month skipped for lack of incidents."""
    if len(p.t) == 0:
        raise ValidationFailed("no incidents to evaluate")
    first, last = p.t[0], p.t[-1]
    out: list[Fold] = []
    skipped: list[str] = []
    m = month(first, fit_months)  # the first fitting window starts with the first record's month
    while month(m, 1) <= month(last):
        start = month(m, -fit_months)
        n = p.span(m, month(m, 1))
        n_test = n.stop - n.start
        if n_test < min_test:
            skipped.append(f"{str(m)[:7]} ({n_test} incidents < {min_test})")
        else:
            out.append(Fold(m, month(m, 1), Window(start, month(m, -1), m), n_test))
        m = month(m, 1)
    return out, skipped


@dataclass
class MethodResult:
    """One method's tuned parameters and figures per share over the reported folds."""

    params: dict[str, Any]
    tuning_pai: float
    per_share: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Everything the ``evaluate`` command prints, JSON-ready through :meth:`to_dict`."""

    city: str
    res: int
    cells: int
    area_km2: float
    fit_months: int
    shares: list[float]
    tuning_months: list[str]
    test_months: list[str]
    skipped_months: list[str]
    incidents: int
    dropped: int
    outside_area: int
    methods: dict[str, MethodResult]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paired_p(diffs: list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-month PAI differences (1.0 if all are zero)."""
    from scipy.stats import wilcoxon

    nonzero = [d for d in diffs if abs(d) > 1e-12]
    if len(nonzero) < 2:
        return 1.0
    return round(float(wilcoxon(nonzero).pvalue), 4)


def _share_key(share: float) -> str:
    return f"{share * 100:g}%"


def evaluate(
    inc: Incidents,
    *,
    city: str = "",
    res: int = 9,
    fit_months: int = 12,
    shares: tuple[float, ...] = (0.01, 0.05),
    tune_folds: int = 3,
    min_test: int = 20,
    methods: tuple[str, ...] = tuple(METHODS),
    area: StudyArea | None = None,
) -> Evaluation:
    """Rolling evaluation of ``methods`` against the naive baseline (see the module docstring).

    Parameters
    ----------
    shares
        Flagged-area shares; the last one is the primary share used for tuning.
    tune_folds
        Number of earliest usable folds used only for choosing parameters.
    min_test
        Test months with fewer incidents are skipped (20 suits a whole record; one shift's
        incidents need a lower limit, the command line uses 5).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValidationFailed(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if not shares or not all(0 < s < 1 for s in shares):
        raise ValidationFailed("flagged-area shares must lie strictly between 0 and 1")
    if fit_months < 1 or tune_folds < 0:
        raise ValidationFailed("fit_months must be ≥ 1 and tune_folds ≥ 0")
    area = area or StudyArea.covering(inc.lat, inc.lon, res)
    p = Prepared.of(inc, area)
    all_folds, skipped = folds(p, fit_months, min_test)
    if len(all_folds) <= tune_folds:
        # months skipped for too few incidents point at --min-test, not at the fitting window
        hint = (
            f"{len(skipped)} months had fewer than {min_test} incidents: lower --min-test "
            "or shorten --fit-months"
            if skipped
            else "shorten --fit-months"
        )
        raise ValidationFailed(
            f"only {len(all_folds)} usable test months with {fit_months} months of fitting: "
            f"need more than the {tune_folds} tuning months ({hint})"
        )
    tuning, reported = all_folds[:tune_folds], all_folds[tune_folds:]
    primary = shares[-1]
    weights = {k: gi_weights(area, k) for k in (1, 2)} if "gi_star" in methods else {}

    def run(name: str, params: dict[str, Any], fold: Fold) -> FloatArray:
        extra = {"weights": weights[params.get("k", 1)]} if name == "gi_star" else {}
        return METHODS[name](p, fold.window, **params, **extra)

    results: dict[str, MethodResult] = {}
    fold_pai: dict[str, dict[str, list[float]]] = {}
    for name in ([BASELINE] if BASELINE in methods else []) + [m for m in methods if m != BASELINE]:
        best: tuple[float, dict[str, Any]] | None = None
        for params in GRIDS[name]:
            pais = [
                score(p, run(name, params, f), p.span(f.test_start, f.test_end), primary).pai for f in tuning
            ]
            mean = float(np.mean(pais)) if pais else 0.0
            if best is None or mean > best[0]:
                best = (mean, params)
        assert best is not None
        res_ = MethodResult(params=best[1], tuning_pai=round(best[0], 3))
        per_fold = [
            (lambda s: [score(p, s, p.span(f.test_start, f.test_end), sh) for sh in shares])(
                run(name, best[1], f)
            )
            for f in reported
        ]
        for j, sh in enumerate(shares):
            col = [fold_scores[j] for fold_scores in per_fold]
            hits = sum(c.hits for c in col)
            total = sum(c.total for c in col)
            area_share = float(np.mean([c.area_share for c in col]))
            res_.per_share[_share_key(sh)] = {
                "hit_rate_mean": round(float(np.mean([c.hit_rate for c in col])), 4),
                "pai_mean": round(float(np.mean([c.pai for c in col])), 3),
                "pai_median": round(float(np.median([c.pai for c in col])), 3),
                "hit_rate_pooled": round(hits / total, 4) if total else 0.0,
                "area_share": round(area_share, 4),
            }
            fold_pai.setdefault(name, {})[_share_key(sh)] = [c.pai for c in col]
        results[name] = res_
    if BASELINE in results:
        for name, r in results.items():
            for key, fig in r.per_share.items():
                diffs = [a - b for a, b in zip(fold_pai[name][key], fold_pai[BASELINE][key], strict=True)]
                fig["months_better_than_naive"] = sum(d > 1e-12 for d in diffs)
                fig["months_worse_than_naive"] = sum(d < -1e-12 for d in diffs)
                if name != BASELINE:
                    fig["p_vs_naive"] = _paired_p(diffs)
    cells_all = p.cell
    return Evaluation(
        city=city,
        res=area.res,
        cells=len(area),
        area_km2=round(float(area.area_km2.sum()), 2),
        fit_months=fit_months,
        shares=list(shares),
        tuning_months=[str(f.test_start)[:7] for f in tuning],
        test_months=[str(f.test_start)[:7] for f in reported],
        skipped_months=skipped,
        incidents=len(inc),
        dropped=inc.dropped,
        outside_area=int(np.count_nonzero(cells_all < 0)),
        methods=results,
    )
