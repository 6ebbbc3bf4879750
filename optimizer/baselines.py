"""Baselines the Bayesian optimiser is compared with.

* The fixed designs (:func:`fixed_designs`): the protection schemes of
  :func:`faults.protection.fixed_protections` (their one definition) on a design's hardware.
* Random and exhaustive search, with the same interface as the Bayesian optimiser. Both fix
  their whole sequence of designs in advance (random: a seeded draw without replacement;
  exhaustive: enumeration order), so resuming from a log only has to check the logged prefix
  and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from faults.protection import PROTECTION_VARIABLES, fixed_protections

from .log import Evaluate, ProgressCallback, Recorder, SearchResult, Verify
from .space import DesignSpace


def fixed_designs(
    space: DesignSpace, reference: Mapping[str, Any], *, units: int
) -> dict[str, dict[str, Any]]:
    """The fixed protection schemes on ``reference``'s array and quantisation (a design of
    ``space``): no protection, full TMR, neuron-only (the space's largest protected fraction
    and redundant units, else ``units``; no hardening), bit-only (the space's largest
    hardening, no neurons)."""
    values = {v.name: v.values for v in space.variables}
    base = {k: v for k, v in reference.items() if k not in PROTECTION_VARIABLES}
    fractions = values.get("protected_fraction", (1.0,))
    space_units = values.get("redundant_units", ())
    hardening = {n: max(v) for n, v in values.items() if n.startswith("hardened_bits.")}
    schemes = fixed_protections(
        fraction=max(fractions),
        units=max(space_units) if space_units else units,
        hardening=hardening,
    )
    return {name: {**base, **scheme} for name, scheme in schemes.items()}


def random_search(
    space: DesignSpace,
    evaluate: Evaluate,
    *,
    budget: int,
    seed: int,
    log_path: str | Path | None = None,
    on_evaluation: ProgressCallback | None = None,
    verify: Verify | None = None,
) -> SearchResult:
    """Evaluate ``budget`` distinct designs drawn uniformly at random (seeded). ``verify``:
    the check of each design that would become the best (see :class:`Recorder`)."""
    _check_budget(budget)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x52414E44]))
    order = space.sample_indices(rng, budget)
    return _run_sequence(space, evaluate, order, "random", seed, log_path, on_evaluation, verify)


def exhaustive_search(
    space: DesignSpace,
    evaluate: Evaluate,
    *,
    log_path: str | Path | None = None,
    on_evaluation: ProgressCallback | None = None,
    verify: Verify | None = None,
) -> SearchResult:
    """Evaluate every design in enumeration order: the ground truth on small spaces."""
    order = list(space.iter_indices())
    return _run_sequence(
        space, evaluate, order, "exhaustive", None, log_path, on_evaluation, verify
    )


def _run_sequence(
    space: DesignSpace,
    evaluate: Evaluate,
    order: list[tuple[int, ...]],
    method: str,
    seed: int | None,
    log_path: str | Path | None,
    on_evaluation: ProgressCallback | None,
    verify: Verify | None = None,
) -> SearchResult:
    recorder = Recorder(
        space,
        method=method,
        seed=seed,
        total=len(order),
        log_path=log_path,
        on_evaluation=on_evaluation,
        verify=verify,
    )
    try:
        done = len(recorder.replay(expected=order))
        for idx in order[done:]:
            recorder.evaluate(space.design_at(idx), evaluate)
        return recorder.result()
    finally:
        recorder.close()


def _check_budget(budget: int) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise AccelsimError(
            f"budget must be a positive number of evaluations, got {budget!r}",
            key="optimize.budget",
        )
