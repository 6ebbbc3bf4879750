"""One folder per run: where a command writes, ``latest``, resuming, and ``run.json``.

Without ``--out`` every command that writes gets a fresh folder
``out/<name>/<command>-<UTC time>-<6 hex digits>`` (e.g.
``out/digits_cnn/inject-20261202T101500Z-3fa9c1``), so a run never meets the log of another
one, and ``out/<name>/latest`` points at the newest (a symlink, replaced atomically; a text
file holding the folder's name where the file system refuses symlinks). Resuming is explicit:
``--resume DIR`` (or ``--resume latest``) continues the run in that folder, and ``--out DIR``
names a folder of the user's own, resumed when its log was written with the same settings.

Every run folder holds ``run.json`` (:class:`RunMetadata`): what ran, on which workload with
which settings and seed, under which versions, when; a resumed run adds its start time to
``resumed_at``. Only the standard library is used here: the application layer imports this
module for every command.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import AccelsimError
from .jsonio import write_json_atomic

RUN_METADATA_NAME = "run.json"
RUN_SCHEMA_VERSION = 1
LATEST_NAME = "latest"
# what a user whose folder holds a log of other settings can do (never a dead end)
OTHER_SETTINGS_HINT = (
    "run without --out/--resume for a new run folder, --out NEW for a folder of your own, "
    "or --resume the folder of a run with these settings"
)
# the versions that decide what a run computes
VERSIONED_PACKAGES = ("accelsim", "numpy", "numba", "simpy", "scipy", "pydantic")


@dataclass(frozen=True)
class RunMetadata:
    """``run.json``: one run of a command. ``settings`` is the whole workload config after
    ``--set`` overrides; ``seed`` the seed of the run's random choices (``faults.seed``, or
    the command's ``--seed``); ``started_at`` and ``resumed_at`` are UTC, ISO 8601.
    ``other_commands``: later runs of other commands in the same ``--out`` folder (command,
    argv, started_at)."""

    command: str
    workload: str
    workload_file: str | None
    argv: list[str]
    seed: int | None
    settings: dict[str, Any]
    versions: dict[str, str]
    started_at: str
    resumed_at: list[str] = field(default_factory=list)
    other_commands: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}  # the version first


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_folder(root: Path, command: str, *, now: datetime | None = None) -> Path:
    """A folder name no other run has: ``<command>-<UTC time>-<6 hex>`` under ``root``
    (created here, so two runs started in the same second still get their own)."""
    stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    while True:
        folder = root / f"{command}-{stamp}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def point_latest(root: Path, folder: Path) -> None:
    """Make ``root/latest`` name ``folder`` in one rename: a symlink, else a text file."""
    link = root / LATEST_NAME
    temp = root / f".{LATEST_NAME}.{secrets.token_hex(4)}"
    try:
        os.symlink(folder.name, temp)
    except OSError:  # no symlinks here (some network and Windows file systems)
        temp.write_text(folder.name + "\n", encoding="utf-8")
    try:
        os.replace(temp, link)
    except OSError:
        temp.unlink(missing_ok=True)
        raise


def latest_target(root: Path) -> Path | None:
    """The folder ``root/latest`` names, or None when there is no ``latest``."""
    link = root / LATEST_NAME
    if link.is_symlink():
        return root / os.readlink(link)
    if link.is_file():
        return root / link.read_text(encoding="utf-8").strip()
    return None


def latest_run_of(root: Path, command: str) -> Path | None:
    """The newest folder of a ``command`` run under ``root`` (names sort by UTC time)."""
    if not root.is_dir():
        return None
    runs = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(f"{command}-"))
    return root / runs[-1] if runs else None


def resume_folder(resume: str, root: Path, command: str) -> Path:
    """The folder ``--resume`` names, which must hold a run of ``command``. ``latest``: the
    folder ``root/latest`` names when it holds a run of ``command``, else the newest run of
    ``command`` (so ``inject --resume latest`` after a ``run`` finds the last campaign)."""
    if resume == LATEST_NAME:
        folder = latest_target(root)
        if folder is None or not folder.name.startswith(f"{command}-"):
            folder = latest_run_of(root, command) or folder
        if folder is None:
            raise AccelsimError(
                "there is no latest run to resume",
                file=root,
                key="--resume",
                allowed="a run folder (--resume DIR), or no --resume for a new run",
            )
    else:
        folder = Path(resume)
        if folder.name == LATEST_NAME and (folder.is_symlink() or folder.is_file()):
            folder = latest_target(folder.parent) or folder
    metadata = read_run_metadata(folder, key="--resume")
    if metadata.get("command") != command:
        raise AccelsimError(
            f"holds a {metadata.get('command')!r} run, not {command!r}",
            file=folder,
            key="--resume",
            allowed=f"the folder of {_article(command)} {command} run, or no --resume for a new run",
        )
    return folder


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def read_run_metadata(folder: Path, *, key: str = "--resume") -> dict[str, Any]:
    """A run folder's ``run.json`` (a user error naming the folder when there is none)."""
    path = Path(folder) / RUN_METADATA_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AccelsimError(
            "is not a run folder (no run.json)",
            file=folder,
            key=key,
            allowed="a folder an accelsim command wrote, e.g. out/<name>/latest",
        ) from None
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"cannot read run.json: {exc}", file=path, key=key) from None
    if not isinstance(data, dict):
        raise AccelsimError("run.json is not an object", file=path, key=key)
    return data


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def record_run(folder: Path, command: str, workload: Any, seed: int | None) -> str | None:
    """Write ``folder/run.json`` for a new run, or add this start to a resumed run's; returns
    the text it replaced (None for a new run), so a start that is then refused can be undone."""
    path = folder / RUN_METADATA_NAME
    now = utc_now().isoformat(timespec="seconds")
    if path.exists():
        before = path.read_text(encoding="utf-8")
        data = read_run_metadata(folder)
        if data.get("command") == command:
            data["resumed_at"] = [*data.get("resumed_at", []), now]
        else:  # another command in a folder of the user's own (--out)
            later = {"command": command, "argv": list(sys.argv[1:]), "started_at": now}
            data["other_commands"] = [*data.get("other_commands", []), later]
        write_json_atomic(path, data)
        return before
    metadata = RunMetadata(
        command=command,
        workload=workload.name,
        workload_file=None if workload.source is None else str(workload.source),
        argv=list(sys.argv[1:]),
        seed=seed,
        settings=workload.config.model_dump(mode="json"),
        versions=versions(),
        started_at=now,
    )
    write_json_atomic(path, metadata.to_dict())
    return None
