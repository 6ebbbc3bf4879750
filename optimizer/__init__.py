"""Design-space search for fault-tolerant accelerators: constrained Bayesian optimisation
(Emukit + GPy) over a discrete design space, with random and exhaustive baselines that share its
interface, and a resumable JSONL evaluation log.

The evaluation of one design is a plain callable ``evaluate(design: dict) -> Evaluation``.
"""

from .baselines import exhaustive_search, random_search
from .config import OptimizeConfig, parse_optimize
from .evaluate import DesignEvaluator
from .log import Evaluation, EvaluationLog, Progress, SearchResult, summarise
from .loop import bayesian_optimize
from .quality import evaluations_to_reach
from .search import OptimizeResult, OptimizeRun, optimize
from .space import DesignSpace, Variable

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
