"""Batch BO (Kriging believer, q designs per iteration) evaluated on pools.

Same synthetic problem as tests/test_optimizer_loop.py: 480 designs, constrained optimum 11.3 at
a=5, b=5, c=1.0. Checks: q=4 reaches the optimum within the budget; the sequence does not depend
on the pool (serial, 2 processes with shuffled completion times, Dask); a crash mid-batch
resumes to the same answer; q=1 is the sequential loop's sequence.
"""

from __future__ import annotations

import json
import time

import pytest
from test_optimizer_loop import OPTIMUM, SPACE, Counting, designs, nothing_runs_above_a7, problem

from accelsim.errors import AccelsimError
from optimizer import bayesian_optimize
from optimizer.loop import BatchSchedule
from optimizer.pools import ProcessEvaluatorPool, SerialPool

# the sequence the sequential loop (before batches existed) chose for seed 4, budget 12
SEQUENTIAL_SEED4 = [
    (1, 5, 3.0),
    (5, 6, 1.0),
    (7, 3, 0.5),
    (3, 2, 1.5),
    (9, 0, 2.5),
    (7, 7, 1.0),
    (6, 4, 1.0),
    (5, 5, 3.0),
    (5, 5, 1.5),
    (5, 5, 1.0),
    (8, 0, 0.5),
    (4, 7, 1.5),
]


def late_first(design: dict):
    """``nothing_runs_above_a7`` with the earlier designs of a batch finishing later."""
    time.sleep(0.02 * (9 - design["a"]))
    return nothing_runs_above_a7(design)


def test_schedule_cuts_batches_by_evaluation_count():
    schedule = BatchSchedule(n_initial=6, batch_size=4, budget=16)
    assert [schedule.start(n) for n in (0, 5, 6, 9, 10, 13, 14, 15)] == [0, 5, 6, 6, 10, 10, 14, 14]
    assert [schedule.end(s) for s in (0, 4, 6, 10, 14)] == [4, 6, 10, 14, 16]


def test_q1_reproduces_the_sequential_sequence():
    result = bayesian_optimize(
        SPACE, problem, budget=12, n_initial=5, seed=4, batch_size=1, evaluator_pool=SerialPool()
    )
    assert designs(result) == SEQUENTIAL_SEED4


def test_q4_finds_the_known_optimum_with_distinct_designs():
    result = bayesian_optimize(SPACE, problem, budget=30, n_initial=8, seed=1, batch_size=4)
    assert len(set(designs(result))) == len(result.evaluations) == 30
    assert result.best.objective == pytest.approx(OPTIMUM)
    assert result.best.design == {"a": 5, "b": 5, "c": 1.0}


def test_serial_and_two_process_pools_give_the_identical_sequence():
    kwargs = {"budget": 16, "n_initial": 6, "seed": 3, "batch_size": 4}
    serial = bayesian_optimize(SPACE, late_first, evaluator_pool=SerialPool(), **kwargs)
    with ProcessEvaluatorPool(2) as pool:
        parallel = bayesian_optimize(SPACE, late_first, evaluator_pool=pool, **kwargs)
    assert parallel.evaluations == serial.evaluations
    assert any(not e.ran for e in serial.evaluations)  # Infeasible crossed the process boundary


def test_dask_pool_gives_the_same_sequence():
    distributed = pytest.importorskip("distributed")
    from optimizer.pools import DaskEvaluatorPool

    kwargs = {"budget": 12, "n_initial": 4, "seed": 5, "batch_size": 3}
    serial = bayesian_optimize(SPACE, problem, **kwargs)
    cluster = distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client, DaskEvaluatorPool(client=client) as pool:
        on_dask = bayesian_optimize(SPACE, problem, evaluator_pool=pool, **kwargs)
    assert on_dask.evaluations == serial.evaluations


@pytest.mark.parametrize("crash_at", [3, 8])  # inside a chunk of the initial design / a BO batch
def test_resume_after_a_crash_mid_batch_gives_the_same_answer(tmp_path, crash_at):
    kwargs = {"budget": 16, "n_initial": 6, "seed": 2, "batch_size": 4}
    uninterrupted = bayesian_optimize(SPACE, problem, **kwargs)
    log = tmp_path / "bo.jsonl"
    with pytest.raises(KeyboardInterrupt):
        bayesian_optimize(SPACE, Counting(fail_at=crash_at), log_path=log, **kwargs)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + crash_at  # the batch's completed evaluations are logged
    assert json.loads(lines[0])["settings"]["batch_size"] == 4

    resumed_fn = Counting()
    resumed = bayesian_optimize(SPACE, resumed_fn, log_path=log, **kwargs)
    assert len(resumed_fn.calls) == 16 - crash_at
    assert resumed.evaluations == uninterrupted.evaluations
    assert resumed.best == uninterrupted.best and resumed.message == uninterrupted.message


def test_extending_the_budget_completes_a_cut_batch_and_continues(tmp_path):
    log = tmp_path / "bo.jsonl"
    kwargs = {"n_initial": 6, "seed": 3, "batch_size": 4, "log_path": log}
    short = bayesian_optimize(SPACE, problem, budget=12, **kwargs)  # last batch cut to 2
    more_fn = Counting()
    longer = bayesian_optimize(SPACE, more_fn, budget=16, **kwargs)
    assert len(more_fn.calls) == 4
    assert longer.evaluations[:12] == short.evaluations
    fresh = bayesian_optimize(SPACE, problem, budget=16, n_initial=6, seed=3, batch_size=4)
    assert designs(fresh) == designs(longer)


def test_a_log_is_bound_to_its_batch_size(tmp_path):
    log = tmp_path / "bo.jsonl"
    bayesian_optimize(SPACE, problem, budget=8, n_initial=5, seed=0, batch_size=3, log_path=log)
    with pytest.raises(AccelsimError, match="different search"):
        bayesian_optimize(SPACE, problem, budget=8, n_initial=5, seed=0, batch_size=2, log_path=log)
    with pytest.raises(AccelsimError, match="optimize.batch_size"):
        bayesian_optimize(SPACE, problem, budget=8, n_initial=5, seed=0, batch_size=0)
