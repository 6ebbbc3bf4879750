"""Constrained Bayesian optimisation over a discrete design space, composed from Emukit's parts.

Emukit's ready-made ``UnknownConstraintBayesianOptimizationLoop`` optimises the acquisition as if
the space were continuous and takes a single constraint model. Our space is a small discrete grid
with several constraints, so the loop is assembled from Emukit's building blocks:

- :class:`emukit.core.loop.OuterLoop` drives the iterations; its ``iteration_end_event`` commits
  each evaluation to the JSONL log and reports progress.
- :class:`ConstrainedModels` (an Emukit ``ModelUpdater``) refits, from the evaluation history, one
  GPy GP for the objective and one per constraint (each wrapped in ``GPyModelWrapper``).
- The acquisition is expected improvement over the best *feasible* objective times one
  ``ProbabilityOfFeasibility`` per constraint (Gelbart, Snoek & Adams 2014), built with Emukit's
  ``*`` on ``Acquisition`` objects. Until a feasible design is known it is the product of the
  probabilities of feasibility alone (find the feasible region first).
- :class:`DiscreteAcquisitionOptimizer` maximises the acquisition over the *unevaluated* points of
  the grid: exactly (every point) on spaces up to ``exhaustive_limit`` points, by multi-start
  one-exchange local search beyond. A design is never evaluated twice.
- The first ``n_initial`` designs are a Latin hypercube over the ordinal indices.

Modelling choices:

- GP inputs are the ordinal indices scaled to [0, 1] (see :mod:`optimizer.space`); targets are
  standardised (GPy ``normalizer``), so constraints in any unit share one kernel prior.
- A strictly positive objective (area, energy) is modelled in log space.
- A design that cannot run (``infeasible_reason``) has no objective and no constraint values: it is
  left out of the objective GP and of the constraint GPs (inventing a penalty value would distort
  those surfaces) and instead feeds one extra constraint, ``runnable``, whose GP sees +1 for
  "cannot run" and -1 for "ran". Its probability of feasibility steers the search away from
  regions that do not run. So such a design counts as violating, as the contract requires.
- Determinism and resume: Emukit and GPy draw from numpy's *global* RNG. It is seeded in one place,
  :func:`_seed_global_rng`, at every step from (run seed, number of evaluations so far), and the
  GPs are refitted from the same initial hyper-parameters each step. So the choice of the k-th
  design depends only on the seed and the first k evaluations: a run resumed from its log makes
  exactly the choices of an uninterrupted one, and extending the budget continues the sequence.
  The caller's global RNG state is restored afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import GPy
import numpy as np
from emukit.bayesian_optimization.acquisitions import (
    ExpectedImprovement,
    ProbabilityOfFeasibility,
)
from emukit.core.acquisition import Acquisition
from emukit.core.loop import (
    CandidatePointCalculator,
    FixedIterationsStoppingCondition,
    LoopState,
    ModelUpdater,
    OuterLoop,
    UserFunction,
    UserFunctionResult,
)
from emukit.core.optimization import AcquisitionOptimizerBase
from emukit.core.optimization.context_manager import ContextManager
from emukit.experimental_design.acquisitions import ModelVariance
from emukit.model_wrappers import GPyModelWrapper
from threadpoolctl import threadpool_limits

from accelsim.errors import AccelsimError

from .log import Evaluation, ProgressCallback, Recorder, SearchResult
from .space import DesignSpace

DEFAULT_EXHAUSTIVE_LIMIT = 5000
RUNNABLE = "runnable"

Evaluate = Callable[[dict[str, Any]], Evaluation]


def bayesian_optimize(
    space: DesignSpace,
    evaluate: Evaluate,
    *,
    budget: int,
    n_initial: int,
    seed: int,
    log_path: str | Path | None = None,
    on_evaluation: ProgressCallback | None = None,
    gp_restarts: int = 2,
    exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
) -> SearchResult:
    """Minimise the objective subject to every constraint ``<= 0`` within ``budget`` evaluations.

    ``evaluate(design) -> Evaluation`` is called once per design, never twice for the same one.
    With ``log_path``, evaluations are appended as they complete and a rerun resumes from them.
    """
    _check_positive("optimize.budget", budget)
    _check_positive("optimize.n_initial", n_initial)
    budget = min(budget, space.size)
    n_initial = min(n_initial, budget)
    settings = {
        "n_initial": n_initial,
        "gp_restarts": gp_restarts,
        "exhaustive_limit": exhaustive_limit,
    }
    recorder = Recorder(
        space,
        method="bayesian",
        seed=seed,
        total=budget,
        log_path=log_path,
        on_evaluation=on_evaluation,
        settings=settings,
    )
    saved_rng = np.random.get_state()
    try:
        initial = space.latin_hypercube(
            np.random.default_rng(np.random.SeedSequence([int(seed), 0x4C4853])), n_initial
        )
        recorder.replay(expected=None)
        _check_initial_prefix(recorder, initial)

        user_function = _DesignFunction(space, recorder, evaluate)
        models = ConstrainedModels(space, recorder, seed=seed, gp_restarts=gp_restarts)
        optimizer = DiscreteAcquisitionOptimizer(space, exhaustive_limit=exhaustive_limit)
        calculator = SpaceFillingThenAcquisition(initial, models, optimizer, recorder)
        state = LoopState(user_function.results_for(recorder.history))
        state.iteration = len(recorder.history)
        loop = OuterLoop(calculator, [models], state)
        loop.iteration_end_event.append(user_function.commit_pending)
        models.stop_after = budget
        loop.run_loop(user_function, FixedIterationsStoppingCondition(budget))
        return recorder.result()
    finally:
        np.random.set_state(saved_rng)
        recorder.close()


def _check_positive(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AccelsimError(f"must be a positive integer, got {value!r}", key=key)


def _check_initial_prefix(recorder: Recorder, initial: list[tuple[int, ...]]) -> None:
    for i, (ev, idx) in enumerate(zip(recorder.history, initial)):
        if recorder.space.index(ev.design) != idx:
            raise AccelsimError(
                f"evaluation {i} in the log is not this search's initial design; "
                "the log belongs to another run",
                file=None if recorder.log is None else recorder.log.path,
            )


def _seed_global_rng(seed: int, step: int) -> None:
    """The one place numpy's global RNG (used by Emukit and GPy) is seeded."""
    np.random.seed(int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0]))


