"""Design-space search for fault-tolerant accelerators: constrained Bayesian optimisation
(Emukit + GPy) over a discrete design space, with random and exhaustive baselines that share its
interface, and a resumable JSONL evaluation log.

The evaluation of one design is a plain callable ``evaluate(design: dict) -> Evaluation``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

# Names are imported on first use: ``python -m accelsim --help`` imports optimizer.cli, hence
# this package, and must not pay for Emukit, GPy and matplotlib.
_EXPORTS = {
    "exhaustive_search": "baselines",
    "random_search": "baselines",
    "OptimizeConfig": "config",
    "parse_optimize": "config",
    "DesignEvaluator": "evaluate",
    "OptimizeResult": "search",
    "OptimizeRun": "search",
    "optimize": "search",
    "Evaluation": "log",
    "EvaluationLog": "log",
    "Progress": "log",
    "SearchResult": "log",
    "summarise": "log",
    "bayesian_optimize": "loop",
    "evaluations_to_reach": "quality",
    "DesignSpace": "space",
    "Variable": "space",
}

__all__ = [
    "DesignEvaluator",
    "DesignSpace",
    "OptimizeConfig",
    "OptimizeResult",
    "OptimizeRun",
    "Evaluation",
    "EvaluationLog",
    "Progress",
    "SearchResult",
    "Variable",
    "bayesian_optimize",
    "evaluations_to_reach",
    "exhaustive_search",
    "optimize",
    "parse_optimize",
    "random_search",
    "summarise",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'optimizer' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .baselines import exhaustive_search, random_search
    from .config import OptimizeConfig, parse_optimize
    from .evaluate import DesignEvaluator
    from .log import Evaluation, EvaluationLog, Progress, SearchResult, summarise
    from .loop import bayesian_optimize
    from .quality import evaluations_to_reach
    from .search import OptimizeResult, OptimizeRun, optimize
    from .space import DesignSpace, Variable
