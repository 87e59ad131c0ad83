"""``lodestone.metrics``: the function the write path calls per group commit, and the
client library's multiprocess mode adding several gateway workers up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY

from lodestone import metrics


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_group_commit_is_counted_in_the_bucket_of_its_size() -> None:
    count = _sample("lodestone_group_commit_commands_count")
    up_to_2 = _sample("lodestone_group_commit_commands_bucket", le="2.0")
    up_to_4 = _sample("lodestone_group_commit_commands_bucket", le="4.0")
    total = _sample("lodestone_group_commit_commands_sum")

    metrics.observe_group_commit(3)

    assert _sample("lodestone_group_commit_commands_count") == count + 1
    assert _sample("lodestone_group_commit_commands_bucket", le="2.0") == up_to_2
    assert _sample("lodestone_group_commit_commands_bucket", le="4.0") == up_to_4 + 1
    assert _sample("lodestone_group_commit_commands_sum") == total + 3


def _python(code: str, multiproc_dir: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_workers_in_multiprocess_mode_are_added_up_by_any_one(tmp_path: Path) -> None:
    record = "from lodestone import metrics; metrics.record_events(['OreExtracted'] * {n})"
    _python(record.format(n=3), tmp_path)  # one worker process
    _python(record.format(n=4), tmp_path)  # another
    exposed = _python(
        "from prometheus_client import generate_latest\n"
        "from lodestone import metrics\n"
        "print(generate_latest(metrics.process_registry()).decode())",
        tmp_path,
    )
    assert 'lodestone_events_recorded_total{kind="OreExtracted"} 7.0' in exposed
