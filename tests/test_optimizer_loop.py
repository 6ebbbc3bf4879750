"""Constrained BO over a discrete space, the random / exhaustive baselines, the JSONL log.

The synthetic problem: 480 designs (a: 10 values, b: 8, c: 6); minimise a positive "area" under
an accuracy constraint and a latency constraint that rule out the unconstrained optimum. Its
constrained optimum (area 11.3 at a=5, b=5, c=1.0) is found by exhaustive search.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.errors import AccelsimError, Infeasible
from optimizer import (
    DesignSpace,
    Evaluation,
    SearchResult,
    bayesian_optimize,
    evaluations_to_reach,
    exhaustive_search,
    random_search,
)

SPACE = DesignSpace.from_mapping(
    {"a": list(range(10)), "b": list(range(8)), "c": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]}
)
OPTIMUM = 11.3


def problem(design: dict) -> Evaluation:
    a, b, c = design["a"], design["b"], design["c"]
    area = 1.0 + 0.5 * (a - 2) ** 2 + 0.3 * (b - 1) ** 2 + c
    accuracy = 0.5 + 0.05 * a + 0.03 * b  # must reach 0.9
    latency = 10.0 - a - 2.0 * c  # must stay <= 3
    return Evaluation(
        design, area, {"accuracy": 0.9 - accuracy, "latency": latency - 3.0}, {"acc": accuracy}
    )


def nothing_runs_above_a7(design: dict) -> Evaluation:
    if design["a"] >= 8:
        raise Infeasible("tile does not fit in the weight buffer")
    return problem(design)


class Counting:
    """Wraps an evaluation; counts calls; optionally fails on call number ``fail_at``."""

    def __init__(self, fn=problem, fail_at: int | None = None) -> None:
        self.fn, self.fail_at, self.calls = fn, fail_at, []

    def __call__(self, design: dict) -> Evaluation:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append(dict(design))
        return self.fn(design)


def designs(result: SearchResult) -> list[tuple]:
    return [tuple(e.design.values()) for e in result.evaluations]


@pytest.fixture(scope="module")
def bo_reference() -> SearchResult:
    return bayesian_optimize(SPACE, problem, budget=30, n_initial=8, seed=1)


def test_exhaustive_search_finds_the_known_constrained_optimum():
    result = exhaustive_search(SPACE, problem)
    assert len(result.evaluations) == SPACE.size
    assert len(set(designs(result))) == SPACE.size
    assert result.best.objective == pytest.approx(OPTIMUM)
    assert result.best.design == {"a": 5, "b": 5, "c": 1.0}
    brute = min(e.objective for e in map(problem, SPACE.enumerate()) if e.feasible)
    assert result.best.objective == brute


def test_bo_finds_feasible_point_within_2_percent_of_optimum_in_30_evaluations(bo_reference):
    assert bo_reference.best is not None and bo_reference.best.feasible
    assert bo_reference.best.objective <= OPTIMUM * 1.02
    reached = evaluations_to_reach(bo_reference, OPTIMUM)
    assert reached is not None and reached <= 30
    assert "best feasible design after 30 evaluations" in bo_reference.message


def test_bo_beats_random_search_at_the_same_budget(bo_reference):
    rand = random_search(SPACE, problem, budget=30, seed=1)
    assert len(rand.evaluations) == 30
    rand_best = rand.best.objective if rand.best else np.inf
    assert bo_reference.best.objective < rand_best


def test_bo_never_evaluates_a_design_twice(bo_reference):
    assert len(set(designs(bo_reference))) == len(bo_reference.evaluations) == 30


def test_bo_starts_with_a_space_filling_design(bo_reference):
    initial = bo_reference.evaluations[:8]
    # Latin hypercube with 8 points over a: 10 values -> 8 distinct strata, all different
    assert len({e.design["a"] for e in initial}) == 8  # a has 10 values: 8 distinct ones
    assert len({e.design["b"] for e in initial}) == 8  # b has 8 values: each once
    assert len({e.design["c"] for e in initial}) == 6  # c has 6 values: every one used


def test_same_seed_gives_identical_sequence_and_other_seed_differs():
    kwargs = {"budget": 12, "n_initial": 5}
    first = bayesian_optimize(SPACE, problem, seed=4, **kwargs)
    second = bayesian_optimize(SPACE, problem, seed=4, **kwargs)
    other = bayesian_optimize(SPACE, problem, seed=5, **kwargs)
    assert designs(first) == designs(second)
    assert first.evaluations == second.evaluations
    assert designs(first) != designs(other)


@pytest.mark.slow  # a long BO run; CI covers the same paths with shorter ones
def test_result_does_not_depend_on_the_callers_global_rng_state():
    # 160 000 points: the local-search optimiser draws its start points from numpy's global RNG
    big = DesignSpace.from_mapping({name: list(range(20)) for name in "wxyz"})

    def bowl(design: dict) -> Evaluation:
        w, x, y, z = (design[k] for k in "wxyz")
        return Evaluation(design, 1.0 + (w - 7) ** 2 + (x - 3) ** 2 + y + z, {"g": 10.0 - w - x})

    runs = []
    for outside_seed in (1, 2):
        np.random.seed(outside_seed)
        result = bayesian_optimize(big, bowl, budget=10, n_initial=5, seed=4, gp_restarts=1)
        runs.append(designs(result))
    assert runs[0] == runs[1]


def test_bo_leaves_the_callers_global_rng_untouched():
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    bayesian_optimize(SPACE, problem, budget=7, n_initial=5, seed=0)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


@pytest.mark.parametrize(
    "crash_at", [pytest.param(3, marks=pytest.mark.slow), 11]
)  # inside the initial design / inside the BO phase
def test_resumed_bo_gives_the_same_answer_as_an_uninterrupted_run(tmp_path, crash_at):
    kwargs = {"budget": 16, "n_initial": 6, "seed": 2}
    uninterrupted = bayesian_optimize(SPACE, problem, **kwargs)

    log = tmp_path / "bo.jsonl"
    with pytest.raises(KeyboardInterrupt):
        bayesian_optimize(SPACE, Counting(fail_at=crash_at), log_path=log, **kwargs)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + crash_at  # header + every evaluation that completed

    resumed_fn = Counting()
    resumed = bayesian_optimize(SPACE, resumed_fn, log_path=log, **kwargs)
    assert len(resumed_fn.calls) == 16 - crash_at  # logged evaluations are not repeated
    assert resumed.evaluations == uninterrupted.evaluations
    assert resumed.best == uninterrupted.best
    assert resumed.message == uninterrupted.message


def test_extending_the_budget_continues_the_same_sequence(tmp_path):
    log = tmp_path / "bo.jsonl"
    short = bayesian_optimize(SPACE, problem, budget=9, n_initial=5, seed=3, log_path=log)
    more_fn = Counting()
    longer = bayesian_optimize(SPACE, more_fn, budget=12, n_initial=5, seed=3, log_path=log)
    assert len(more_fn.calls) == 3
    assert longer.evaluations[:9] == short.evaluations
    fresh = bayesian_optimize(SPACE, problem, budget=12, n_initial=5, seed=3)
    assert designs(fresh) == designs(longer)


def test_log_has_one_flushed_line_per_evaluation_with_its_fields(tmp_path):
    log = tmp_path / "run.jsonl"
    result = random_search(SPACE, problem, budget=5, seed=0, log_path=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and lines[0]["space"] == SPACE.to_dict()
    assert [rec["index"] for rec in lines[1:]] == [0, 1, 2, 3, 4]
    for rec, ev in zip(lines[1:], result.evaluations):
        assert rec["method"] == "random" and rec["seed"] == 0
        assert rec["design"] == ev.design and rec["objective"] == ev.objective
        assert rec["constraints"] == ev.constraints and rec["metrics"] == ev.metrics
        assert rec["infeasible_reason"] is None


def test_log_written_for_another_seed_space_or_method_is_rejected(tmp_path):
    log = tmp_path / "run.jsonl"
    random_search(SPACE, problem, budget=3, seed=0, log_path=log)
    with pytest.raises(AccelsimError, match="seed: 0 in the log, 1 now"):
        random_search(SPACE, problem, budget=3, seed=1, log_path=log)
    other_space = DesignSpace.from_mapping({"a": [0, 1], "b": [0], "c": [0.5]})
    with pytest.raises(AccelsimError, match="different search"):
        random_search(other_space, problem, budget=2, seed=0, log_path=log)
    with pytest.raises(AccelsimError, match="method: 'random' in the log, 'bayesian' now"):
        bayesian_optimize(SPACE, problem, budget=3, n_initial=2, seed=0, log_path=log)
    with pytest.raises(AccelsimError, match="not an accelsim evaluation log"):
        (tmp_path / "junk.jsonl").write_text('{"x": 1}\n')
        random_search(SPACE, problem, budget=3, seed=0, log_path=tmp_path / "junk.jsonl")


def test_torn_last_line_is_dropped_and_that_evaluation_redone(tmp_path):
    log = tmp_path / "run.jsonl"
    full = random_search(SPACE, problem, budget=6, seed=7)
    random_search(SPACE, problem, budget=4, seed=7, log_path=log)
    log.write_text(log.read_text() + '{"kind": "evaluation", "index": 4, "des')
    fn = Counting()
    resumed = random_search(SPACE, fn, budget=6, seed=7, log_path=log)
    assert len(fn.calls) == 2
    assert resumed.evaluations == full.evaluations
    assert len(log.read_text().splitlines()) == 7


def test_random_search_is_seeded_distinct_and_resumable(tmp_path):
    a = random_search(SPACE, problem, budget=20, seed=9)
    b = random_search(SPACE, problem, budget=20, seed=9)
    assert designs(a) == designs(b) and len(set(designs(a))) == 20
    log = tmp_path / "r.jsonl"
    with pytest.raises(KeyboardInterrupt):
        random_search(SPACE, Counting(fail_at=7), budget=20, seed=9, log_path=log)
    fn = Counting()
    resumed = random_search(SPACE, fn, budget=20, seed=9, log_path=log)
    assert len(fn.calls) == 13 and resumed.evaluations == a.evaluations


def test_budget_larger_than_space_evaluates_every_design_once():
    tiny = DesignSpace.from_mapping({"a": [0, 1, 2, 3], "b": [0, 1, 2], "c": [1.0]})
    result = bayesian_optimize(tiny, problem, budget=100, n_initial=4, seed=0)
    assert sorted(designs(result)) == sorted(tuple(d.values()) for d in tiny.enumerate())


def test_infeasible_everywhere_ends_with_a_clear_message_for_every_method():
    def hopeless(design: dict) -> Evaluation:
        constraints = {"accuracy": 0.03 + design["c"], "latency": -1.0}
        return Evaluation(design, problem(design).objective, constraints)

    for result in (
        bayesian_optimize(SPACE, hopeless, budget=12, n_initial=5, seed=0),
        random_search(SPACE, hopeless, budget=12, seed=0),
        exhaustive_search(SPACE, hopeless),
    ):
        assert result.best is None and result.best_index is None
        n = len(result.evaluations)
        assert result.message.startswith(f"no feasible design found in {n} evaluations; closest: ")
        # the closest design is the one with the smallest c; the message gives its violation
        smallest = min(e.constraints["accuracy"] for e in result.evaluations)
        assert f"violates accuracy by {smallest:.4g}" in result.message


def test_nothing_runs_ends_with_the_reason_not_a_crash():
    def never(design: dict) -> Evaluation:
        return Evaluation.cannot_run(design, "redundant units can never keep up")

    result = bayesian_optimize(SPACE, never, budget=10, n_initial=4, seed=0)
    assert result.best is None
    assert len(set(designs(result))) == 10
    assert "none of them could run" in result.message
    assert "redundant units can never keep up" in result.message


@pytest.mark.slow  # a long BO run; CI covers the same paths with shorter ones
def test_designs_that_cannot_run_are_violations_and_bo_still_finds_the_optimum():
    result = bayesian_optimize(SPACE, nothing_runs_above_a7, budget=24, n_initial=8, seed=1)
    cannot = [e for e in result.evaluations if not e.ran]
    assert all(e.design["a"] >= 8 and not e.feasible for e in cannot)
    assert all(e.infeasible_reason == "tile does not fit in the weight buffer" for e in cannot)
    assert result.best.objective <= OPTIMUM * 1.02


def test_surrogates_leave_unrunnable_designs_out_and_model_them_as_a_runnable_constraint():
    from optimizer.log import Recorder
    from optimizer.loop import RUNNABLE, ConstrainedModels

    recorder = Recorder(
        SPACE, method="bayesian", seed=0, total=9, log_path=None, on_evaluation=None
    )
    points = [(1, 2, 0.5), (9, 0, 3.0), (5, 5, 1.0), (8, 7, 2.0), (3, 6, 2.5), (6, 1, 1.5)]
    for a, b, c in points:
        recorder.evaluate({"a": a, "b": b, "c": c}, nothing_runs_above_a7)
    models = ConstrainedModels(SPACE, recorder, seed=0, gp_restarts=1)
    models.update(None)

    ran = [e for e in recorder.history if e.ran]
    assert len(ran) == 4
    assert set(models.constraints) == {"accuracy", "latency", RUNNABLE}
    # positive objective (area) modelled in log space, on the designs that ran only
    np.testing.assert_allclose(models.objective.Y.ravel(), np.log([e.objective for e in ran]))
    assert models.constraints["accuracy"].X.shape[0] == 4
    np.testing.assert_array_equal(
        models.constraints[RUNNABLE].Y.ravel(), [-1.0, 1.0, -1.0, 1.0, -1.0, -1.0]
    )
    assert models.best == pytest.approx(np.log(OPTIMUM))  # (5, 5, 1.0) is the only feasible one


def test_local_search_optimiser_for_large_spaces_finds_the_optimum_without_repeats():
    result = bayesian_optimize(SPACE, problem, budget=24, n_initial=8, seed=1, exhaustive_limit=0)
    assert len(set(designs(result))) == 24
    assert result.best.objective <= OPTIMUM * 1.02


def test_progress_callback_sees_every_evaluation_and_marks_replayed_ones(tmp_path):
    log = tmp_path / "p.jsonl"
    seen = []
    random_search(SPACE, problem, budget=4, seed=0, log_path=log)
    random_search(SPACE, problem, budget=6, seed=0, log_path=log, on_evaluation=seen.append)
    assert [p.index for p in seen] == list(range(6))
    assert [p.replayed for p in seen] == [True] * 4 + [False] * 2
    assert all(p.total == 6 for p in seen)
    best = [p.best.objective for p in seen if p.best is not None]
    assert best == sorted(best, reverse=True)  # best so far never gets worse

    bo_seen = []
    bayesian_optimize(SPACE, problem, budget=8, n_initial=5, seed=0, on_evaluation=bo_seen.append)
    assert [p.index for p in bo_seen] == list(range(8))


def test_log_longer_than_the_budget_is_rejected(tmp_path):
    log = tmp_path / "r.jsonl"
    random_search(SPACE, problem, budget=5, seed=0, log_path=log)
    with pytest.raises(AccelsimError, match="already holds 5 evaluations, more than .* 3"):
        random_search(SPACE, problem, budget=3, seed=0, log_path=log)


def test_bad_budget_is_a_user_error():
    with pytest.raises(AccelsimError, match="optimize.budget"):
        random_search(SPACE, problem, budget=0, seed=0)
    with pytest.raises(AccelsimError, match="optimize.n_initial"):
        bayesian_optimize(SPACE, problem, budget=5, n_initial=0, seed=0)


def test_evaluations_to_reach_counts_evaluations_until_within_tolerance():
    def ev(objective: float, violation: float = -1.0) -> Evaluation:
        return Evaluation({"a": 0}, objective, {"g": violation})

    evaluations = [ev(20.0), ev(10.0, violation=1.0), ev(10.3), ev(10.1)]
    result = SearchResult("x", evaluations, None, None, "")
    # the infeasible 10.0 never counts; 10.3 is outside 2 % of 10 but inside 5 %
    assert evaluations_to_reach(result, 10.0) == 4
    assert evaluations_to_reach(result, 10.0, tolerance=0.05) == 3
    assert evaluations_to_reach(result, 10.0, tolerance=0.0) is None
    assert evaluations_to_reach(result, 20.0) == 1