# --------------------------------------------------------------------------- user function
class _DesignFunction(UserFunction):
    """Emukit ``UserFunction``: decodes each point, runs the user's evaluation, and holds the
    record until the loop's iteration-end event commits it (log + progress)."""

    def __init__(self, space: DesignSpace, recorder: Recorder, evaluate: Evaluate) -> None:
        self.space = space
        self.recorder = recorder
        self.user_evaluate = evaluate
        self.pending: list[Evaluation] = []

    def evaluate(self, X: np.ndarray) -> list[UserFunctionResult]:
        results = []
        for row in np.atleast_2d(X):
            idx = self.space.decode_indices(row.reshape(1, -1))[0]
            evaluation = self.recorder.run(self.space.design_at(idx), self.user_evaluate)
            position = len(self.recorder.history) + len(self.pending)
            self.pending.append(evaluation)
            results.append(self._result(idx, evaluation, position))
        return results

    def _result(self, idx: np.ndarray, evaluation: Evaluation, position: int) -> UserFunctionResult:
        objective = np.nan if evaluation.objective is None else evaluation.objective
        return UserFunctionResult(
            self.space.encode_indices(np.asarray([idx]))[0],
            np.array([objective], dtype=float),
            evaluation_index=np.array([position]),
        )

    def results_for(self, history: list[Evaluation]) -> list[UserFunctionResult]:
        return [
            self._result(np.asarray(self.space.index(ev.design)), ev, i)
            for i, ev in enumerate(history)
        ]

    def commit_pending(self, loop: object, loop_state: object) -> None:
        """``iteration_end_event`` handler: log the iteration's evaluations, report progress."""
        for evaluation in self.pending:
            self.recorder.commit(evaluation)
        self.pending.clear()


