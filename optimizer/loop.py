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
- Batches (``batch_size`` q > 1): each iteration proposes q distinct designs by the *Kriging
  believer* rule on the discrete grid, then evaluates them concurrently on an
  :class:`EvaluatorPool`. Pick the acquisition's maximiser, add it to every surrogate (objective
  and constraints) as a pending observation equal to that surrogate's predicted mean, with the
  hyper-parameters held (conditioning, no refit), rebuild the acquisition and pick again, q
  times; the incumbent ``best`` stays the best *observed* feasible value. Conditioning on a
  point shrinks the posterior variance around it, so EI there falls and the next pick moves
  away. (Emukit's ``LocalPenalizationPointCalculator`` was not used: it estimates a Lipschitz
  constant by gradient-based optimisation over a continuous box and needs acquisition
  gradients, neither of which exists for our product acquisition on a discrete grid.)
  The schedule of batches is fixed by the evaluation count alone: the initial designs in
  chunks of q, then batches starting at ``n_initial + k q`` (the last one cut to the budget),
  each proposed from the evaluations before its start. Results are recorded in proposal order,
  whatever order they complete in and however many workers there are; q = 1 is exactly the
  sequential loop.

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
  :func:`_seed_global_rng`, at every step from (run seed, number of evaluations before the
  batch), and the GPs are refitted from the same initial hyper-parameters each step. So the
  choice of the k-th design depends only on the seed and the evaluations before its batch: a
  run resumed from its log makes exactly the choices of an uninterrupted one, and extending the
  budget continues the sequence. Evaluations are committed to the log one by one in proposal
  order as they arrive, so a crash mid-batch keeps the batch's completed prefix; the resumed run
  re-proposes that batch from the same evaluations, checks the logged part against it, and
  evaluates the rest. The caller's global RNG state is restored afterwards.
"""

from __future__ import annotations

import warnings
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
    LoopState,
    ModelUpdater,
    OuterLoop,
    StoppingCondition,
    UserFunction,
    UserFunctionResult,
)
from emukit.core.optimization import AcquisitionOptimizerBase
from emukit.core.optimization.context_manager import ContextManager
from emukit.experimental_design.acquisitions import ModelVariance
from emukit.model_wrappers import GPyModelWrapper
from threadpoolctl import threadpool_limits

from accelsim.errors import AccelsimError

from .log import Evaluate, Evaluation, ProgressCallback, Recorder, SearchResult, Verify
from .pools import EvaluatorPool, SerialPool
from .space import DesignSpace

DEFAULT_EXHAUSTIVE_LIMIT = 5000
RUNNABLE = "runnable"


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
    batch_size: int = 1,
    evaluator_pool: EvaluatorPool | None = None,
    verify: Verify | None = None,
) -> SearchResult:
    """Minimise the objective subject to every constraint ``<= 0`` within ``budget`` evaluations.

    ``evaluate(design) -> Evaluation`` is called once per design, never twice for the same one.
    With ``log_path``, evaluations are appended as they complete and a rerun resumes from them.
    ``batch_size`` q: designs proposed per iteration (Kriging believer, see the module
    docstring) and evaluated together on ``evaluator_pool`` (default: serially in this
    process); the sequence depends on the seed and q, never on the pool or its workers.
    ``verify``: the check of each design that would become the best (a certificate, see
    :class:`~optimizer.log.Recorder`), run here in proposal order; the surrogates learn its
    verdict like any evaluation.
    """
    _check_positive("optimize.budget", budget)
    _check_positive("optimize.n_initial", n_initial)
    _check_positive("optimize.batch_size", batch_size)
    budget = min(budget, space.size)
    n_initial = min(n_initial, budget)
    settings: dict[str, Any] = {
        "n_initial": n_initial,
        "gp_restarts": gp_restarts,
        "exhaustive_limit": exhaustive_limit,
    }
    if batch_size > 1:  # absent for q = 1, so logs of sequential runs keep their header
        settings["batch_size"] = batch_size
    recorder = Recorder(
        space,
        method="bayesian",
        seed=seed,
        total=budget,
        log_path=log_path,
        on_evaluation=on_evaluation,
        settings=settings,
        verify=verify,
    )
    saved_rng = np.random.get_state()
    try:
        initial = space.latin_hypercube(
            np.random.default_rng(np.random.SeedSequence([int(seed), 0x4C4853])), n_initial
        )
        recorder.replay(expected=None)
        _check_initial_prefix(recorder, initial)

        schedule = BatchSchedule(n_initial=n_initial, batch_size=batch_size, budget=budget)
        user_function = _DesignFunction(space, recorder, evaluate, evaluator_pool or SerialPool())
        models = ConstrainedModels(
            space, recorder, seed=seed, gp_restarts=gp_restarts, schedule=schedule
        )
        optimizer = DiscreteAcquisitionOptimizer(space, exhaustive_limit=exhaustive_limit)
        calculator = SpaceFillingThenAcquisition(initial, models, optimizer, recorder, schedule)
        state = ResumedLoopState(user_function.results_for(recorder.history))
        loop = OuterLoop(calculator, [models], state)
        loop.run_loop(user_function, EvaluationBudget(recorder, budget))
        return recorder.result()
    finally:
        np.random.set_state(saved_rng)
        recorder.close()


class ResumedLoopState(LoopState):
    """Emukit's loop state after the logged evaluations: each counts as a done iteration."""

    def __init__(self, results: list[UserFunctionResult]) -> None:
        super().__init__(results)
        self.iteration = len(results)


