"""``lodestone.integrity`` against independent references: canonical JSON against the
``rfc8785`` library, Merkle roots and inclusion paths against RFC 6962's recursive
definitions written out here, and the hash chain a stored row carries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from lodestone import integrity
from lodestone.demo.generator import load
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger

MAX_SAFE = 2**53 - 1


# --- canonical JSON ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_states(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[bytes]]:
    """Every stored state of a small demo chain (about 500 events of every type)."""
    path: Path = tmp_path_factory.mktemp("integrity") / "events.db"
    ledger = Ledger(sqlite_env(path))
    load(ledger, seed=5, size=300)
    notifications = ledger.recorder.select_notifications(1, 100_000)
    yield [n.state for n in notifications]
    ledger.close()


def test_canonical_matches_the_reference_on_every_stored_state(demo_states: list[bytes]) -> None:
    assert len(demo_states) > 300
    for state in demo_states:
        parsed = json.loads(state)
        assert integrity.canonical(parsed) == rfc8785.dumps(parsed), state[:200]


def test_every_stored_state_is_already_canonical(demo_states: list[bytes]) -> None:
    for state in demo_states:
        assert rfc8785.dumps(json.loads(state)) == state, state[:200]


TRICKY: dict[str, Any] = {
    "ascii": {"b": 1, "a": 2, "A": 3, "_": 4, "aa": 5, "": 6},
    "non-BMP value": "magnet \U0001f9f2 and \U00010000 and \U0010ffff",
    # U+1F600 sorts before U+FFFF by UTF-16 code units (0xD83D < 0xFFFF), after by code point.
    "non-BMP keys": {"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "z": 4, "\U00010000": 5},
    "BMP beyond ASCII": {"é": "Nd–Fe–B", "ü": "Ⅻ", "中": "稀土", "\u2028": "\u2029"},
    "controls": "".join(chr(c) for c in range(0x20)) + "\x7f",
    "escapes": '"\\/\b\f\n\r\t quote " backslash \\ solidus /',
    "empty": [{}, [], {"a": {}}, [[]], "", {"": []}],
    "nested": {"a": [{"b": [{"c": {}}]}], "d": [[], [[]], {"e": None}]},
    "integers": [0, -0, 1, -1, MAX_SAFE, -MAX_SAFE, 10**15, -(10**15), 2**31, -(2**31)],
    "literals": [True, False, None],
    "mixed": {"\U0001f600\t": ["\x00", {"\U0001f600": "\U0001f600"}], "\x1f": -5},
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_canonical_matches_the_reference_on_tricky_values(name: str) -> None:
    value = TRICKY[name]
    assert integrity.canonical(value) == rfc8785.dumps(value)
    assert integrity.canonical({name: value}) == rfc8785.dumps({name: value})


def test_canonical_matches_the_reference_on_all_tricky_values_at_once() -> None:
    assert integrity.canonical(TRICKY) == rfc8785.dumps(TRICKY)


def test_member_names_sort_by_utf16_code_units() -> None:
    assert integrity.canonical({"\uffff": 1, "\U0001f600": 2}) == (
        '{"\U0001f600":2,"\uffff":1}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [1.5, 0.0, 1e3, {"a": [1, 2.0]}, {"\U0001f600": 2.5}, float("nan"), float("inf")],
    ids=repr,
)
def test_canonical_refuses_floats(value: Any) -> None:
    with pytest.raises(ValueError):
        integrity.canonical(value)


@pytest.mark.parametrize(
    "value",
    [MAX_SAFE + 1, -MAX_SAFE - 1, 2**64, {"a": [2**53]}, {"\U0001f600": -(2**60)}],
    ids=repr,
)
def test_canonical_refuses_integers_beyond_the_safe_range(value: Any) -> None:
    with pytest.raises(ValueError):
        integrity.canonical(value)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {True: "a"},
        {None: "a"},
        {1.5: "a"},
        {"a": 1, 2: 3},
        {"a": {3: "b"}},
        [{"ok": {None: 1}}],
        {"\U0001f600": {1: 2}},
        {(1, 2): "a"},
    ],
    ids=repr,
)
def test_canonical_refuses_member_names_that_are_not_strings(value: Any) -> None:
    with pytest.raises(ValueError):
        integrity.canonical(value)


# --- Merkle trees against RFC 6962 section 2.1, written out recursively --------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(data: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1."""
    if not data:
        return _h(b"")
    if len(data) == 1:
        return _h(b"\x00" + data[0])
    k = _k(len(data))
    return _h(b"\x01" + reference_mth(data[:k]) + reference_mth(data[k:]))


