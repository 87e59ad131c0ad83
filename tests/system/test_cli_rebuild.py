"""``lodestone rebuild`` on a demo data directory (Typer's CliRunner): it rebuilds beside
the live read model, switches the copy in, says whether the state is the same, and
leaves no copy behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_genealogy_view
from tests.system.test_cli_audit import _clean_environment, run


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _clean_environment(monkeypatch)
    data = tmp_path / "demo"
    result = run("demo", "--no-serve", "--size", "200", "--data-dir", data)
    assert result.exit_code == 0, result.output
    return data


def test_rebuild_switches_in_a_copy_of_the_same_state_and_leaves_no_copy(data_dir: Path) -> None:
    view = build_genealogy_view(Settings(data_dir=data_dir))
    before = view.fingerprint()
    view.close()

    result = run("rebuild", "--data-dir", data_dir, "--projection", "genealogy")

    assert result.exit_code == 0, result.output
    assert "rebuilt beside the live model" in result.output
    assert "same state as before: True" in result.output
    assert not list(data_dir.glob("rebuild-*"))
    view = build_genealogy_view(Settings(data_dir=data_dir))
    try:
        assert view.fingerprint() == before
        assert view.changes(0, 1_000_000).changes[-1].is_reset  # streams are told to re-read
    finally:
        view.close()
