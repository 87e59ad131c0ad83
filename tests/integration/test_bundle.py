"""Audit bundles built from a real store, checked by ``integrity.verify_bundle`` and by a
copy of ``integrity.py`` run alone, as an auditor would: without Lodestone installed.

The bundle is batch NORTH/OX-A of the integration chain (split from a merged oxide lot,
sold, quarantined, released, quarantined again): five events, the first four covered by
one checkpoint and the fifth by a second one, so it carries two chained checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lodestone import integrity
from lodestone.audit import bundle as bundles
from lodestone.audit.checkpointer import Checkpointer
from lodestone.domain.access import Principal, Role
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.ledger.stores import CheckpointStore, EventRows
from tests.fixtures.backends import Backend
from tests.fixtures.verifier import run_alone
from tests.integration.conftest import NOW, at, open_audit_stores

BATCH = "NORTH/OX-A"
#: The verifier an auditor copies: this very file.
VERIFIER = Path(integrity.__file__).read_bytes()
#: Tampering tests check the verifier, not the store: SQLite is enough for them. Building
#: and verifying a bundle runs on both stores.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Built:
    data: bytes
    bundle: dict[str, Any]

    @property
    def newest_checkpoint(self) -> str:
        return str(self.bundle["checkpoints"][-1]["hash"])


@pytest.fixture
def audit_stores(backend: Backend) -> Iterator[tuple[EventRows, CheckpointStore]]:
    """Positioned rows and checkpoints on the same store as ``chain_ledger``."""
    rows, store = open_audit_stores(backend)
    yield rows, store
    rows.close()
    store.close()


@pytest.fixture
def built(chain_ledger: Ledger, audit_stores: tuple[EventRows, CheckpointStore]) -> Built:
    """NORTH/OX-A's bundle: the chain is checkpointed, OX-A is quarantined again, and
    building the bundle checkpoints that newest event."""
    rows, store = audit_stores
    checkpointer = Checkpointer(chain_ledger.recorder, store, clock=lambda: NOW)
    assert checkpointer.make()
    chain_ledger.execute(
        Principal("reg", Role.REGULATOR),
        [c.Quarantine(batch=BATCH, reason="second look", occurred_at=at(23))],
    )
    batch_id = chain_ledger.batch(BATCH).id
    data = bundles.build(chain_ledger.recorder, rows, store, checkpointer, batch_id)
    return Built(data, json.loads(data))


def reencoded(bundle: dict[str, Any]) -> bytes:
    """A changed bundle written canonically again, so that only its meaning is wrong."""
    return integrity.canonical(bundle)


def refused(data: bytes, anchor: str | None = None) -> str:
    with pytest.raises(integrity.BundleError) as caught:
        integrity.verify_bundle(data, anchor)
    return str(caught.value)


# --- a bundle verifies -------------------------------------------------------------------


def test_a_bundle_verifies_with_the_library(built: Built) -> None:
    summary = integrity.verify_bundle(built.data)

    assert summary["batch"] == BATCH
    assert summary["events"] == 5
    assert summary["newest_event_hash"] == built.bundle["events"][-1]["hash"]
    assert summary["checkpoint"]["seq"] == 2
    assert summary["anchored"] is False


def test_a_bundle_spans_two_chained_checkpoints(built: Built) -> None:
    first, second = built.bundle["checkpoints"]
    assert second["prev"] == first["hash"]
    assert {e["checkpoint"] for e in built.bundle["events"]} == {1, 2}
    assert integrity.canonical(built.bundle) == built.data


def test_a_bundle_verifies_with_a_copy_of_the_verifier_run_alone(
    built: Built, tmp_path: Path
) -> None:
    code, output = run_alone(VERIFIER, built.data, tmp_path)

    assert code == 0, output
    assert output.startswith("OK: 5 events of batch NORTH/OX-A are intact and chained")
    assert built.newest_checkpoint in output


# --- any alteration fails ----------------------------------------------------------------


def alterations(byte: int) -> list[int]:
    """Replacements for one byte: its lowest bit flipped, and for a digit or a hex
    letter another one of its kind (a number or a hash that still reads as one)."""
    out = [byte ^ 0x01]
    if chr(byte).isdigit():
        out.append(ord(str((int(chr(byte)) + 5) % 10)))
    if chr(byte) in "abcdef":
        out.append(ord("abcdef"[("abcdef".index(chr(byte)) + 3) % 6]))
    return out


@pytest.mark.timeout(60)
@sqlite_only
def test_every_single_byte_alteration_of_a_bundle_fails(built: Built) -> None:
    """EVERY byte offset of the bundle, so every kind of member: the batch id and
    reference, each event's facts, topic, version, position, hash and prev, each proof's
    checkpoint seq, index and path, each checkpoint's fields, hash and chain link, the
    member names and the JSON structure itself (a canonical file has no whitespace, so
    a space anywhere is an alteration too). Each offset gets its lowest bit flipped, and
    a digit or hex letter also becomes another one of its kind.

    How long: the bundle is about 5.5 KB, so about 8,700 verifications (1.6 per byte) of
    about a millisecond each (each stops at the first fault): 8 s measured on two shared
    cores. The timeout mark stops it at 60 s rather than let a slow machine run on."""
    data = built.data
    bundle = built.bundle
    # What makes "every offset" cover every kind of member:
    assert len(bundle["checkpoints"]) == 2 and bundle["checkpoints"][1]["prev"] is not None
    assert all(e["prev"] for e in bundle["events"][1:]) and bundle["events"][0]["path"]
    tried = 0
    for offset, byte in enumerate(data):
        for value in alterations(byte):
            altered = data[:offset] + bytes([value]) + data[offset + 1 :]
            with pytest.raises(integrity.BundleError):
                integrity.verify_bundle(altered)
            tried += 1
    assert tried >= len(data)


@sqlite_only
@pytest.mark.parametrize("drop", [0, 1, 2, 3], ids=lambda n: f"event {n}")
def test_a_bundle_without_one_of_its_earlier_events_fails(built: Built, drop: int) -> None:
    bundle = built.bundle
    del bundle["events"][drop]

    assert "version" in refused(reencoded(bundle))


@sqlite_only
@pytest.mark.xfail(
    strict=True,
    reason="the bundle commits to no head of the batch: without its newest events it is "
    "the valid bundle of an earlier moment, and no checkpoint says which positions "
    "belong to the batch",
)
def test_a_bundle_without_its_newest_event_fails(built: Built) -> None:
    bundle = built.bundle
    del bundle["events"][-1]

    refused(reencoded(bundle))


@sqlite_only
@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (2, 4)], ids=str)
def test_a_bundle_with_two_events_swapped_fails(built: Built, pair: tuple[int, int]) -> None:
    events = built.bundle["events"]
    i, j = pair
    events[i], events[j] = events[j], events[i]

    assert "version" in refused(reencoded(built.bundle))


@sqlite_only
def test_a_bundle_with_two_events_swapped_and_renumbered_fails(built: Built) -> None:
    """Versions and positions follow their places again: the hashes do not."""
    events = built.bundle["events"]
    first, second = dict(events[1]), dict(events[2])
    for field in ("version", "position", "checkpoint", "index", "path"):
        first[field], second[field] = events[2][field], events[1][field]
    events[1], events[2] = second, first

    refused(reencoded(built.bundle))


@sqlite_only
@pytest.mark.parametrize("remove", [0, 1], ids=["oldest checkpoint", "newest checkpoint"])
def test_a_bundle_without_one_of_its_checkpoints_fails(built: Built, remove: int) -> None:
    del built.bundle["checkpoints"][remove]

    assert "checkpoint" in refused(reencoded(built.bundle))


@sqlite_only
def test_a_bundle_with_its_checkpoints_swapped_fails(built: Built) -> None:
    checkpoints = built.bundle["checkpoints"]
    checkpoints[0], checkpoints[1] = checkpoints[1], checkpoints[0]

    refused(reencoded(built.bundle))


@sqlite_only
def test_a_bundle_reencoded_with_the_same_meaning_fails(built: Built) -> None:
    pretty = json.dumps(built.bundle, indent=1, sort_keys=True).encode()

    assert "canonical" in refused(pretty)


# --- anchoring ----------------------------------------------------------------------------


def test_the_newest_checkpoints_hash_anchors_the_bundle(built: Built, tmp_path: Path) -> None:
    assert integrity.verify_bundle(built.data, built.newest_checkpoint)["anchored"] is True

    code, output = run_alone(VERIFIER, built.data, tmp_path, "--anchor", built.newest_checkpoint)
    assert code == 0, output
    assert "the bundle is anchored" in output


ANCHORS: dict[str, Callable[[Built], str]] = {
    "an unrelated hash": lambda b: "0" * 64,
    "the older checkpoint": lambda b: str(b.bundle["checkpoints"][0]["hash"]),
    "the newest root": lambda b: str(b.bundle["checkpoints"][-1]["root"]),
    "one digit off": lambda b: (
        b.newest_checkpoint[:-1] + ("1" if b.newest_checkpoint[-1] == "0" else "0")
    ),
}


@sqlite_only
@pytest.mark.parametrize("anchor", sorted(ANCHORS))
def test_another_anchor_fails(built: Built, tmp_path: Path, anchor: str) -> None:
    other = ANCHORS[anchor](built)
    assert "anchor" in refused(built.data, other)

    code, output = run_alone(VERIFIER, built.data, tmp_path, "--anchor", other)
    assert code == 1
    assert output.startswith("FAILED:")


@sqlite_only
def test_an_altered_bundle_fails_when_run_alone(built: Built, tmp_path: Path) -> None:
    altered = built.data.replace(b'"reason":"second look"', b'"reason":"second lock"')
    assert altered != built.data

    code, output = run_alone(VERIFIER, altered, tmp_path)
    assert code == 1
    assert output.startswith("FAILED:")
