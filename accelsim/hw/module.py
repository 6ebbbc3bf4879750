"""SystemC-style modules on SimPy: named boxes with children, processes and a tracer.

A module's process methods are SimPy generators that read like the hardware's behaviour.
Events are transactions (a tile transfer, a fold), never a MAC or a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


class Module:
    """A named hardware block inside a hierarchy (``top.controller.dma``)."""

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
        if parent is not None:
            parent.children.append(self)
            self.env = parent.env
            self.tracer = parent.tracer
        else:
            assert env is not None, "the top module needs an environment"
            self.env = env
            self.tracer = tracer or Tracer()

    @property
    def path(self) -> str:
        return self.name if self.parent is None else f"{self.parent.path}.{self.name}"

    def trace(self, what: str, start: float, **args: object) -> None:
        """Record that this module was busy with ``what`` from ``start`` until now."""
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, self.env.now, **args)
