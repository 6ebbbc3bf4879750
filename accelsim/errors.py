"""The one error type for problems in what a user handed us (files, keys, values).

The CLI catches :class:`AccelsimError`, prints its single line and exits with status 2.
Internal bugs raise ordinary exceptions and keep their tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class AccelsimError(Exception):
    """A user-input error: names the file, the key path inside it, and what is allowed.

    ``details`` are the items of a list the message introduces (each unsupported op of a
    model, say): one indented line each. Every part is escaped on its own, so nothing a
    user typed can add a line; only ``details`` do.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        key: str | None = None,
        allowed: str | Iterable[object] | None = None,
        details: Iterable[str] = (),
    ) -> None:
        self.message = message
        self.details = tuple(details)
        self.file = str(file) if file is not None else None
        self.key = key
        if allowed is not None and not isinstance(allowed, str):
            allowed = ", ".join(str(a) for a in allowed)
        self.allowed = allowed
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.key) if part)
        text = f"{where}: {self.message}" if where else self.message
        lines = [one_line(text)] + [f"  - {one_line(item)}" for item in self.details]
        if self.allowed:
            lines[-1] += f" (allowed: {one_line(self.allowed)})"
        return "\n".join(lines)


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (a newline as ``\\n``): a key, a file
    name or a value a user typed can never split the one error line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class Infeasible(AccelsimError):
    """A valid design that cannot run this workload (a tile does not fit, ...).

    The CLI reports it like any user error (exit 2, naming the key to change); the optimiser
    catches it and records a violated constraint instead.
    """


def read_user_text(path: str | Path, *, what: str = "file", encoding: str = "utf-8") -> str:
    """The text of a file a user named; a missing or unreadable file is an AccelsimError."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise AccelsimError(f"{what} not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AccelsimError(f"cannot read {what}: {exc}", file=path) from None
