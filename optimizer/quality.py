"""How quickly a search reached a known optimum: the figure the optimiser benchmark compares."""

from __future__ import annotations

from .log import SearchResult


def evaluations_to_reach(
    result: SearchResult, optimum: float, tolerance: float = 0.02
) -> int | None:
    """Number of evaluations (1-based count) after which the best feasible objective first lies
    within ``tolerance`` (relative, 0.02 = 2 %) of the known minimum ``optimum``; None if never.

    An objective at or below ``optimum * (1 + tolerance)`` for a positive optimum (generally
    ``optimum + tolerance * |optimum|``) counts as reached.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    threshold = optimum + tolerance * abs(optimum)
    for i, evaluation in enumerate(result.evaluations):
        if evaluation.feasible and evaluation.objective <= threshold:
            return i + 1
    return None
