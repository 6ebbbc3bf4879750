"""Resumable, parallel execution of independent, seeded tasks (fault campaigns and sweeps).

``run_tasks(fn, n_tasks, seed=..., log_path=...)`` calls ``fn(task, context)`` once for every
task index and returns the results in task order. Three promises:

* **Determinism.** Task ``i`` draws its randomness from (seed, i) only — a Generator on
  ``SeedSequence(entropy=seed, spawn_key=(i,))`` (``TaskSpec.rng()``), or, for functions that
  compute whole chunks at once (:class:`BatchTaskFn`), the counter-based words
  :func:`task_words` — so results do not depend on the number of workers, the chunking or the
  completion order.
* **Resumability.** Each finished result is appended to ``log_path`` as one JSON line
  ``{"task": i, "result": ...}``; the file is flushed and fsynced after every chunk. A restart
  reads the log, ignores a truncated last line (cut off by a crash), and computes only the
  tasks that are missing — never one that is logged. The first line records the seed and the
  caller's ``run_key``; resuming with another seed or key is an error, while a larger
  ``n_tasks`` extends a finished run (task ``i``'s seed does not depend on ``n_tasks``).
* **One format for fresh and resumed results.** Results pass through JSON in both cases
  (tuples become lists, numpy scalars become numbers), so a resumed run returns exactly what
  an uninterrupted one does.

**Columnar results.** A :class:`BatchTaskFn` given ``rows`` returns a whole chunk as
:class:`ResultColumns` — numpy columns, table by table (one row per task, and e.g. one row
per fault) — instead of a value per task. Its log (format :data:`COLUMNS_FORMAT`) is the
same JSON header line followed by one binary block per chunk, fsynced per chunk:
``length (8 bytes, little-endian) | CRC-32 of the payload (4 bytes) | payload``, the payload a
sequence of ``.npy`` arrays (the column names ``table/column``, a unicode array; each column's
group, int64; then per table and dtype one 2-D array of those columns, in order), read back
with ``np.load(..., allow_pickle=False)`` — never unpickled. A truncated last block (or
a last block whose CRC fails: a crash mid-append) is ignored and overwritten, exactly like a
torn JSON line; a damaged block before the last is an error. ``run_tasks`` then returns the
columns of every finished task in task order (a resumed run's are bit for bit a fresh
one's: ``.npy`` round-trips every numeric dtype exactly), and ``on_chunk`` sees each chunk's
columns — O(1) Python work per chunk, not per task.

Parallelism is behind the :class:`Executor` seam: anything with ``submit(chunk) -> Future``,
``max_pending`` and ``shutdown()``. :class:`LocalExecutor` runs on
:func:`accelsim.workers.worker_pool` (in-process for one worker, else worker processes that
receive the heavy shared ``context`` once each); :class:`faults.dask_executor.DaskExecutor`
runs on a Dask cluster. ``fn`` must be a module-level function (picklable by reference) and
should return JSON-serialisable data.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.jsonio import json_default
from accelsim.runs import OTHER_SETTINGS_HINT
from accelsim.workers import AUTO, usable_cores, worker_pool

LOG_FORMAT = "accelsim-tasks/1"
COLUMNS_FORMAT = "accelsim-columns/1"  # a log of ResultColumns blocks (the module's docstring)


@dataclass(frozen=True)
class TaskSpec:
    """One task: its index and the run's seed; ``rng()`` is its private random stream."""

    index: int
    seed: int

    @property
    def seed_sequence(self) -> np.random.SeedSequence:
        return task_seed_sequence(self.seed, self.index)

    def rng(self) -> np.random.Generator:
        """A fresh Generator for this task (same seed and index: same stream, anywhere)."""
        return np.random.default_rng(self.seed_sequence)


