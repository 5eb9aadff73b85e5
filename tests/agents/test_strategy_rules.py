"""The built-in strategies' analysis and planning: pure functions of facts, no processes."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from scanflow.agents.facts import Facts
from scanflow.agents.strategies.autoscale import (
    AutoscaleConfig,
    held_until,
    review_scale_up,
    target_workers,
)
from scanflow.agents.strategies.cpu import shares
from scanflow.agents.strategies.detect import ks_detector
from scanflow.agents.strategies.drift_retrain import (
    DriftRetrainConfig,
    confirm,
    quality_dropped,
)
from scanflow.agents.strategies.failover import FailoverConfig, backup_version, route
from scanflow.agents.strategies.traffic import advance
from scanflow.agents.strategies.windows import quantile, window
from scanflow.agents.toolkit import Toolkit

# -- LatencyAutoscale ------------------------------------------------------------------------
SCALE = AutoscaleConfig(
    service="s",
    min_workers=1,
    max_workers=3,
    p95_high_ms=200,
    p95_low_ms=50,
    queue_high=8,
    rps_per_worker_low=20,
    down_after=2,
)


def test_p95_from_histogram_deltas() -> None:
    assert quantile({"0.1": 50, "0.2": 100, "+Inf": 100}, 0.95) == pytest.approx(0.19)
    assert quantile({"0.1": 0, "+Inf": 0}, 0.95) is None
    before = {
        "requests": 100,
        "errors": 0,
        "latency_buckets": {"0.1": 100, "+Inf": 100},
        "at": 10.0,
    }
    after = {
        "requests": 300,
        "errors": 20,
        "queue_depth": 3,
        "latency_buckets": {"0.1": 110, "+Inf": 300},
    }
    w = window(before, after, 12.0)
    assert w["rps"] == 100 and w["error_rate"] == 0.1 and w["queue_depth"] == 3
    assert w["p95_ms"] == pytest.approx(100.0)  # the +Inf bucket reports its lower bound
    assert "rps" not in window(None, after, 12.0)  # the first scrape has no window


def _w(p95: float | None, rps: float = 10, queue: float = 0) -> dict:
    return {"p95_ms": p95, "rps": rps, "queue_depth": queue}


def test_scale_up_on_latency_or_queue_and_stop_at_max() -> None:
    assert target_workers([_w(300, rps=50)], 1, SCALE)[0] == 2  # loaded and slow
    assert target_workers([_w(10, queue=20)], 2, SCALE)[0] == 3
    target, reason = target_workers([_w(300, rps=100)], 3, SCALE)
    assert target == 3 and "max_workers=3" in reason


def test_slow_answers_at_a_low_load_are_no_reason_to_add_workers() -> None:
    # a busy machine or a slow model: p95 is high, yet each worker is nearly idle
    assert target_workers([_w(300, rps=5)], 1, SCALE) == (1, "within the band")
    assert target_workers([_w(300, rps=5, queue=1)], 1, SCALE)[0] == 2  # requests wait


def test_scale_up_on_request_rate_per_worker() -> None:
    config = SCALE.model_copy(update={"rps_per_worker_high": 100.0})
    assert target_workers([_w(10, rps=250)], 2, config)[0] == 3  # 125 per worker
    assert target_workers([_w(10, rps=150)], 2, config)[0] == 2  # 75 per worker: in band
    with pytest.raises(ValidationError, match="rps_per_worker_low=200.0 must be below"):
        AutoscaleConfig(service="s", rps_per_worker_low=200, rps_per_worker_high=100)


def test_hysteresis_no_change_inside_the_band_and_down_only_after_calm_windows() -> None:
    band = _w(120, rps=30)  # p95 between 50 and 200; one worker fewer would serve 30 req/s
    assert target_workers([band, band], 2, SCALE)[0] == 2
    assert target_workers([band, _w(10, rps=30)], 2, SCALE)[0] == 2  # one calm window only
    assert target_workers([_w(10, rps=30), _w(10, rps=30)], 2, SCALE)[0] == 1  # fast, 15 each
    assert target_workers([_w(10, rps=100), _w(10, rps=100)], 2, SCALE)[0] == 2  # busy
    assert target_workers([_w(10), _w(10)], 1, SCALE)[0] == 1  # min_workers
    assert target_workers([{"queue_depth": 0}], 2, SCALE) == (2, "no complete window yet")


def test_the_pool_shrinks_when_the_load_drops_even_if_latency_stays_high() -> None:
    slow_idle = _w(400, rps=10)  # a machine busy with other work: slow, but little traffic
    target, reason = target_workers([slow_idle, slow_idle], 3, SCALE)
    assert target == 2 and reason.startswith("calm for 2 windows")
    assert target_workers([slow_idle, slow_idle], 2, SCALE)[0] == 1
    assert target_workers([_w(400, rps=10, queue=6)] * 2, 2, SCALE)[0] == 3  # requests wait


REVIEW = SCALE.model_copy(update={"settle": 10.0, "improve_margin": 0.2, "hold": 60.0})


def _up(at: float = 100.0, p95: float = 300.0, rps: float = 100.0) -> dict:
    """A succeeded scale-up from 1 to 2 workers that finished at ``at``."""
    return {
        "id": "up",
        "action": "scale",
        "status": "succeeded",
        "created_at": at - 1,
        "finished_at": at,
        "evidence": {"workers": 1, "target": 2, "before": {"p95_ms": p95, "rps": rps}},
    }


def _after(at: float, p95: float, rps: float, **cpu: float) -> dict:
    return {"at": at, "seconds": 2.0, "p95_ms": p95, "rps": rps, "queue_depth": 0, **cpu}


def test_a_scale_up_that_helped_is_kept() -> None:
    faster = [_after(104, 150, 100), _after(106, 160, 100)]
    assert review_scale_up(faster, [_up()], 111.0, REVIEW) is None
    more = [_after(104, 300, 130), _after(106, 290, 125)]  # same latency, +27% throughput
    assert review_scale_up(more, [_up()], 111.0, REVIEW) is None


def test_a_scale_up_that_did_not_help_is_undone_after_it_settles() -> None:
    same = [_after(104, 290, 105), _after(106, 310, 100)]
    assert review_scale_up(same, [_up()], 105.0, REVIEW) is None  # still settling
    target, reason, evidence = review_scale_up(same, [_up()], 111.0, REVIEW)
    assert target == 1 and reason.startswith("scale-up to 2 did not help after 10s: p95 300 ms")
    assert evidence["futile"] is True and evidence["after"]["p95_ms"] == 300.0
    # a window that began before the scale-up finished is not evidence of its effect
    straddling = [_after(101, 100, 300), *same]
    assert review_scale_up(straddling, [_up()], 111.0, REVIEW)[0] == 1


def test_a_scale_up_on_a_cpu_saturated_by_others_is_undone() -> None:
    crowded = [_after(104, 150, 100, cpu_busy=0.98, cpu_service=0.3, cpu_others=0.68)]
    target, reason, _ = review_scale_up(crowded, [_up()], 111.0, REVIEW)
    assert target == 1 and "saturated by other processes" in reason
    own = [_after(104, 150, 100, cpu_busy=0.98, cpu_service=0.8, cpu_others=0.18)]
    assert review_scale_up(own, [_up()], 111.0, REVIEW) is None  # the service's own load


def test_only_the_last_real_scale_up_is_reviewed_and_a_futile_one_holds_scale_ups() -> None:
    same = [_after(104, 300, 100)]
    down = {**_up(), "id": "down", "evidence": {"workers": 2, "target": 1}}
    blocked = {**_up(), "id": "b", "status": "blocked", "finished_at": 120.0}
    assert review_scale_up(same, [_up(), down], 111.0, REVIEW) is None
    assert review_scale_up(same, [_up(), blocked], 111.0, REVIEW)[0] == 1
    futile = {**down, "created_at": 112.0, "evidence": {"futile": True, "workers": 2}}
    hold = held_until([_up(), futile], REVIEW)
    assert hold == (172.0, "the last scale-up did not help")
    hot = [_w(300, rps=100)]
    target, reason = target_workers(hot, 1, REVIEW, now=150.0, hold=hold)
    assert target == 1 and reason == "hot, but the last scale-up did not help: held for 22s"
    assert target_workers(hot, 1, REVIEW, now=173.0, hold=hold)[0] == 2
    # a scale-up settles before the next one; a scale-down holds nothing
    assert held_until([_up()], REVIEW) == (110.0, "the last scale-up is settling")
    assert held_until([_up(), down], REVIEW) is None


def test_cpu_shares_from_two_samples() -> None:
    first = {"at": 0.0, "busy": 10.0, "total": 100.0, "workers": {"7": 1.0, "8": 2.0}}
    second = {"at": 10.0, "busy": 28.0, "total": 120.0, "workers": {"7": 4.0, "9": 50.0}}
    # 2 cores for 10 s: 20 CPU-seconds, 18 busy; worker 7 used 3 (worker 9 is new)
    assert shares(first, second) == pytest.approx(
        {"cpu_busy": 0.9, "cpu_service": 0.15, "cpu_others": 0.75}
    )
    assert shares(None, second) == {}


def test_bad_autoscale_config() -> None:
    with pytest.raises(ValidationError, match="must be below p95_high_ms"):
        AutoscaleConfig(service="s", p95_low_ms=300, p95_high_ms=200)
    with pytest.raises(ValidationError, match="min_workers=5 > max_workers=2"):
        AutoscaleConfig(service="s", min_workers=5, max_workers=2)


# -- DriftRetrain ------------------------------------------------------------------------------
def _win(drift: bool, ref: str = "r1", start: float = 0.0) -> dict:
    return {"drift": drift, "score": 0.5 if drift else 0.0, "reference": ref, "start": start}


def test_k_of_n_confirmation() -> None:
    assert confirm([_win(True)], 2, 3) is None
    assert confirm([_win(True), _win(False), _win(False)], 2, 3) is None
    evidence = confirm([_win(False), _win(True, start=5), _win(True, start=7)], 2, 3)
    assert evidence is not None and evidence["drifted_windows"] == 2 and evidence["onset"] == 5
    assert confirm([_win(True), _win(True), _win(False)], 2, 3) is None  # latest must drift
    # windows against an older reference do not count
    assert confirm([_win(True, "r0"), _win(True, "r0"), _win(True, "r1")], 2, 3) is None
    # a window whose test fires on a feature or two does not count with min_score
    weak = [{**_win(True), "score": 0.02}, {**_win(True), "score": 0.03}]
    assert confirm(weak, 2, 3) is not None and confirm(weak, 2, 3, min_score=0.1) is None
    with pytest.raises(ValidationError, match="k=4 drifted windows cannot be more"):
        DriftRetrainConfig(service="s", model="m", k=4, n=3)


def test_ks_detector_verdicts() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(500, 8))
    assert ks_detector(reference, rng.normal(size=(200, 8)))["drift"] is False
    shifted = ks_detector(reference, rng.normal(loc=1.0, size=(200, 8)))
    assert shifted["drift"] is True and shifted["score"] == 1.0
    constant = np.zeros((50, 3))
    assert ks_detector(constant, constant) == {
        "drift": False,
        "score": 0.0,
        "p_min": 1.0,
        "features": 0,
    }


def _records(n: int, version: str, offset: float, start: int = 0, ts: float = 0.0) -> list:
    return [
        {
            "id": f"r{start + i}",
            "ts": ts + i,
            "model_version": version,
            "inputs": [[offset, offset + 1.0]],
            "outputs": [1],
        }
        for i in range(n)
    ]


def test_traffic_reference_windows_version_reset_and_late_labels() -> None:
    saved: dict[str, np.ndarray] = {}

    def detector(ref: np.ndarray, cur: np.ndarray) -> dict:
        return {"drift": bool(abs(cur.mean() - ref.mean()) > 0.5), "score": float(cur.mean())}

    kwargs = {
        "window_rows": 4,
        "reference_rows": 6,
        "detector": detector,
        "save_reference": saved.__setitem__,
        "load_reference": saved.__getitem__,
    }
    facts, mark = advance({}, _records(8, "1", 0.0), [], **kwargs)
    assert "windows" not in facts and len(mark["carry"]) == 2  # 6 rows to the reference
    assert next(iter(saved.values())).shape == (6, 2)
    facts, mark = advance(mark, _records(6, "1", 5.0, start=8), [], **kwargs)
    assert [w["drift"] for w in facts["windows"]] == [True, True]  # 2 + 6 rows = 2 windows
    assert mark["carry"] == []
    # labels arrive late: joined with the predictions they belong to
    labels = [{"id": "r0", "label": 1}, {"id": "r1", "label": 0}, {"id": "zz", "label": 1}]
    facts, mark = advance(mark, [], labels, **kwargs)
    assert facts["quality"]["1"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    # a new version takes the traffic: a new reference is collected, old rows ignored
    facts, mark = advance(mark, _records(3, "2", 5.0, start=20), [], **kwargs)
    assert mark["reference"] is None and mark["retired"] == ["1"]
    facts, mark = advance(mark, _records(2, "1", 0.0, start=30), [], **kwargs)
    assert len(mark["collecting"]) == 3


def _decision(action: str, status: str, created: float, results: dict, **extra) -> dict:
    return {
        "id": f"d{created}",
        "action": action,
        "status": status,
        "created_at": created,
        "finished_at": created + 1,
        "results": results,
        "evidence": {},
        **extra,
    }


def test_live_quality_drop_rolls_back_once() -> None:
    config = DriftRetrainConfig(service="s", model="m", min_live_rows=100, live_tolerance=0.05)
    promoted = _decision(
        "retrain",
        "succeeded",
        10,
        {
            "gate": {"candidate_recent": 0.95, "champion_recent": 0.70},
            "promote": {"version": "2", "previous": "1"},
        },
    )

    def facts(accuracy: float, total: int, *more: dict) -> Facts:
        quality = {"2": {"accuracy": accuracy, "total": total}}
        return Facts(
            now=50, history={"traffic": [{"quality": quality}]}, decisions=(promoted, *more)
        )

    assert quality_dropped(facts(0.68, 500), config) is None  # within tolerance of v1
    assert quality_dropped(facts(0.5, 50), config) is None  # too few labelled rows
    decision = quality_dropped(facts(0.60, 500), config)
    assert decision is not None and decision.steps[0].params == {"to": "1", "version": "2"}
    assert decision.evidence["live_accuracy"] == 0.60
    assert decision.evidence["baseline_accuracy"] == 0.70
    done = _decision("rollback", "succeeded", 20, {})
    assert quality_dropped(facts(0.60, 500, done), config) is None


# -- Failover ------------------------------------------------------------------------------------
FAIL = FailoverConfig(service="s", model="m", unhealthy_after=2, healthy_after=2)


def _h(ready: bool, at: float, error_rate: float = 0.0, requests: int = 10) -> dict:
    return {"ready": ready, "at": at, "error_rate": error_rate, "requests": requests}


def test_failover_after_bad_checks_and_restore_after_good_ones() -> None:
    def facts(checks: list, *decisions: dict) -> Facts:
        return Facts(
            now=100, new=frozenset({"health"}), history={"health": checks}, decisions=decisions
        )

    assert route(facts([_h(True, 1), _h(False, 2)]), FAIL) is None
    moved = route(facts([_h(False, 1), _h(True, 2, error_rate=0.9)]), FAIL)
    assert moved is not None and moved.action == "failover"
    assert route(facts([_h(True, 1, error_rate=0.9, requests=2), _h(False, 2)]), FAIL) is None
    active = _decision("failover", "succeeded", 10, {"failover": {"primary": "3"}})
    assert route(facts([_h(True, 5), _h(True, 12)], active), FAIL) is None  # one after it
    back = route(facts([_h(True, 12), _h(True, 14)], active), FAIL)
    assert back is not None and back.steps[0].params == {"version": "3"}
    restored = _decision("restore", "succeeded", 20, {})
    assert route(facts([_h(True, 21), _h(True, 22)], active, restored), FAIL) is None


class _Aliases:
    """An in-memory registry of aliases (the backup lookup only reads aliases)."""

    def __init__(self, **aliases: str) -> None:
        self.aliases = aliases

    def alias_version(self, model: str, alias: str) -> str | None:
        return self.aliases.get(f"{model}@{alias}")


def test_the_backup_is_the_strategys_then_the_services_backup_model_then_the_alias() -> None:
    from scanflow.spec import Service

    reg = _Aliases(**{"m@backup": "4", "m@stable": "2"})
    spec = Service("s", model="models:/m@champion", backup_model="models:/m@stable")
    with_spec = Toolkit(extras={"service_specs": {"s": spec}})
    assert backup_version(Toolkit(), reg, FAIL) == ("4", "m@backup")
    assert backup_version(with_spec, reg, FAIL) == ("2", "models:/m@stable")
    own = FAIL.model_copy(update={"backup_model": "models:/m/7"})
    assert backup_version(with_spec, reg, own) == ("7", "models:/m/7")
    other = Service("s", model="models:/m@champion", backup_model="models:/other/1")
    with pytest.raises(ValueError, match="not a version of 'm'"):
        backup_version(Toolkit(extras={"service_specs": {"s": other}}), reg, FAIL)
    with pytest.raises(ValidationError, match="not models:/NAME@ALIAS or models:/NAME/VERSION"):
        FailoverConfig(service="s", model="m", backup_model="/models/backup")


def test_the_gate_needs_both_the_recent_window_and_the_holdout(tmp_path) -> None:
    from scanflow.agents.context import ActionContext
    from scanflow.agents.strategies.actions import gate

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "gate.npz", X=rng.random((20, 4)), y=np.zeros(20))
    np.savez(tmp_path / "hold.npz", X_holdout=rng.random((30, 4)), y_holdout=np.ones(30))
    accuracy = {("2", 20): 0.90, ("1", 20): 0.70, ("2", 30): 0.60, ("1", 30): 0.80}
    toolkit = Toolkit(
        registry=_Aliases(**{"m@champion": "1"}),
        extras={"scorer": lambda model, version, X, y: accuracy[(version, len(y))]},
    )

    def run_gate(**options: object):
        config = DriftRetrainConfig(service="s", model="m", **options)
        ctx = ActionContext(
            "a",
            "d",
            1,
            "gate",
            {},
            toolkit,
            results={"retrain": {"candidate": "2", "gate": str(tmp_path / "gate.npz")}},
        )
        return gate(ctx, config)

    # better on recent data by 0.20, worse on the holdout by 0.20: rejected, naming the holdout
    held = run_gate(holdout_path=str(tmp_path / "hold.npz"))
    assert held.stop and held.result["passed"] is False
    assert held.message == (
        "candidate v2 rejected, champion v1 kept; holdout: 0.600 vs 0.800 (margin -0.02)"
    )
    # a recent margin it does not reach: rejected on the recent window
    short = run_gate(
        holdout_path=str(tmp_path / "hold.npz"), recent_margin=0.3, holdout_margin=-0.5
    )
    assert short.stop and "recent: 0.900 vs 0.700 (margin +0.3)" in short.message
    # both met: passes
    ok = run_gate(holdout_path=str(tmp_path / "hold.npz"), holdout_margin=-0.5)
    assert not ok.stop and ok.result["passed"] is True
    # no holdout configured: the recent window alone decides, and the result says so
    alone = run_gate()
    assert alone.result["passed"] is True and alone.result["holdout"].startswith("skipped")
    assert alone.message.endswith("holdout not checked: no holdout_path)")