# --------------------------------------------------------------------------- models
def _make_gp(X: np.ndarray, Y: np.ndarray, restarts: int) -> GPyModelWrapper:
    """A Matern-5/2 ARD GP on standardised targets, refitted from fixed starting values."""
    kernel = GPy.kern.Matern52(X.shape[1], ARD=True, lengthscale=0.5, variance=1.0)
    kernel.lengthscale.constrain_bounded(0.05, 10.0, warning=False)
    kernel.variance.constrain_bounded(1e-2, 1e2, warning=False)
    with warnings.catch_warnings():
        # Constant targets (e.g. nothing has run yet) are expected; GPy's standardiser copes.
        warnings.filterwarnings("ignore", "Some values of Y have standard deviation of zero")
        gp = GPy.models.GPRegression(X, Y, kernel, normalizer=True, noise_var=1e-4)
    gp.Gaussian_noise.variance.constrain_bounded(1e-6, 0.25, warning=False)
    model = GPyModelWrapper(gp, n_restarts=max(1, restarts))
    # matrices of a few dozen points: BLAS threads only contend (measured 2-3x slower with
    # the default thread pool on 2 cores), so the fit runs single-threaded
    with threadpool_limits(limits=1, user_api="blas"):
        model.optimize()
    return model


class ConstrainedModels(ModelUpdater):
    """Emukit ``ModelUpdater`` that refits every surrogate from the evaluation history.

    After :meth:`update`: ``objective`` (GP of the possibly log-transformed objective, or None),
    ``best`` (best feasible transformed objective, or None), ``constraints`` (name -> GP).
    """

    def __init__(self, space: DesignSpace, recorder: Recorder, *, seed: int, gp_restarts: int):
        self.space = space
        self.recorder = recorder
        self.seed = seed
        self.gp_restarts = gp_restarts
        self.stop_after: int | None = None
        self.n_initial = 0
        self.objective: GPyModelWrapper | None = None
        self.best: float | None = None
        self.constraints: dict[str, GPyModelWrapper] = {}
        self.fitted_at: int | None = None

    def update(self, loop_state: Any) -> None:
        history = self.recorder.history
        n = len(history)
        if n == 0 or (self.stop_after is not None and n >= self.stop_after):
            return  # nothing to learn from, or no further point will be chosen
        if n < self.n_initial or self.fitted_at == n:
            return
        _seed_global_rng(self.seed, n)
        X = self.space.encode_indices(np.asarray([self.space.index(e.design) for e in history]))

        ran = np.array([e.ran for e in history])
        objective = np.array(
            [np.nan if e.objective is None else e.objective for e in history], dtype=float
        )
        known = np.isfinite(objective) & ran
        positive = bool(known.any() and np.all(objective[known] > 0))
        transformed = np.log(np.where(known, objective, 1.0)) if positive else objective
        self.objective = (
            _make_gp(X[known], transformed[known].reshape(-1, 1), self.gp_restarts)
            if known.any()
            else None
        )
        feasible = np.array([e.feasible for e in history])
        self.best = float(np.min(transformed[feasible])) if feasible.any() else None

        self.constraints = {}
        names = sorted({k for e in history if e.ran for k in e.constraints})
        for name in names:
            rows = [i for i, e in enumerate(history) if e.ran and name in e.constraints]
            y = np.array([history[i].constraints[name] for i in rows], dtype=float)
            self.constraints[name] = _make_gp(X[rows], y.reshape(-1, 1), self.gp_restarts)
        if not ran.all():
            y = np.where(ran, -1.0, 1.0).reshape(-1, 1)
            self.constraints[RUNNABLE] = _make_gp(X, y, self.gp_restarts)
        self.fitted_at = n

    def acquisition(self) -> Acquisition | None:
        """EI over the best feasible objective x one probability of feasibility per constraint."""
        feasibility: Acquisition | None = None
        for name in sorted(self.constraints):
            pof = ProbabilityOfFeasibility(self.constraints[name])
            feasibility = pof if feasibility is None else feasibility * pof
        if self.objective is not None and self.best is not None:
            ei = FeasibleExpectedImprovement(self.objective, self.best)
            return ei if feasibility is None else ei * feasibility
        if feasibility is not None:
            return feasibility  # no feasible design yet: look for one
        if self.objective is not None:
            return ModelVariance(self.objective)  # unconstrained, no incumbent: explore
        return None