def reference_path(m: int, data: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1, leaf to root."""
    if len(data) == 1:
        return []
    k = _k(len(data))
    if m < k:
        return [*reference_path(m, data[:k]), reference_mth(data[k:])]
    return [*reference_path(m - k, data[k:]), reference_mth(data[:k])]


SIZES = range(1, 71)


def leaf_data(n: int) -> list[bytes]:
    """Leaf data as a checkpoint has it: ``"<position>:<event hash>"``."""
    return [f"{p}:{hashlib.sha256(str(p).encode()).hexdigest()}".encode() for p in range(1, n + 1)]


def leaves(n: int) -> list[bytes]:
    return [
        integrity.leaf_hash(p, hashlib.sha256(str(p).encode()).hexdigest()) for p in range(1, n + 1)
    ]


def with_paths(size: int) -> tuple[list[bytes], bytes, list[list[bytes]]]:
    """A tree of ``size`` leaves, its root, and each leaf's inclusion path (by index)."""
    tree = leaves(size)
    return (
        tree,
        integrity.merkle_root(tree),
        [integrity.inclusion_path(tree, index) for index in range(size)],
    )


def test_a_leaf_is_the_rfc_6962_hash_of_position_and_event_hash() -> None:
    assert leaves(3) == [_h(b"\x00" + d) for d in leaf_data(3)]


def test_the_empty_tree_has_the_hash_of_nothing() -> None:
    assert integrity.merkle_root([]) == reference_mth([]) == _h(b"")


@pytest.mark.parametrize("size", SIZES)
def test_merkle_root_matches_the_rfc_6962_definition(size: int) -> None:
    assert integrity.merkle_root(leaves(size)) == reference_mth(leaf_data(size))


@pytest.mark.parametrize("size", SIZES)
def test_every_inclusion_path_is_rfc_6962_path_and_leads_to_the_root(size: int) -> None:
    tree, data = leaves(size), leaf_data(size)
    root = reference_mth(data)
    for index in range(size):
        path = integrity.inclusion_path(tree, index)
        assert path == reference_path(index, data), index
        assert integrity.root_from_path(tree[index], index, size, path) == root, index


@pytest.mark.parametrize("size", SIZES)
def test_a_path_with_a_wrong_index_does_not_lead_to_the_root(size: int) -> None:
    tree, root, paths = with_paths(size)
    for index, path in enumerate(paths):
        for wrong in [*range(size + 2), -1]:
            if wrong != index:
                found = integrity.root_from_path(tree[index], wrong, size, path)
                assert found != root, (index, wrong)


@pytest.mark.parametrize("size", SIZES)
def test_a_path_with_a_wrong_size_does_not_lead_to_that_sizes_root(size: int) -> None:
    """Claimed for a tree of another size, a path never leads to that tree's root (the
    first leaves being the same). It may still lead to this tree's root: for index 0,
    sizes 7 and 8 walk the same way. That is why a checkpoint's hash binds its ``count``
    to its ``root``."""
    tree = leaves(max(SIZES) + 1)
    roots = {n: integrity.merkle_root(tree[:n]) for n in range(1, len(tree) + 1)}
    for index in range(size):
        path = integrity.inclusion_path(tree[:size], index)
        for wrong in range(index + 1, len(tree) + 1):
            if wrong != size:
                found = integrity.root_from_path(tree[index], index, wrong, path)
                assert found != roots[wrong], (index, wrong)
        assert integrity.root_from_path(tree[index], index, index, path) is None


@pytest.mark.parametrize("size", SIZES)
def test_a_path_with_one_flipped_hash_does_not_lead_to_the_root(size: int) -> None:
    tree, root, paths = with_paths(size)
    for index, path in enumerate(paths):
        for n, sibling in enumerate(path):
            for bit in (0, 7 * 8 + 3, 255):
                flipped = bytearray(sibling)
                flipped[bit // 8] ^= 1 << (bit % 8)
                altered = [*path[:n], bytes(flipped), *path[n + 1 :]]
                assert integrity.root_from_path(tree[index], index, size, altered) != root
        flipped_leaf = bytes([tree[index][0] ^ 1]) + tree[index][1:]
        assert integrity.root_from_path(flipped_leaf, index, size, path) != root


@pytest.mark.parametrize("size", SIZES)
def test_a_path_one_hash_too_short_or_too_long_is_malformed(size: int) -> None:
    tree, root, paths = with_paths(size)
    for index, path in enumerate(paths):
        if path:
            assert integrity.root_from_path(tree[index], index, size, path[:-1]) != root
        assert integrity.root_from_path(tree[index], index, size, [*path, root]) is None


def test_levels_give_the_same_paths_as_inclusion_path() -> None:
    tree = leaves(37)
    levels = integrity.merkle_levels(tree)
    assert levels[-1] == [integrity.merkle_root(tree)]
    for index in range(37):
        assert integrity.path_from_levels(levels, index) == integrity.inclusion_path(tree, index)
    with pytest.raises(IndexError):
        integrity.path_from_levels(levels, 37)


# --- the hash chain inside a stored state -------------------------------------------------

AGGREGATE = "8501081c-8ac6-53f3-ab74-b92b3633630c"
TOPIC = "lodestone.domain.batches:Batch.Produced"
PREV = hashlib.sha256(b"version 1").hexdigest()
#: Lower-case names sort after "__chain__" (the link comes first: the fast path); an
#: upper-case one sorts before it (the link is spliced elsewhere: the full parse).
STATES: dict[str, dict[str, Any]] = {
    "link first": {
        "lot_code": "MAG-1",
        "mass_kg": {"_data_": "3683.369547", "_type_": "decimal_str"},
        "composition": {"Nd": {"_data_": "0.229", "_type_": "decimal_str"}},
        "inputs": [{"kg": {"_data_": "12.5", "_type_": "decimal_str"}}],
        "note": "Nd–Fe–B \U0001f9f2 \x1f",
        "count": 3,
        "held": False,
        "reason": None,
    },
    "link inside": {"Nd": "0.229", "lot_code": "MAG-1", "count": -7, "tags": [], "x": "\x1f"},
    "empty": {},
}


@pytest.mark.parametrize("prev", [None, PREV], ids=["version 1", "version 2"])
@pytest.mark.parametrize("name", sorted(STATES))
def test_a_chained_state_round_trips_through_check_stored(name: str, prev: str | None) -> None:
    event = STATES[name]
    version = 1 if prev is None else 2
    stored, digest = integrity.chained_state(AGGREGATE, version, TOPIC, event, prev)

    assert stored == rfc8785.dumps({**event, integrity.CHAIN_KEY: {"hash": digest, "prev": prev}})
    assert digest == integrity.event_hash(AGGREGATE, version, TOPIC, event, prev)
    assert integrity.split_state(json.loads(stored)) == (event, digest, prev)
    assert integrity.check_stored(AGGREGATE, version, TOPIC, stored) == (digest, prev, True)


def test_the_event_hash_covers_the_documented_members() -> None:
    event = STATES["link first"]
    document = {
        "aggregate_id": AGGREGATE,
        "version": 2,
        "topic": TOPIC,
        "event": event,
        "prev": PREV,
    }
    expected = hashlib.sha256(rfc8785.dumps(document)).hexdigest()
    assert integrity.event_hash(AGGREGATE, 2, TOPIC, event, PREV) == expected


@pytest.mark.parametrize("prev", [None, PREV], ids=["version 1", "version 2"])
def test_check_stored_flags_the_wrong_aggregate_version_or_topic(prev: str | None) -> None:
    version = 1 if prev is None else 2
    stored, _ = integrity.chained_state(AGGREGATE, version, TOPIC, STATES["link first"], prev)
    other_id = AGGREGATE.replace("8501", "8502")
    assert not integrity.check_stored(other_id, version, TOPIC, stored)[2]
    assert not integrity.check_stored(AGGREGATE, version + 1, TOPIC, stored)[2]
    assert not integrity.check_stored(AGGREGATE, version, TOPIC + "x", stored)[2]


@pytest.mark.parametrize("prev", [None, PREV], ids=["version 1", "version 2"])
@pytest.mark.parametrize("name", sorted(STATES))
def test_check_stored_flags_any_single_changed_byte(name: str, prev: str | None) -> None:
    """Every offset, every other byte value (255 per offset): none passes as intact."""
    version = 1 if prev is None else 2
    stored, _ = integrity.chained_state(AGGREGATE, version, TOPIC, STATES[name], prev)
    for offset in range(len(stored)):
        for value in range(256):
            if value == stored[offset]:
                continue
            altered = stored[:offset] + bytes([value]) + stored[offset + 1 :]
            _, _, intact = integrity.check_stored(AGGREGATE, version, TOPIC, altered)
            assert not intact, (offset, bytes([stored[offset]]), bytes([value]))


def test_check_stored_flags_a_state_without_a_link() -> None:
    state = integrity.canonical(STATES["link first"])
    assert integrity.check_stored(AGGREGATE, 1, TOPIC, state) == (None, None, False)
    assert integrity.check_stored(AGGREGATE, 1, TOPIC, b"not json") == (None, None, False)
