"""``lodestone demo`` never prints the admin key it makes: it keeps it in a file only
its owner can read, and says where (issue 12)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")}
    command = [sys.executable, "-m", "lodestone.cli.main", "demo", "--no-serve", "--size", "150"]
    return subprocess.run(
        [*command, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=True,
    )


def test_the_demo_keeps_its_admin_key_in_an_owner_only_file_and_never_prints_it(
    tmp_path: Path,
) -> None:
    result = _demo(tmp_path / "demo")

    key_file = tmp_path / "demo" / "admin-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key.startswith("demo-") and len(key) > 30
    assert key not in result.stdout + result.stderr
    assert str(key_file) in result.stdout


def test_a_second_demo_start_keeps_the_same_admin_key(tmp_path: Path) -> None:
    _demo(tmp_path / "demo")
    first = (tmp_path / "demo" / "admin-key").read_text()

    _demo(tmp_path / "demo")

    assert (tmp_path / "demo" / "admin-key").read_text() == first


def test_the_demo_prints_the_pages_url(tmp_path: Path) -> None:
    result = _demo(tmp_path / "demo")

    assert "Page:       http://127.0.0.1:8000/page" in result.stdout