def task_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """Seed of task ``index``: child ``index`` of ``SeedSequence(seed)``, built directly."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and task index must be >= 0, got seed={seed}, index={index}")
    return np.random.SeedSequence(entropy=seed, spawn_key=(index,))


_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's Weyl increment


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood, OOPSLA 2014), elementwise, uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def task_words(seed: int, tasks: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Random 64-bit words of a counter-based stream: word ``slots[j]`` of task ``tasks[j]``.

    A pure function of (seed, task, slot), computed for many tasks at once without a
    Generator per task (which costs ~30 us): the batched campaign draws with it, and a task's
    words do not depend on which other tasks share its batch or worker. Each task gets its
    own SplitMix64 stream, keyed by hashing (seed, task).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        key = _splitmix64(np.uint64(seed & (2**64 - 1)) + _GOLDEN_GAMMA)
        tasks = np.asarray(tasks, dtype=np.uint64)
        slots = np.asarray(slots, dtype=np.uint64)
        stream = _splitmix64(key ^ _splitmix64((tasks + np.uint64(1)) * _GOLDEN_GAMMA))
        return _splitmix64(stream + (slots + np.uint64(1)) * _GOLDEN_GAMMA)


def words_below(words: np.ndarray, bound: np.ndarray | int) -> np.ndarray:
    """Integers in ``[0, bound)`` from random words (bias below ``bound / 2**64``)."""
    return (np.asarray(words, dtype=np.uint64) % np.asarray(bound, dtype=np.uint64)).astype(
        np.int64
    )


def words_uniform(words: np.ndarray) -> np.ndarray:
    """Floats uniform in ``[0, 1)`` from random words (53 bits each)."""
    return (np.asarray(words, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53


TaskFn = Callable[[TaskSpec, Any], Any]
TASKS = "tasks"  # the table of :class:`ResultColumns` with one row per task


class ResultColumns:
    """Results of many tasks as numpy columns: ``tables[name][column]``, 1-D arrays.

    Table :data:`TASKS` has one row per task, its column ``task`` the task index; any other
    table (e.g. one row per fault) also has a ``task`` column naming the task each row belongs
    to, its rows grouped by task in the task table's order. Equality is column by column (names,
    order and dtypes included: bit for bit)."""

    __slots__ = ("tables",)

    def __init__(self, tables: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        if TASKS not in tables or "task" not in tables[TASKS]:
            raise ValueError(f"ResultColumns need a {TASKS!r} table with a 'task' column")
        self.tables = {t: dict(columns) for t, columns in tables.items()}

    @property
    def tasks(self) -> np.ndarray:
        return self.tables[TASKS]["task"]

    def __len__(self) -> int:
        return len(self.tasks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultColumns):
            return NotImplemented
        return list(self.tables) == list(other.tables) and all(
            list(mine) == list(theirs)
            and all(
                mine[c].dtype == theirs[c].dtype and np.array_equal(mine[c], theirs[c])
                for c in mine
            )
            for mine, theirs in zip(self.tables.values(), other.tables.values(), strict=True)
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{t}: {len(c['task'])} rows" for t, c in self.tables.items())
        return f"ResultColumns({sizes})"

    def select(self, keep_task: np.ndarray) -> ResultColumns:
        """The rows of the tasks where ``keep_task`` (one bool per task row) holds."""
        kept = self.tasks[keep_task]
        return ResultColumns(
            {
                t: _take(c, keep_task if t == TASKS else np.isin(c["task"], kept))
                for t, c in self.tables.items()
            }
        )

    @classmethod
    def concatenate(cls, parts: Sequence[ResultColumns]) -> ResultColumns:
        """``parts`` (tasks disjoint) as one, sorted by task; rows of a task keep their order."""
        first = parts[0]
        tables = {}
        for t, columns in first.tables.items():
            joined = {name: np.concatenate([p.tables[t][name] for p in parts]) for name in columns}
            task = joined["task"]
            if len(task) > 1 and np.any(task[1:] < task[:-1]):  # chunks finished out of order
                joined = _take(joined, np.argsort(task, kind="stable"))
            tables[t] = joined
        return cls(tables)

    def to_bytes(self) -> bytes:
        """The payload of a log block, as ``.npy`` arrays: the column names (``table/column``,
        in order), the group of each (int64), then each group — the columns of one table and
        dtype, in order — as one 2-D array (a few arrays per block, not one per column: each
        costs a header)."""
        names, group_of, groups = [], [], []
        for t, columns in self.tables.items():
            by_dtype: dict[np.dtype, list[np.ndarray]] = {}
            for c, column in columns.items():
                members = by_dtype.setdefault(column.dtype, [])
                if not members:
                    groups.append(members)
                members.append(column)
                names.append(f"{t}/{c}")
                group_of.append(next(i for i, g in enumerate(groups) if g is members))
        buffer = io.BytesIO()
        np.save(buffer, np.array(names, dtype=str), allow_pickle=False)
        np.save(buffer, np.array(group_of, dtype=np.int64), allow_pickle=False)
        for members in groups:
            np.save(buffer, np.stack(members), allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ResultColumns:
        buffer = io.BytesIO(payload)
        names = np.load(buffer, allow_pickle=False).tolist()
        group_of = np.load(buffer, allow_pickle=False).tolist()
        if len(group_of) != len(names):
            raise ValueError("a group for every column name")
        sizes = np.bincount(group_of).tolist() if group_of else []
        groups = [np.load(buffer, allow_pickle=False) for _ in sizes]
        if any(g.ndim != 2 or len(g) != size for g, size in zip(groups, sizes, strict=True)):
            raise ValueError("column groups that do not match the names")
        if buffer.tell() != len(payload):
            raise ValueError("bytes after the last column")
        taken = [0] * len(groups)
        tables: dict[str, dict[str, np.ndarray]] = {}
        for name, group in zip(names, group_of, strict=True):
            table, column = name.split("/", 1)
            tables.setdefault(table, {})[column] = groups[group][taken[group]]
            taken[group] += 1
        return cls(tables)


# a chunk's results: (task index, result as JSON text) pairs, or a columnar function's columns
ChunkResult = list[tuple[int, str]] | ResultColumns


def _take(columns: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: column[rows] for name, column in columns.items()}


@dataclass(frozen=True)
class BatchTaskFn:
    """A task function that computes a whole chunk in one call: ``fn(tasks, context)``
    returns the results of ``tasks`` in order. Calling it with one task also works, so it
    can stand wherever a :data:`TaskFn` does; the runner hands it whole chunks.

    ``rows``: given, ``fn`` is *columnar*: it returns one :class:`ResultColumns` for the
    chunk, logged as a binary block, and ``rows(columns, context)`` turns them into the per-task
    values a caller of one task gets (JSON-native, as the generic path's). ``chunk``: the
    most tasks per chunk the runner hands it (a number, or a function of the context; 256 if
    None), where its batches stop paying or its memory says so."""

    fn: Callable[[Sequence[TaskSpec], Any], Any]
    rows: Callable[[ResultColumns, Any], list[Any]] | None = None
    chunk: int | Callable[[Any], int] | None = None  # preferred tasks per chunk (at most)

    def __post_init__(self) -> None:  # named like the wrapped function (logs, Dask keys)
        object.__setattr__(self, "__module__", self.fn.__module__)
        object.__setattr__(self, "__qualname__", self.fn.__qualname__)

    @property
    def columnar(self) -> bool:
        return self.rows is not None

    def __call__(self, task: TaskSpec, context: Any) -> Any:
        result = self.fn([task], context)
        return self.rows(result, context)[0] if self.rows is not None else result[0]


def _is_columnar(fn: TaskFn) -> bool:
    return isinstance(fn, BatchTaskFn) and fn.columnar


class TaskSpecs(Sequence):
    """The tasks of one chunk, as a batch function receives them: a sequence of
    :class:`TaskSpec` built on access, with their ``indices`` as one array (a batch function
    that draws for the whole chunk at once needs no TaskSpec per task)."""

    def __init__(self, indices: Sequence[int], seed: int) -> None:
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return TaskSpecs(self.indices[item], self.seed)
        return TaskSpec(int(self.indices[item]), self.seed)


def task_indices(tasks: Sequence[TaskSpec]) -> np.ndarray:
    """The indices of ``tasks`` as an int64 array (without a loop for :class:`TaskSpecs`)."""
    if isinstance(tasks, TaskSpecs):
        return tasks.indices
    return np.array([t.index for t in tasks], dtype=np.int64)


def _run_chunk_with(fn: TaskFn, context: Any, seed: int, chunk: Sequence[int]) -> ChunkResult:
    if _is_columnar(fn):
        tasks = TaskSpecs(chunk, seed)
        columns = fn.fn(tasks, context)
        if not np.array_equal(columns.tasks, tasks.indices):
            raise ValueError(f"{fn.__qualname__} returned other tasks than it was given")
        return columns
    tasks = [TaskSpec(index, seed) for index in chunk]
    if isinstance(fn, BatchTaskFn):
        results = fn.fn(tasks, context)
    else:
        results = [fn(task, context) for task in tasks]
    return [
        (task.index, json.dumps(result, default=json_default))
        for task, result in zip(tasks, results, strict=True)
    ]


# ---- executors ---------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs chunks of task indices; the runner keeps ``max_pending`` chunks in flight."""

    max_pending: int

    def submit(self, chunk: Sequence[int]) -> Future[ChunkResult]:
        """Start computing ``chunk``; the future yields ``[(index, result JSON text), ...]``."""
        ...

    def shutdown(self, *, cancel_pending: bool = False) -> None: ...


def _run_chunk_of(job: tuple[TaskFn, Any, int], chunk: Sequence[int]) -> ChunkResult:
    fn, context, seed = job
    return _run_chunk_with(fn, context, seed, chunk)


class LocalExecutor:
    """Chunks on this machine's :func:`accelsim.workers.worker_pool`: in this process for one
    worker (one chunk in flight, computed at submission), else on worker processes that each
    receive ``(fn, context, seed)`` once (spawn start method by default)."""

    def __init__(
        self,
        fn: TaskFn,
        *,
        seed: int,
        workers: int = 1,
        context: Any = None,
        start_method: str = "spawn",
    ) -> None:
        self._workers = worker_pool(workers, (fn, context, seed), start_method=start_method)
        # two chunks per worker keep every worker busy while results are logged
        self.max_pending = 1 if workers == 1 else 2 * workers

    def submit(self, chunk: Sequence[int]) -> Future[ChunkResult]:
        return self._workers.submit(_run_chunk_of, tuple(chunk))

    def shutdown(self, *, cancel_pending: bool = False) -> None:
        self._workers.shutdown(cancel_pending=cancel_pending)


# ---- the log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogState:
    """What a task log holds: its header, the results by task index (JSON logs) or their
    columns (columnar logs, :data:`COLUMNS_FORMAT`), and the valid byte length."""

    header: dict[str, Any] | None
    results: dict[int, Any]
    valid_bytes: int
    columns: ResultColumns | None = None
    logged: tuple[int, ...] = ()  # every task index as logged, in log order (repeats kept)

    @property
    def tasks(self) -> set[int]:
        """The logged task indices."""
        if self.columns is not None:
            return set(self.columns.tasks.tolist())
        return set(self.results)


BLOCK_PREFIX = 12  # bytes before a block's payload: its length (8) and CRC-32 (4)


def read_task_log(path: str | Path) -> LogState:
    """Read a task log; a last line without its newline (a crash mid-write) is ignored, and
    so is a columnar log's truncated or torn last block.

    A damaged line (or block) anywhere else is an :class:`AccelsimError` naming it.
    """
    path = Path(path)
    if not path.exists():
        return LogState(None, {}, 0)
    data = path.read_bytes()
    header: dict[str, Any] | None = None
    results: dict[int, Any] = {}
    logged: list[int] = []
    position = 0
    line_number = 0
    while position < len(data):
        end = data.find(b"\n", position)
        if end < 0:
            break  # truncated last line: never completed, so never counted
        line_number += 1
        text = data[position:end]
        position = end + 1
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AccelsimError(
                "damaged line in a task log (remove the file to start over)",
                file=path,
                key=f"line {line_number}",
            ) from None
        if not isinstance(record, dict):
            raise AccelsimError("not a task record", file=path, key=f"line {line_number}")
        if "header" in record:
            header = record["header"]
            if isinstance(header, dict) and header.get("format") == COLUMNS_FORMAT:
                return _read_blocks(path, data, position, header)
            continue
        index = record.get("task")
        if not isinstance(index, int) or index < 0 or "result" not in record:
            raise AccelsimError("not a task record", file=path, key=f"line {line_number}")
        results.setdefault(index, record["result"])  # first record wins
        logged.append(index)
    if results and header is None:
        raise AccelsimError("task records without a header: not a task log", file=path)
    return LogState(header, results, position, logged=tuple(logged))


def _read_blocks(path: Path, data: bytes, position: int, header: dict[str, Any]) -> LogState:
    """The binary blocks after a columnar log's header line (format: the module docstring)."""
    parts: list[ResultColumns] = []
    block = 0
    while position + BLOCK_PREFIX <= len(data):
        length = int.from_bytes(data[position : position + 8], "little")
        crc = int.from_bytes(data[position + 8 : position + BLOCK_PREFIX], "little")
        end = position + BLOCK_PREFIX + length
        if end > len(data):
            break  # truncated last block: never completed, so never counted
        payload = data[position + BLOCK_PREFIX : end]
        block += 1
        try:
            if zlib.crc32(payload) != crc:
                raise ValueError("CRC mismatch")
            parts.append(ResultColumns.from_bytes(payload))
        except (ValueError, OSError, EOFError):
            if end == len(data):
                break  # a torn last block (e.g. zeros after a crash): recomputed
            raise AccelsimError(
                "damaged block in a task log (remove the file to start over)",
                file=path,
                key=f"block {block}",
            ) from None
        position = end
    columns = _first_record_wins(parts) if parts else None
    logged = tuple(i for part in parts for i in part.tasks.tolist())
    return LogState(header, {}, position, columns, logged)


def _first_record_wins(parts: list[ResultColumns]) -> ResultColumns:
    """``parts`` as one, sorted by task; a task logged twice keeps its first block's rows."""
    seen: set[int] = set()
    kept = []
    for part in parts:
        tasks = part.tasks.tolist()
        if seen.isdisjoint(tasks):
            kept.append(part)
        else:
            kept.append(part.select(np.array([t not in seen for t in tasks], dtype=bool)))
        seen.update(tasks)
    return ResultColumns.concatenate(kept)


def _check_header(header: dict[str, Any] | None, expected: dict[str, Any], path: Path) -> None:
    if header is None:
        return
    for key in ("format", "seed", "run_key"):
        if header.get(key) != expected[key]:
            raise AccelsimError(
                f"the log was written with {key}={header.get(key)!r}, this run has "
                f"{expected[key]!r}; {OTHER_SETTINGS_HINT}",
                file=path,
                key=key,
            )


# ---- the runner --------------------------------------------------------------------------------


# What starting a process pool costs before the first result (spawn, imports, Numba cache
# loads, the shared context pickled to each worker): ~4-5 s for the digits CNN's campaign on
# the 2-core development machine (``python -m bench.workers_speed``: 2,000 injections serial
# 0.10 s, 2 workers 4.10 s; 100,000: 4.72 s vs 7.40 s). ``workers="auto"`` starts the pool
# only when the rest would take, serially, more than this cost times W/(W-1) — when W
# workers would finish sooner.
POOL_START_SECONDS = 4.0
PROBE_SECONDS = 0.25  # serial work measured before deciding


def _auto_workers(seconds_per_task: float, remaining: int, cores: int) -> int:
    """Workers for the ``remaining`` tasks: 1 (this process) unless ``cores`` processes,
    started now, finish sooner."""
    if cores < 2 or remaining < 2 * cores:
        return 1
    serial = seconds_per_task * remaining
    return cores if serial > POOL_START_SECONDS * cores / (cores - 1) else 1


def _auto_chunk(remaining: int, workers: int, preferred: int) -> int:
    # several chunks per worker balance the load (one worker has nothing to balance: each
    # chunk costs an fsync); a crash loses at most one chunk (64 tasks, or what a batched
    # function prefers: its batches gain from size, :func:`_preferred_chunk`)
    if workers == 1:
        return max(1, min(preferred, remaining))
    return max(1, min(preferred, math.ceil(remaining / (4 * workers))))


def chunk_for(fn: TaskFn, context: Any, remaining: int, workers: int = 1) -> int:
    """Tasks per chunk when ``chunk`` is not given: what ``fn`` prefers
    (:func:`_preferred_chunk`), fewer so that each worker gets several chunks."""
    return _auto_chunk(remaining, workers, _preferred_chunk(fn, context))


def _preferred_chunk(fn: TaskFn, context: Any) -> int:
    """Tasks per chunk at most: 64 for a per-task function, 256 for a batched one, or the
    batched function's own ``chunk`` (a number, or a function of the context)."""
    if not isinstance(fn, BatchTaskFn):
        return 64
    if fn.chunk is None:
        return 256
    return int(fn.chunk(context) if callable(fn.chunk) else fn.chunk)


def run_tasks(
    fn: TaskFn,
    n_tasks: int,
    *,
    seed: int,
    log_path: str | Path,
    workers: int | str = 1,
    chunk: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    on_chunk: Callable[[ResultColumns], None] | None = None,
    context: Any = None,
    run_key: Any = None,
    max_new: int | None = None,
    executor: Executor | None = None,
) -> list[Any] | ResultColumns:
    """Run ``fn(TaskSpec(i, seed), context)`` for ``i`` in ``range(n_tasks)``, resumably.

    ``log_path``: the log (created, or resumed if it exists). ``workers``: 1 runs
    serially in this process, more use worker processes (:class:`LocalExecutor`), ``"auto"``
    runs the first chunks here and starts a process per usable core only when the rest would
    finish sooner that way (:func:`_auto_workers`); ``executor`` overrides them all (e.g. a
    Dask-backed one). ``chunk``: tasks per submission and per fsync (auto if None).
    ``on_result(i, result)``: called for every task as its result becomes available — first
    the logged ones in task order, then new ones as they finish (drive a progress bar with it).
    ``on_chunk(columns)`` (columnar functions only): the same, a chunk at a time — the logged
    tasks first, as one. ``context``: shared read-only data for ``fn`` (sent once per worker).
    ``run_key``: any JSON data identifying the run (e.g. a config hash); a log written under
    another key or seed is refused. ``max_new``: compute at most this many new tasks, then
    return (for budgets and tests).

    Returns the results in task order, each as read back from JSON, unfinished tasks None;
    for a columnar ``fn`` (:class:`BatchTaskFn` with ``rows``), the :class:`ResultColumns` of
    the finished tasks, sorted by task.
    """
    if n_tasks < 0:
        raise ValueError(f"n_tasks must be >= 0, got {n_tasks}")
    task_seed_sequence(seed, 0)  # validates the seed before any work
    columnar = _is_columnar(fn)
    if on_chunk is not None and not columnar:
        raise ValueError("on_chunk needs a columnar task function (BatchTaskFn with rows)")
    log_path = Path(log_path)
    run_key = json.loads(json.dumps(run_key, default=json_default))
    log_format = COLUMNS_FORMAT if columnar else LOG_FORMAT
    expected_header = {"format": log_format, "seed": seed, "run_key": run_key}
    state = read_task_log(log_path)
    _check_header(state.header, expected_header, log_path)

    sink = _ColumnSink(fn, on_result, on_chunk) if columnar else _JsonSink(n_tasks, on_result)
    sink.context = context
    sink.resume(state, n_tasks)
    logged = state.tasks
    pending = [i for i in range(n_tasks) if i not in logged]
    if max_new is not None:
        pending = pending[: max(0, max_new)]
    if pending:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.truncate(state.valid_bytes)  # drop a torn last line before appending after it
            if state.header is None:  # made durable with the first chunk (a torn header
                # line is a torn last line: dropped and written again)
                log.write((json.dumps({"header": expected_header}) + "\n").encode())
            sink.log = log
            _drive(fn, pending, seed, sink, context, workers, chunk, executor)
    return sink.results(context)


class _JsonSink:
    """Where the generic path's chunks go: the JSON-lines log, then the results list."""

    def __init__(self, n_tasks: int, on_result: Callable[[int, Any], None] | None) -> None:
        self._results: list[Any] = [None] * n_tasks
        self._on_result = on_result
        self.log: Any = None

    def resume(self, state: LogState, n_tasks: int) -> None:
        for index in sorted(i for i in state.results if i < n_tasks):
            self._results[index] = state.results[index]
            if self._on_result is not None:
                self._on_result(index, self._results[index])

    def record(self, pairs: ChunkResult) -> None:
        lines = "".join(f'{{"task": {index}, "result": {text}}}\n' for index, text in pairs)
        self.log.write(lines.encode())
        self.log.flush()
        os.fsync(self.log.fileno())  # a chunk is durable before anyone is told it is done
        for index, text in pairs:
            self._results[index] = json.loads(text)
            if self._on_result is not None:
                self._on_result(index, self._results[index])

    def results(self, context: Any) -> list[Any]:
        return self._results


class _ColumnSink:
    """Where a columnar function's chunks go: one binary block each, then the parts."""

    def __init__(
        self,
        fn: BatchTaskFn,
        on_result: Callable[[int, Any], None] | None,
        on_chunk: Callable[[ResultColumns], None] | None,
    ) -> None:
        self._fn = fn
        self._on_result = on_result
        self._on_chunk = on_chunk
        self._parts: list[ResultColumns] = []
        self.log: Any = None

    context: Any = None

    def resume(self, state: LogState, n_tasks: int) -> None:
        if state.columns is not None:
            self._tell(state.columns.select(state.columns.tasks < n_tasks))

    def record(self, columns: ChunkResult) -> None:
        payload = columns.to_bytes()
        prefix = len(payload).to_bytes(8, "little") + zlib.crc32(payload).to_bytes(4, "little")
        self.log.write(prefix + payload)
        self.log.flush()
        os.fsync(self.log.fileno())  # a chunk is durable before anyone is told it is done
        self._tell(columns)

    def _tell(self, columns: ResultColumns) -> None:
        if not len(columns):
            return
        self._parts.append(columns)
        if self._on_chunk is not None:
            self._on_chunk(columns)
        if self._on_result is not None:
            rows = self._fn.rows(columns, self.context)
            for index, row in zip(columns.tasks.tolist(), rows, strict=True):
                self._on_result(index, row)

    def results(self, context: Any) -> ResultColumns:
        if not self._parts:
            return self._fn.fn([], context)  # no task: the function's empty columns
        return ResultColumns.concatenate(self._parts)


def _drive(
    fn: TaskFn,
    pending: list[int],
    seed: int,
    sink: _JsonSink | _ColumnSink,
    context: Any,
    workers: int | str,
    chunk: int | None,
    executor: Executor | None,
) -> None:
    """Submit chunks of ``pending``, log each as it completes (``sink.record``)."""
    if workers == AUTO and executor is None:
        pending = _probe_serially(fn, pending, seed, sink, context, chunk)
        if not pending:
            return
        seconds_per_task = pending.seconds_per_task
        workers = _auto_workers(seconds_per_task, len(pending), usable_cores())
    elif workers == AUTO:
        workers = 1  # the executor given decides the parallelism
    size = chunk or chunk_for(fn, context, len(pending), workers)
    if size < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    chunks = deque(pending[i : i + size] for i in range(0, len(pending), size))
    own_executor = executor is None
    if executor is None:
        executor = LocalExecutor(fn, seed=seed, workers=workers, context=context)
    in_flight: set[Future[ChunkResult]] = set()
    finished = False
    try:
        while chunks or in_flight:
            while chunks and len(in_flight) < executor.max_pending:
                in_flight.add(executor.submit(chunks.popleft()))
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                sink.record(future.result())
        finished = True
    finally:
        if own_executor:
            executor.shutdown(cancel_pending=not finished)


class _Remaining(list):
    """Task indices still to run, and what one took in this process."""

    seconds_per_task: float = 0.0


def _probe_serially(
    fn: TaskFn,
    pending: list[int],
    seed: int,
    sink: _JsonSink | _ColumnSink,
    context: Any,
    chunk: int | None,
) -> _Remaining:
    """Run chunks in this process for :data:`PROBE_SECONDS`, at least one (the same results
    as on any executor), and measure the time per task."""
    size = chunk or chunk_for(fn, context, len(pending))
    done, elapsed = 0, 0.0
    while done < len(pending) and (done == 0 or elapsed < PROBE_SECONDS):
        part = pending[done : done + size]
        start = time.perf_counter()
        sink.record(_run_chunk_with(fn, context, seed, part))
        elapsed += time.perf_counter() - start
        done += len(part)
    remaining = _Remaining(pending[done:])
    remaining.seconds_per_task = elapsed / max(done, 1)
    return remaining
