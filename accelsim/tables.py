"""Flat records for pandas and CSV: the one place results become tables.

A result's ``to_records()`` gives plain dicts whose values are str, int, float, bool or
None (one row per layer, injection, fault or evaluated design); ``to_dataframe()`` turns them
into a ``pandas.DataFrame`` (pandas is needed there only) and ``to_csv()`` writes them with
the csv module (:func:`accelsim.results.write_records_csv`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .results import write_records_csv

__all__ = ["dataframe", "flatten", "read_records_csv", "write_records_csv"]


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one flat row: ``{"a": {"b": 1}}`` becomes ``{"a.b": 1}``, a list of
    scalars one space-separated string (a list of dicts is left out: it is a table of its
    own)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            if not any(isinstance(v, Mapping | list | tuple) for v in value):
                flat[name] = " ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def dataframe(records: Sequence[dict[str, Any]], *, what: str) -> Any:
    """``records`` as a ``pandas.DataFrame``; ``what`` names the caller in the error."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            f"{what}.to_dataframe() needs pandas: pip install pandas "
            f"({what}.to_records() gives the same rows as plain dicts, to_csv() a file)"
        ) from None
    return pd.DataFrame.from_records(list(records))


def read_records_csv(path) -> list[dict[str, str]]:
    """A CSV file as rows of strings (for ``report`` and tests; pandas reads it directly)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