class FeasibleExpectedImprovement(ExpectedImprovement):
    """Expected improvement over the best *feasible* observation, not the best observation: an
    infeasible design with a small objective is no incumbent."""

    def __init__(self, model: GPyModelWrapper, best: float) -> None:
        super().__init__(model)
        self.best = best

    def _get_y_minimum(self) -> np.ndarray:
        return np.array([self.best])


# --------------------------------------------------------------------------- acquisition optimiser
class DiscreteAcquisitionOptimizer(AcquisitionOptimizerBase):
    """Maximise an acquisition over the unevaluated points of a discrete space.

    Exact (every unevaluated point) up to ``exhaustive_limit`` points; beyond, a multi-start
    one-exchange local search: ``n_random`` uniform draws plus the neighbours of ``anchors``
    (the incumbents), the best ``n_starts`` of them climbed to a local maximum (each variable
    moved one value up or down at a time). Random draws come from numpy's global RNG, seeded per
    step by :func:`_seed_global_rng`.
    """

    def __init__(
        self,
        space: DesignSpace,
        *,
        exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
        n_random: int = 1000,
        n_starts: int = 5,
        max_steps: int = 30,
    ) -> None:
        super().__init__(space.emukit_space())
        self.design_space = space
        self.exhaustive_limit = exhaustive_limit
        self.n_random = n_random
        self.n_starts = n_starts
        self.max_steps = max_steps
        self.excluded: set[tuple[int, ...]] = set()
        self.anchors: list[tuple[int, ...]] = []
        self._all: np.ndarray | None = None

    def _optimize(
        self, acquisition: Acquisition, context_manager: ContextManager
    ) -> tuple[np.ndarray, np.ndarray]:
        """(best unevaluated point (1 x d), its acquisition value (1 x 1))."""
        if context_manager.context:
            raise NotImplementedError("fixing variables through a context is not supported")
        if len(self.excluded) >= self.design_space.size:
            raise RuntimeError("every design has been evaluated")
        if self.design_space.size <= self.exhaustive_limit:
            idx, value = self._exhaustive(acquisition)
        else:
            idx, value = self._local_search(acquisition)
        x = self.design_space.encode_indices(np.asarray([idx]))
        return x, np.array([[value]])

    def _values(self, acquisition: Any, indices: np.ndarray) -> np.ndarray:
        values = np.asarray(acquisition.evaluate(self.design_space.encode_indices(indices)))
        values = values.reshape(-1)
        return np.where(np.isfinite(values), values, -np.inf)

    def _exhaustive(self, acquisition: Any) -> tuple[tuple[int, ...], float]:
        if self._all is None:
            self._all = self.design_space.all_indices()
        mask = np.ones(len(self._all), dtype=bool)
        if self.excluded:
            flat = np.ravel_multi_index(np.asarray(list(self.excluded)).T, self.design_space.shape)
            mask[flat] = False
        candidates = self._all[mask]
        values = self._values(acquisition, candidates)
        best = int(np.argmax(values))  # ties: the first in enumeration order
        return tuple(int(i) for i in candidates[best]), float(values[best])

    def _neighbours(self, idx: tuple[int, ...]) -> list[tuple[int, ...]]:
        out = []
        for d, n in enumerate(self.design_space.shape):
            for step in (-1, 1):
                j = idx[d] + step
                if 0 <= j < n:
                    out.append(idx[:d] + (j,) + idx[d + 1 :])
        return [p for p in out if p not in self.excluded]

    def _local_search(self, acquisition: Any) -> tuple[tuple[int, ...], float]:
        shape = self.design_space.shape
        draws = np.column_stack([np.random.randint(0, n, self.n_random) for n in shape])
        pool: dict[tuple[int, ...], None] = {}
        for row in draws:
            pool.setdefault(tuple(int(i) for i in row), None)
        for anchor in self.anchors:
            for p in self._neighbours(anchor):
                pool.setdefault(p, None)
        candidates = [p for p in pool if p not in self.excluded]
        while not candidates:  # a nearly exhausted huge space: draw until something is new
            p = tuple(int(np.random.randint(0, n)) for n in shape)
            if p not in self.excluded:
                candidates.append(p)
        values = self._values(acquisition, np.asarray(candidates))
        order = np.argsort(-values, kind="stable")[: self.n_starts]
        best_idx, best_value = candidates[int(order[0])], float(values[order[0]])
        for start in order:
            idx, value = candidates[int(start)], float(values[start])
            for _ in range(self.max_steps):
                neighbours = self._neighbours(idx)
                if not neighbours:
                    break
                nvalues = self._values(acquisition, np.asarray(neighbours))
                k = int(np.argmax(nvalues))
                if not nvalues[k] > value:
                    break
                idx, value = neighbours[k], float(nvalues[k])
            if value > best_value:
                best_idx, best_value = idx, value
        return best_idx, best_value


