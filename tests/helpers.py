"""Small picklable helpers shared by tests that run tasks in other processes."""

from __future__ import annotations


class CountingContext:
    """Shared task context that counts how often the current process unpickled it."""

    loads = 0

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __getstate__(self) -> dict:
        return {"offset": self.offset}

    def __setstate__(self, state: dict) -> None:
        self.offset = state["offset"]
        CountingContext.loads += 1
