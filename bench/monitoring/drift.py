"""Drift detection: Scanflow's monitoring vs Evidently, alibi-detect and scipy, same data, same run.

Usage: ``bench/.venv-drift/bin/python bench/monitoring/drift.py [--repeat 3] [--quick]``
(create that interpreter with ``bash bench/monitoring/setup_peers.sh``).

Case 1, 1,000 reference vs 1,000 current rows x 64 continuous features:
  * verdicts on clean and drifted data: synthetic Gaussian features (clean, a 0.25 SD shift
    on every feature, a shift on 16 of 64 features) and scikit-learn digits (clean held-out
    rows and noise / rotation / brightness corruptions). Scanflow runs twice: with its
    defaults (Benjamini-Hochberg, drift when any feature drifts) and with Evidently's rule
    (no correction, drift when at least half of the features drift). Per-feature
    agreement with Evidently is counted too.
  * time per check, interleaved: Evidently ``DataDriftPreset`` (a fresh report per check, as
    it is used), alibi-detect ``KSDrift.predict`` (detector built once), scipy
    ``ks_2samp(ref, cur, axis=0)`` (default exact p-values, and ``method="asymp"``), and
    Scanflow: a check on a fitted profile (summarise the current rows + test) and the same
    with fitting the profile included.
Case 2, 100,000 current rows x 64 features against 1,000 reference rows:
  * Scanflow streams the rows into a window in batches of 1,000 and checks after each
    batch; the total grows with rows, each check does not, and no row is read twice
    (counted). The peers, which keep no summary, re-read the whole window at each check:
    their time per check at 10,000 and 100,000 rows is measured.
Results: JSON on stdout and in ``bench/results/drift.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from scanflow.monitoring import (  # noqa: E402
    FeatureDriftDetector,
    ReferenceProfile,
    Window,
    corrupt,
)

warnings.filterwarnings("ignore")
FEATURES = 64
COLUMNS = [f"f{j}" for j in range(FEATURES)]


# -- peers -------------------------------------------------------------------------
def evidently_check(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(ref.columns))
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    count = next(m for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))
    columns = {}
    for m in metrics:
        config = m["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold, p = config["method"], config["threshold"], m["value"]
            drift = p <= threshold if method.startswith("K-S") else p < threshold
            columns[config["column"]] = {"method": method, "p": p, "drift": bool(drift)}
    share = count["value"]["share"]
    return {"drift": share >= 0.5, "share": share, "columns": columns}


def alibi_detector(ref: np.ndarray):
    from alibi_detect.cd import KSDrift

    return KSDrift(ref.astype(np.float32), p_val=0.05)


def alibi_check(detector, cur: np.ndarray) -> dict:
    out = detector.predict(cur.astype(np.float32), return_p_val=True)["data"]
    return {"drift": bool(out["is_drift"])}


def scipy_check(ref: np.ndarray, cur: np.ndarray, method: str = "auto") -> dict:
    from scipy.stats import ks_2samp

    p = ks_2samp(ref, cur, axis=0, method=method).pvalue
    return {"drift": bool((p < 0.05 / ref.shape[1]).any())}


# -- scanflow ------------------------------------------------------------------------
DEFAULT = FeatureDriftDetector()
EVIDENTLY_RULE = FeatureDriftDetector(correction="none", drift_share=0.5)


def scanflow_check(profile: ReferenceProfile, cur: np.ndarray, detector=DEFAULT) -> dict:
    result = detector.check(profile, cur)
    return {
        "drift": result.drift,
        "share": result.statistic,
        "columns": {f.feature: f.drift for f in result.features},
        "tests": {
            f.feature: {"test": f.test, "p": f.p_value, "drift": f.drift} for f in result.features
        },
    }


# -- data ------------------------------------------------------------------------------
def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    cov = 0.5 * np.eye(FEATURES) + 0.5  # correlated features
    chol = np.linalg.cholesky(cov)
    ref = rng.normal(size=(1000, FEATURES)) @ chol.T
    draw = lambda: rng.normal(size=(1000, FEATURES)) @ chol.T  # noqa: E731
    partial = draw()
    partial[:, :16] += 0.3
    out = {
        "gaussian clean": (ref, draw()),
        "gaussian shift 0.25 SD, all features": (ref, draw() + 0.25),
        "gaussian shift 0.3 SD, 16 of 64 features": (ref, partial),
    }
    x, _ = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    d_ref, d_cur = x[order[:1000]], x[order[1000:]]
    out["digits clean (797 held-out rows)"] = (d_ref, d_cur)
    for kind in ("noise", "rotation", "brightness"):
        out[f"digits {kind} severity 2"] = (d_ref, corrupt(d_cur, kind, 2, seed=1))
    return out


# -- timing ----------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(values: list[float]) -> dict:
    return {
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
        "runs": len(values),
    }


def case_verdicts() -> dict:
    rows = {}
    for name, (ref, cur) in datasets().items():
        profile = ReferenceProfile.fit(ref)
        ev = evidently_check(pd.DataFrame(ref, columns=COLUMNS), pd.DataFrame(cur, columns=COLUMNS))
        ours = scanflow_check(profile, cur)
        ours_rule = scanflow_check(profile, cur, EVIDENTLY_RULE)
        agree = sum(ours_rule["columns"][c] == ev["columns"][c]["drift"] for c in COLUMNS)
        differ = {
            c: {"evidently": ev["columns"][c], "scanflow": ours_rule["tests"][c]}
            for c in COLUMNS
            if ours_rule["columns"][c] != ev["columns"][c]["drift"]
        }
        rows[name] = {
            "evidently": {"drift": ev["drift"], "share": ev["share"]},
            "scanflow_default": {"drift": ours["drift"], "share": ours["share"]},
            "scanflow_evidently_rule": {"drift": ours_rule["drift"], "share": ours_rule["share"]},
            "alibi_ksdrift": alibi_check(alibi_detector(ref), cur),
            "scipy_ks_bonferroni": scipy_check(ref, cur),
            "per_feature_agreement_with_evidently": f"{agree}/{FEATURES}",
            "features_judged_differently": differ,
            "evidently_tests": sorted({v["method"] for v in ev["columns"].values()}),
        }
        print(f"verdicts  {name}: {json.dumps(rows[name])}", file=sys.stderr)
    return rows


def case_small(repeat: int) -> dict:
    ref, cur = datasets()["gaussian shift 0.25 SD, all features"]
    ref_df, cur_df = pd.DataFrame(ref, columns=COLUMNS), pd.DataFrame(cur, columns=COLUMNS)
    profile = ReferenceProfile.fit(ref)
    alibi = alibi_detector(ref)
    systems: dict[str, Callable[[], object]] = {
        "scanflow check (fitted profile)": lambda: DEFAULT.check(profile, cur),
        "scanflow fit + check": lambda: DEFAULT.check(ReferenceProfile.fit(ref), cur),
        "scipy ks_2samp axis=0 (exact)": lambda: scipy_check(ref, cur),
        "scipy ks_2samp axis=0 (asymp)": lambda: scipy_check(ref, cur, "asymp"),
        "alibi-detect KSDrift.predict": lambda: alibi_check(alibi, cur),
        "evidently DataDriftPreset": lambda: evidently_check(ref_df, cur_df),
    }
    for fn in systems.values():  # warm up imports and caches
        fn()
    times: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(repeat):
        for name, fn in systems.items():  # interleaved
            inner = 1 if name.startswith("evidently") else 20
            times[name].append(min(timed(fn) for _ in range(inner)) if inner > 1 else timed(fn))
            print(f"small  {name}: {times[name][-1] * 1000:.2f} ms", file=sys.stderr)
    out = {k: summary(v) for k, v in times.items()}
    ours = out["scanflow check (fitted profile)"]["median_s"]
    ours_fit = out["scanflow fit + check"]["median_s"]
    for v in out.values():
        v["ratio_to_scanflow_check"] = v["median_s"] / ours
        v["ratio_to_scanflow_fit_check"] = v["median_s"] / ours_fit
    return out


def _stream_run(
    profile: ReferenceProfile, stream: np.ndarray, batch: int, sizes: list[int]
) -> dict:
    """Feed ``stream`` to a window batch by batch, checking after each; count rows read."""
    window, summarised = Window(profile), [0]
    original = profile.summarise

    def counting(data, **kw):
        summarised[0] += len(data)
        return original(data, **kw)

    object.__setattr__(profile, "summarise", counting)  # instance attribute: counts reads
    marks, checks, ingest = {}, [], 0.0
    try:
        for start in range(0, len(stream), batch):
            ingest += timed(lambda s=start: window.update(stream[s : s + batch]))
            checks.append(timed(lambda: DEFAULT.check(profile, window)))
            if start + batch in sizes:
                marks[start + batch] = {"ingest_s": ingest, "check_s": checks[-1]}
    finally:
        object.__delattr__(profile, "summarise")
    assert summarised[0] == len(stream) == window.rows_seen, "a row was summarised twice"
    return {"marks": marks, "checks": checks, "rows_summarised": summarised[0]}


def case_scaling(repeat: int, sizes: list[int], peers_at: list[int]) -> dict:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(1000, FEATURES))
    total = max(sizes)
    stream = rng.normal(size=(total, FEATURES))
    stream[total // 2 :, :8] += 0.1
    profile = ReferenceProfile.fit(ref)
    batch = 1000
    runs = [_stream_run(profile, stream, batch, sizes) for _ in range(repeat)]
    result: dict = {"batch_rows": batch, "rows_summarised_per_run": total, "scanflow": {}}
    for n in sizes:
        ingest = [r["marks"][n]["ingest_s"] for r in runs]
        check = [r["marks"][n]["check_s"] for r in runs]
        result["scanflow"][str(n)] = {
            "ingest_total": summary(ingest),
            "ingest_per_1000_rows_s": statistics.median(ingest) / (n / 1000),
            "check_at_this_size": summary(check),
        }
    all_checks = [c for r in runs for c in r["checks"]]
    result["scanflow"]["every_check"] = summary(all_checks)
    alibi = alibi_detector(ref)
    ref_df = pd.DataFrame(ref, columns=COLUMNS)
    peers: dict[str, dict] = {}
    for n in peers_at:
        cur = stream[:n]
        cur_df = pd.DataFrame(cur, columns=COLUMNS)
        systems = {
            "scanflow one-shot (summarise all rows + test)": lambda c=cur: DEFAULT.check(
                profile, c
            ),
            "scipy ks_2samp axis=0": lambda c=cur: scipy_check(ref, c),
            "alibi-detect KSDrift.predict": lambda c=cur: alibi_check(alibi, c),
            "evidently DataDriftPreset": lambda d=cur_df: evidently_check(ref_df, d),
        }
        times: dict[str, list[float]] = {k: [] for k in systems}
        for _ in range(repeat):
            for name, fn in systems.items():
                times[name].append(timed(fn))
                print(f"scaling {n} {name}: {times[name][-1]:.3f} s", file=sys.stderr)
        peers[str(n)] = {k: summary(v) for k, v in times.items()}
    result["per_check_over_whole_window"] = peers
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    import evidently
    import scipy

    try:
        import alibi_detect

        alibi_version = alibi_detect.__version__
    except ImportError:
        alibi_version = None
    sizes = [10_000, 30_000, 100_000] if not args.quick else [2_000, 5_000]
    peers_at = [10_000, 100_000] if not args.quick else [5_000]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
            "evidently": evidently.__version__,
            "alibi_detect": alibi_version,
        },
        "verdicts_1000x1000": case_verdicts(),
        "time_per_check_1000x1000": case_small(args.repeat),
        "scaling_100000_rows": case_scaling(args.repeat, sizes, peers_at),
    }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    out = HERE.parent / "results" / "drift.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
