"""SystemC-style modules on SimPy: named boxes with children, processes, channels, statistics.

A module's process methods are SimPy generators that read like the hardware's behaviour;
they are started once, when the module is elaborated (``SC_THREAD``), and take their work
from channels (SimPy ``Store``s) bound in the top module's ``__init__``. Events are
transactions (a tile transfer, a run of folds), never a MAC or a cycle. Each module owns and
registers its statistics; the top module reports them per module path
(``accelerator.dram``: ``read_bytes`` ...), the units in the names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import simpy


@dataclass
class Tracer:
    """Collects module activity intervals for a Chrome trace (one unit = one cycle)."""

    enabled: bool = False
    events: list[dict] = field(default_factory=list)

    def span(self, module: str, name: str, start: float, end: float, **args: object) -> None:
        if self.enabled and end > start:
            self.events.append(
                {"module": module, "name": name, "start": start, "end": end, "args": args}
            )


@dataclass
class Statistic:
    """One figure a module accumulates while it runs (``value`` in the unit of its name)."""

    name: str
    description: str
    value: int | float = 0


class Module:
    """A named hardware block inside a hierarchy (``accelerator.controller``)."""

    def __init__(
        self,
        name: str,
        parent: Module | None = None,
        *,
        env: simpy.Environment | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.name = name
        self.parent = parent
        self.children: list[Module] = []
        self.statistics: dict[str, Statistic] = {}
        if parent is not None:
            parent.children.append(self)
            self.env = parent.env
            self.tracer = parent.tracer
        else:
            assert env is not None, "the top module needs an environment"
            self.env = env
            self.tracer = tracer or Tracer()

    @cached_property
    def path(self) -> str:  # name and parent are fixed at elaboration
        return self.name if self.parent is None else f"{self.parent.path}.{self.name}"

    def statistic(self, name: str, description: str, *, initial: int | float = 0) -> Statistic:
        """Register a statistic of this module (its unit is the last word of ``name``)."""
        assert name not in self.statistics, f"{self.path}.{name} registered twice"
        stat = self.statistics[name] = Statistic(name, description, initial)
        return stat

    def process(self, generator) -> simpy.Process:
        """Start one of this module's processes (at elaboration: it runs for the whole
        simulation, taking its work from a channel)."""
        return self.env.process(generator)

    def channel(self) -> simpy.Store:
        """An unbounded FIFO channel in this module's environment."""
        return simpy.Store(self.env)

    def walk(self) -> Iterator[Module]:
        """This module and all below it, depth first in elaboration order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def statistics_by_path(self) -> dict[str, dict[str, int | float]]:
        """Every module's statistics below (and including) this one, keyed by module path."""
        return {
            module.path: {s.name: s.value for s in module.statistics.values()}
            for module in self.walk()
            if module.statistics
        }

    def snapshot(self) -> dict[tuple[str, str], int | float]:
        """Every statistic's current value, keyed by (module path, name)."""
        return {
            (module.path, s.name): s.value
            for module in self.walk()
            for s in module.statistics.values()
        }

    def trace(self, what: str, start: float, **args: object) -> None:
        """Record that this module was busy with ``what`` from ``start`` until now."""
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, self.env.now, **args)