# --------------------------------------------------------------------------- candidate calculator
class SpaceFillingThenAcquisition(CandidatePointCalculator):
    """Emukit ``CandidatePointCalculator``: the Latin-hypercube designs first, then the maximiser
    of the constrained acquisition over the unevaluated points."""

    def __init__(
        self,
        initial: list[tuple[int, ...]],
        models: ConstrainedModels,
        optimizer: DiscreteAcquisitionOptimizer,
        recorder: Recorder,
    ) -> None:
        self.initial = initial
        self.models = models
        self.optimizer = optimizer
        self.recorder = recorder
        models.n_initial = len(initial)

    def compute_next_points(self, loop_state: Any, context: dict | None = None) -> np.ndarray:
        space = self.recorder.space
        n = len(self.recorder.history)
        if n < len(self.initial):
            return space.encode_indices(np.asarray([self.initial[n]]))
        self.optimizer.excluded = set(self.recorder.evaluated)
        self.optimizer.anchors = self._anchors()
        acquisition = self.models.acquisition()
        if acquisition is None:  # nothing to model (e.g. no objective and no constraint seen)
            idx = self._random_unevaluated()
            return space.encode_indices(np.asarray([idx]))
        x, _ = self.optimizer.optimize(acquisition, context)
        chosen = tuple(int(i) for i in space.decode_indices(x)[0])
        if chosen in self.recorder.evaluated:
            raise RuntimeError(f"acquisition optimiser proposed an evaluated design {chosen}")
        return x

    def _anchors(self) -> list[tuple[int, ...]]:
        feasible = [e for e in self.recorder.history if e.feasible]
        feasible.sort(key=lambda e: e.objective)
        return [self.recorder.space.index(e.design) for e in feasible[:3]]

    def _random_unevaluated(self) -> tuple[int, ...]:
        space = self.recorder.space
        while True:
            idx = tuple(int(np.random.randint(0, n)) for n in space.shape)
            if idx not in self.recorder.evaluated:
                return idx