class BatchSchedule:
    """Where each batch starts and how many designs it holds, from the evaluation count alone
    (so a resumed run cuts its batches exactly where the uninterrupted one did)."""

    def __init__(self, *, n_initial: int, batch_size: int, budget: int) -> None:
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.budget = budget

    def start(self, n: int) -> int:
        """First evaluation of the batch that evaluation ``n`` belongs to. Initial designs are
        fixed in advance, so their chunks need no alignment: a batch starts wherever ``n`` is."""
        if n < self.n_initial:
            return n
        return self.n_initial + (n - self.n_initial) // self.batch_size * self.batch_size

    def end(self, start: int) -> int:
        """One past the last evaluation of the batch starting at ``start``."""
        limit = self.n_initial if start < self.n_initial else self.budget
        return min(start + self.batch_size, limit, self.budget)


class EvaluationBudget(StoppingCondition):
    """Stop once ``budget`` designs are evaluated (Emukit counts iterations, which hold a batch)."""

    def __init__(self, recorder: Recorder, budget: int) -> None:
        self.recorder = recorder
        self.budget = budget

    def should_stop(self, loop_state: LoopState) -> bool:
        return len(self.recorder.history) >= self.budget


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
    """Emukit ``UserFunction``: decodes the batch's points, evaluates them on the pool, and
    commits each record (log + history + progress) in proposal order as soon as it and every
    record before it have arrived."""

    def __init__(
        self, space: DesignSpace, recorder: Recorder, evaluate: Evaluate, pool: EvaluatorPool
    ) -> None:
        self.space = space
        self.recorder = recorder
        self.user_evaluate = evaluate
        self.pool = pool

    def evaluate(self, X: np.ndarray) -> list[UserFunctionResult]:
        indices = self.space.decode_indices(np.atleast_2d(X))
        designs = [self.space.design_at(idx) for idx in indices]
        results = []
        outcomes = iter(self.pool.map(self.user_evaluate, designs))
        for idx, design in zip(indices, designs):
            outcome = next(outcomes)
            evaluation = self.recorder.run(design, lambda _design, found=outcome: found)
            position = len(self.recorder.history)
            self.recorder.commit(evaluation)
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

    ``schedule``: refit once per batch, on the evaluations before its start, and not during the
    initial designs, nor once the budget is spent (None: refit after every evaluation).
    After :meth:`update`: ``objective`` (GP of the possibly log-transformed objective, or None),
    ``best`` (best feasible transformed objective, or None), ``constraints`` (name -> GP).
    """

    def __init__(
        self,
        space: DesignSpace,
        recorder: Recorder,
        *,
        seed: int,
        gp_restarts: int,
        schedule: BatchSchedule | None = None,
    ) -> None:
        self.space = space
        self.recorder = recorder
        self.seed = seed
        self.gp_restarts = gp_restarts
        self.schedule = schedule
        self.objective: GPyModelWrapper | None = None
        self.best: float | None = None
        self.constraints: dict[str, GPyModelWrapper] = {}
        self.fitted_at: int | None = None
        self._believed: list[tuple[GPyModelWrapper, np.ndarray, np.ndarray]] = []

    def update(self, loop_state: Any) -> None:
        """Refit on the evaluations before the current batch's start (all of them when q = 1)."""
        n = len(self.recorder.history)
        if n == 0:
            return  # nothing to learn from
        if self.schedule is None:
            start = n
        elif n >= self.schedule.budget or n < self.schedule.n_initial:
            return  # no further point will be chosen, or the next one is an initial design
        else:
            start = self.schedule.start(n)
        if self.fitted_at == start:
            return
        self.fit(start)

    def fit(self, n: int) -> None:
        """Fit every surrogate to the first ``n`` evaluations."""
        self.forget_beliefs()
        history = self.recorder.history[:n]
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

    def surrogates(self) -> list[GPyModelWrapper]:
        """Every fitted GP: the objective's (if any), then the constraints' by name."""
        models = [] if self.objective is None else [self.objective]
        return models + [self.constraints[name] for name in sorted(self.constraints)]

    def believe(self, idx: tuple[int, ...]) -> None:
        """Kriging believer: condition every surrogate on a pending observation at ``idx`` equal
        to its own predicted mean there, hyper-parameters held. ``best`` is left alone."""
        x = self.space.encode_indices(np.asarray([idx]))
        if not self._believed:  # the first belief of this batch: remember the fitted data
            self._believed = [(m, m.X.copy(), m.Y.copy()) for m in self.surrogates()]
        for model in self.surrogates():
            mean, _ = model.predict(x)
            model.set_data(np.vstack([model.X, x]), np.vstack([model.Y, mean]))

    def forget_beliefs(self) -> None:
        """Drop the pending observations: back to the surrogates as fitted."""
        for model, X, Y in self._believed:
            model.set_data(X, Y)
        self._believed = []

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
    step by :func:`_seed_global_rng`. :meth:`maximise` says which points are evaluated
    (``excluded``) and which are the incumbents (``anchors``) for each search.
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

    def maximise(
        self,
        acquisition: Acquisition,
        *,
        excluded: set[tuple[int, ...]],
        anchors: list[tuple[int, ...]],
        context: dict | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Emukit's ``optimize`` over the points not in ``excluded``, the local search also
        starting from the neighbours of ``anchors``."""
        self.excluded = set(excluded)
        self.anchors = list(anchors)
        return self.optimize(acquisition, context)

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
        schedule: BatchSchedule | None = None,
    ) -> None:
        self.initial = initial
        self.models = models
        self.optimizer = optimizer
        self.recorder = recorder
        # default: one design at a time
        self.schedule = schedule or BatchSchedule(
            n_initial=len(initial), batch_size=1, budget=recorder.space.size
        )

    def compute_next_points(self, loop_state: Any, context: dict | None = None) -> np.ndarray:
        """The rest of the current batch (see :class:`BatchSchedule`): initial designs, or the
        batch proposed from the evaluations before its start, minus what the log already has."""
        space = self.recorder.space
        history = self.recorder.history
        n = len(history)
        start = self.schedule.start(n)
        end = self.schedule.end(start)
        if n < len(self.initial):
            return space.encode_indices(np.asarray(self.initial[n:end]))
        batch = self.propose(start, end - start, context)
        for i in range(start, n):  # resumed mid-batch: the logged part must be this batch's
            if space.index(history[i].design) != batch[i - start]:
                raise AccelsimError(
                    f"evaluation {i} in the log is not the design this search would try; "
                    "the log belongs to another run",
                    file=None if self.recorder.log is None else self.recorder.log.path,
                )
        return space.encode_indices(np.asarray(batch[n - start :]))

    def propose(self, start: int, size: int, context: dict | None = None) -> list[tuple[int, ...]]:
        """``size`` distinct unevaluated designs from the first ``start`` evaluations (the models
        are fitted to them): the acquisition's maximiser, then Kriging-believer picks."""
        space = self.recorder.space
        history = self.recorder.history[:start]
        excluded = {space.index(e.design) for e in history}
        anchors = self._anchors(history)
        batch: list[tuple[int, ...]] = []
        try:
            for _ in range(size):
                acquisition = self.models.acquisition()
                if acquisition is None:  # nothing to model (no objective, no constraint seen)
                    chosen = self._random_unevaluated(excluded)
                else:
                    x, _ = self.optimizer.maximise(
                        acquisition, excluded=excluded, anchors=anchors, context=context
                    )
                    chosen = tuple(int(i) for i in space.decode_indices(x)[0])
                if chosen in excluded:
                    raise RuntimeError(
                        f"acquisition optimiser proposed an evaluated design {chosen}"
                    )
                batch.append(chosen)
                excluded.add(chosen)
                if len(batch) < size and acquisition is not None:
                    self.models.believe(chosen)
        finally:
            self.models.forget_beliefs()
        return batch

    def _anchors(self, history: list[Evaluation]) -> list[tuple[int, ...]]:
        feasible = [e for e in history if e.feasible]
        feasible.sort(key=lambda e: e.objective)
        return [self.recorder.space.index(e.design) for e in feasible[:3]]

    def _random_unevaluated(self, excluded: set[tuple[int, ...]]) -> tuple[int, ...]:
        space = self.recorder.space
        while True:
            idx = tuple(int(np.random.randint(0, n)) for n in space.shape)
            if idx not in excluded:
                return idx
