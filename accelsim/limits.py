"""Resource limits: sizes that cannot fit the machine are refused before anything is allocated.

Each guard compares a size computed from the settings alone (bytes a batch of activations
needs, faults a rate implies per inference, designs a range enumerates, injections a
campaign keeps) with a limit, and refuses with one line naming the key, the size and the
limit. The limits are settings (``limits:`` in the workload YAML) for users with bigger
machines; the memory default is half of this machine's physical memory.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from .errors import AccelsimError


def physical_memory_bytes() -> int:
    """This machine's physical memory (8 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    memory_bytes: int | None = Field(
        None, gt=0, description="most bytes one run may plan to hold (default: half of RAM)"
    )
    faults_per_inference: float = Field(
        10_000.0, gt=0, description="most faults a rate may imply per inference"
    )
    injections: int = Field(10_000_000, gt=0, description="most injections of one campaign")
    designs: int = Field(100_000_000, gt=0, description="most designs of an optimisation space")


def memory_limit(limits: Limits) -> int:
    """``limits.memory_bytes``, or half of this machine's physical memory."""
    return limits.memory_bytes or physical_memory_bytes() // 2


def refuse_over(
    size: float, limits: Limits, limit: str, *, key: str, what: str, unit: str = ""
) -> None:
    """One line naming ``key`` when ``size`` (computed from settings) exceeds
    ``limits.<limit>``."""
    bound = memory_limit(limits) if limit == "memory_bytes" else getattr(limits, limit)
    if size > bound:
        raise AccelsimError(
            f"{what}: {_human(size, unit)} is over the limit of {_human(bound, unit)}",
            key=key,
            allowed=f"a smaller value, or raise limits.{limit}",
        )


def _human(value: float, unit: str) -> str:
    if unit == "B":
        for prefix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= scale:
                return f"{value / scale:.3g} {prefix}"
        return f"{value:.0f} B"
    return f"{value:,.0f}" if value >= 1 else f"{value:.3g}"
