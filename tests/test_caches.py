"""Caches live in one per-user folder (platformdirs, or $ACCELSIM_CACHE_DIR), never in the
current directory or beside the workload, and a cache that cannot be written costs time only."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.caches import CACHE_ENV, cache_dir, cache_root


def test_the_cache_is_the_users_not_the_current_directorys(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cache_root().is_absolute() and tmp_path not in cache_root().parents
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir("models") == tmp_path / "mine" / "models"


def test_a_builtin_model_is_cached_in_the_cache_folder(monkeypatch, tmp_path):
    from accelsim import load_workload

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    yaml = tmp_path / "w.yaml"
    yaml.write_text("model: {builtin: mobilenet_block, input_size: 8}\nbatch: 1\n")
    first = load_workload(yaml)
    cached = list((tmp_path / "cache" / "models").glob("mobilenet_block-8-*.npz"))
    assert len(cached) == 1 and not (tmp_path / ".cache").exists()
    again = load_workload(yaml)  # from the cache: the same integer graph
    assert again.graph.content_hash() == first.graph.content_hash()


def test_a_cache_that_cannot_be_written_only_warns(monkeypatch, tmp_path):
    from workloads.export import builtin_graph_cached

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a file where the folder would go: mkdir fails whoever we are
    with pytest.warns(RuntimeWarning, match="not cached"):
        graph = builtin_graph_cached("mobilenet_block", 8, 0, Path(blocked) / "models")
    assert graph.kind == "float"


def test_the_vulnerability_records_default_to_the_cache_folder_at_call_time(monkeypatch, tmp_path):
    from faults.vulnerability import DEFAULT_CACHE_DIR

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "later"))  # set after the import
    assert Path(DEFAULT_CACHE_DIR) == tmp_path / "later" / "vf"
