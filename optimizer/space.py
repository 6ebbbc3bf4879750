"""The discrete design space: named, ordered variables and their encoding for the surrogates.

Every variable of an accelerator design (array rows, bit widths, hardened bits, ...) takes one of
a short, ordered list of values. The optimiser works on *ordinal indices*: variable ``i`` at its
``k``-th value is encoded as ``k / (n_i - 1)`` in ``[0, 1]``, so every dimension has the same scale
for the GP kernels whatever the unit of the variable (rows, bits, fraction).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError

Value = int | float


@dataclass(frozen=True)
class Variable:
    """One design variable: a name and its allowed values, in increasing order."""

    name: str
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        # Accept any sequence (lists from YAML) but store an immutable, hashable tuple of Python
        # numbers so designs serialise to JSON unchanged.
        if _is_seq(self.values):
            object.__setattr__(self, "values", tuple(_python_number(v) for v in self.values))


def _is_seq(x: object) -> bool:
    return isinstance(x, Sequence | np.ndarray) and not isinstance(x, str | bytes)


def _python_number(v: object) -> object:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


class DesignSpace:
    """A Cartesian product of ordered discrete variables.

    Designs are plain dicts ``{name: value}``. The space enumerates its points in lexicographic
    order (first variable slowest), the same order as ``itertools.product``.
    """

    def __init__(
        self,
        variables: Sequence[Variable],
        *,
        key: str = "optimize.variables",
        file: str | Path | None = None,
    ) -> None:
        self._key = key
        self._file = file
        self.variables: tuple[Variable, ...] = tuple(variables)
        self._validate()
        self._lookup = [{v: i for i, v in enumerate(var.values)} for var in self.variables]
        self.shape: tuple[int, ...] = tuple(len(var.values) for var in self.variables)
        self.size: int = math.prod(self.shape)

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[str, Sequence[Value]],
        *,
        key: str = "optimize.variables",
        file: str | Path | None = None,
    ) -> DesignSpace:
        """Build from ``{name: [values...]}`` (the YAML form), keeping the mapping's order."""
        if not isinstance(mapping, Mapping):
            raise AccelsimError(
                "must be a mapping of variable name to a list of values", key=key, file=file
            )
        variables = []
        for name, values in mapping.items():
            if not _is_seq(values):
                raise AccelsimError(
                    "must be a list of values",
                    key=f"{key}.{name}",
                    file=file,
                    allowed="[v1, v2, ...]",
                )
            variables.append(Variable(str(name), tuple(values)))
        return cls(variables, key=key, file=file)

    # ----------------------------------------------------------------- validation
    def _error(
        self, message: str, name: str | None = None, allowed: str | None = None
    ) -> AccelsimError:
        key = f"{self._key}.{name}" if name else self._key
        return AccelsimError(message, key=key, file=self._file, allowed=allowed)

    def _validate(self) -> None:
        if not self.variables:
            raise self._error("the design space needs at least one variable")
        seen: set[str] = set()
        for var in self.variables:
            if not isinstance(var, Variable):
                raise self._error(f"expected a Variable, got {type(var).__name__}")
            if not isinstance(var.name, str) or not var.name:
                raise self._error("a variable needs a non-empty name")
            if var.name in seen:
                raise self._error("duplicate variable name", var.name)
            seen.add(var.name)
            if not isinstance(var.values, tuple) or not var.values:
                raise self._error(
                    "needs at least one value", var.name, "a non-empty list of numbers"
                )
            for v in var.values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise self._error(
                        f"value {v!r} is not a finite number", var.name, "int or float"
                    )
            for a, b in itertools.pairwise(var.values):
                if not a < b:
                    raise self._error(
                        f"values must be strictly increasing, but {a!r} is followed by {b!r}",
                        var.name,
                        "sorted, distinct numbers",
                    )

    # ----------------------------------------------------------------- basic facts
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(var.name for var in self.variables)

    @property
    def dimension(self) -> int:
        return len(self.variables)

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DesignSpace) and self.variables == other.variables

    def __hash__(self) -> int:
        return hash(self.variables)

    def __repr__(self) -> str:
        body = ", ".join(f"{v.name}={list(v.values)}" for v in self.variables)
        return f"DesignSpace({body}; {self.size} points)"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (used in log headers to recognise the space a log was written for)."""
        return {"variables": [{"name": v.name, "values": list(v.values)} for v in self.variables]}

    # ----------------------------------------------------------------- conversions
    def index(self, design: Mapping[str, Value]) -> tuple[int, ...]:
        """Ordinal index of each variable's value; AccelsimError if the design is not in the space."""
        if set(design) != set(self.names):
            missing = sorted(set(self.names) - set(design))
            extra = sorted(set(design) - set(self.names))
            raise self._error(
                f"design does not match the space (missing {missing}, unknown {extra})",
                allowed=", ".join(self.names),
            )
        out = []
        for var, lookup in zip(self.variables, self._lookup):
            value = design[var.name]
            if isinstance(value, bool) or value not in lookup:
                raise self._error(
                    f"value {value!r} is not one of the allowed values",
                    var.name,
                    str(list(var.values)),
                )
            out.append(lookup[value])
        return tuple(out)

    def design_at(self, indices: Sequence[int]) -> dict[str, Value]:
        """The design at the given ordinal indices."""
        return {var.name: var.values[int(i)] for var, i in zip(self.variables, indices)}

    def encode(self, design: Mapping[str, Value]) -> np.ndarray:
        """Ordinal indices scaled to ``[0, 1]``, shape ``(dimension,)``: the GP input."""
        return self.encode_indices(np.asarray([self.index(design)]))[0]

    def encode_indices(self, indices: np.ndarray) -> np.ndarray:
        """Scale an ``(n, dimension)`` integer index array to ``[0, 1]`` per column."""
        span = np.maximum(np.asarray(self.shape, dtype=float) - 1.0, 1.0)
        return np.asarray(indices, dtype=float) / span

    def decode_indices(self, x: np.ndarray) -> np.ndarray:
        """Nearest ordinal indices of an ``(n, dimension)`` encoded array."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        span = np.maximum(np.asarray(self.shape, dtype=float) - 1.0, 1.0)
        idx = np.rint(x * span).astype(np.int64)
        return np.clip(idx, 0, np.asarray(self.shape) - 1)

    def decode(self, x: np.ndarray) -> dict[str, Value]:
        """The design nearest to one encoded point (shape ``(dimension,)``)."""
        return self.design_at(self.decode_indices(np.asarray(x).reshape(1, -1))[0])

    # ----------------------------------------------------------------- enumeration and sampling
    def all_indices(self) -> np.ndarray:
        """All points as an ``(size, dimension)`` index array, in enumeration order."""
        grids = np.indices(self.shape).reshape(self.dimension, -1).T
        return np.ascontiguousarray(grids, dtype=np.int64)

    def enumerate(self) -> list[dict[str, Value]]:
        """Every design, in enumeration order (first variable slowest)."""
        return [self.design_at(idx) for idx in self.iter_indices()]

    def iter_indices(self) -> Iterator[tuple[int, ...]]:
        """Ordinal indices of every design, lazily, in enumeration order."""
        return itertools.product(*(range(n) for n in self.shape))

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, Value]]:
        """``n`` distinct designs drawn uniformly without replacement (``n`` clipped to the size)."""
        return [self.design_at(idx) for idx in self.sample_indices(rng, n)]

    def sample_indices(self, rng: np.random.Generator, n: int) -> list[tuple[int, ...]]:
        n = min(int(n), self.size)
        if self.size <= 1_000_000:
            # A full permutation, so the first n draws do not depend on n (a search resumed with
            # a larger budget continues the same sequence).
            flat = rng.permutation(self.size)[:n]
            return [tuple(int(i) for i in np.unravel_index(f, self.shape)) for f in flat]
        chosen: dict[tuple[int, ...], None] = {}
        while len(chosen) < n:  # rejection: collisions are rare in a huge space
            idx = tuple(int(rng.integers(0, k)) for k in self.shape)
            chosen.setdefault(idx, None)
        return list(chosen)

    def latin_hypercube(self, rng: np.random.Generator, n: int) -> list[tuple[int, ...]]:
        """A space-filling set of ``n`` distinct points (Latin hypercube over the ordinal indices).

        Each variable's index range is cut into ``n`` equal strata, one point per stratum, at a
        random offset shared by the strata of that variable (systematic sampling): a variable
        with at least ``n`` values then gets ``n`` distinct values, one with fewer gets each of
        its values equally often (within one). Columns are paired by random permutations.
        Collisions between whole points (possible only when variables have few values) are
        replaced by uniform draws of unused points.
        """
        n = min(int(n), self.size)
        if n <= 0:
            return []
        shape = np.asarray(self.shape)
        columns = []
        for k in shape:
            strata = (np.arange(n) + rng.random()) / n  # one point per stratum of [0, 1)
            columns.append(rng.permutation(np.minimum((strata * k).astype(np.int64), k - 1)))
        points: dict[tuple[int, ...], None] = {}
        for row in np.stack(columns, axis=1):
            points.setdefault(tuple(int(i) for i in row), None)
        while len(points) < n:
            points.setdefault(tuple(int(rng.integers(0, k)) for k in shape), None)
        return list(points)

    # ----------------------------------------------------------------- emukit
    def emukit_space(self):  # -> emukit.core.ParameterSpace (imported lazily: emukit is heavy)
        """The encoded space as an Emukit ``ParameterSpace`` of ``DiscreteParameter``s."""
        from emukit.core import DiscreteParameter, ParameterSpace

        params = []
        for var, n in zip(self.variables, self.shape):
            grid = [i / max(n - 1, 1) for i in range(n)]
            params.append(DiscreteParameter(var.name, grid))
        return ParameterSpace(params)
