"""Faults under load (issue 12), the short version of ``bench/faults.py``: one run per
victim against the real stack (gateway on PostgreSQL, relay, a projector per read model,
a Kafka broker, a PostgreSQL server, all real processes), each SIGKILLing its victim at
a random (seeded) moment of a bounded load of single and bulk writes and restarting it.
Whatever dies, nothing answered 201 is lost, nothing is stored twice, every read model
equals a rebuild from position 0 and ``verify`` is clean."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lodestone.devtools import faults
from lodestone.devtools.kafka_local import KafkaUnavailable, LocalKafka

pytestmark = pytest.mark.slow

#: Seeds of the runs (kill moment, outage, load); a failure names its seed, and
#: ``bench/faults.py --runs 1 --seed S --victim V`` repeats that run's choices.
SEEDS = {"gateway": 1201, "relay": 1202, "projector": 1203, "kafka": 1204, "postgres": 1205}


@pytest.fixture(scope="module")
def servers() -> Iterator[faults.Servers]:
    """A broker and a PostgreSQL server of this module's own: the runs kill them."""
    try:
        LocalKafka().ensure_jars()
    except KafkaUnavailable as error:
        pytest.skip(f"no local Kafka broker: {error}")
    with faults.Servers() as started:
        yield started


@pytest.mark.parametrize("victim", faults.VICTIMS)
def test_a_victim_killed_under_load_loses_and_doubles_nothing(
    servers: faults.Servers, victim: str
) -> None:
    result = faults.run_once(servers, 1, victim, SEEDS[victim], clients=3, writes=12)

    assert result.problems == [], result.problems
    assert (result.lost, result.topic_missing, result.doubled) == (0, 0, 0)
    assert result.models_equal
    assert result.verify_ok
    # The load really ran through the kill: writes accepted and writes refused.
    assert result.accepted > 0 and result.refused > 0
