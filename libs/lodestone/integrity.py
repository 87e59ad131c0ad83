#!/usr/bin/env python3
"""Lodestone tamper evidence: event hashes, Merkle checkpoints, and the bundle verifier.

This one file uses the Python standard library only, on purpose: the ledger imports it
to hash every event it stores, and an auditor runs the very same file, alone, to check
an audit bundle without Lodestone, its server or its database:

    python3 integrity.py bundle.json [--anchor CHECKPOINT_HASH]

Definitions (every hash is SHA-256, written as 64 lowercase hex digits):

- Canonical form: RFC 8785 (JSON Canonicalization Scheme). Lodestone's stored JSON
  holds objects, arrays, strings, integers, booleans and null only (decimals, ids and
  times are strings), so the canonical form is: object members sorted by the UTF-16
  code units of their names, no insignificant whitespace, strings escaped as ECMAScript
  does, integers in plain decimal. Floats are refused rather than approximated.
- Event hash: the hash of the canonical form of
  ``{"aggregate_id", "version", "topic", "event", "prev"}`` where ``event`` is the
  event's stored state and ``prev`` the hash of the same aggregate's previous event
  (null for version 1). Each aggregate is thus a hash chain.
- Checkpoint: a Merkle tree (RFC 6962/9162: leaf = H(0x00 || data), node =
  H(0x01 || left || right)) over the events of a range of store positions, in position
  order, with leaf data ``"<position>:<event hash>"``; the record
  ``{"seq", "first_position", "last_position", "count", "root", "prev", "created_at"}``
  is hashed canonically, and ``prev`` links it to the checkpoint before. Checkpoints are
  published (Kafka topic ``lodestone.checkpoints.v1``) so that third parties hold them.
- Audit bundle: canonical JSON ``{"format", "batch", "events", "checkpoints"}``: the
  events of one batch with their hashes and each one's inclusion proof (``checkpoint``,
  ``index``, ``path``) in a checkpoint; the checkpoints from the oldest one used to the
  newest, chained. The verifier recomputes every hash, chain and proof, refuses any
  member it does not know and any byte that is not canonical: a bundle altered in any
  byte fails.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BUNDLE_FORMAT = "lodestone.audit-bundle.v1"
CHAIN_KEY = "__chain__"  # where the ledger keeps {"hash", "prev"} inside a stored state
MAX_SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE 754 doubles

_encode_string = json.JSONEncoder(ensure_ascii=False).encode


# --- canonical JSON (RFC 8785, for Lodestone's value space) -----------------------------


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``; refuses floats, unsafe integers and non-str keys."""
    try:
        text = _sorted_dumps(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a JSON value: {e}") from None
    if not text.isascii() and _beyond_bmp(text):
        # Member names beyond U+FFFF sort differently by UTF-16 code units.
        parts: list[str] = []
        _write(value, parts)
        return "".join(parts).encode("utf-8")
    # The C encoder wrote exactly RFC 8785 unless a number is a float or too large:
    # parse the numbers back (strings cannot hide one) and refuse those.
    if json.loads(text, parse_float=_refuse_float, parse_int=_safe_int) != value:
        # The encoder writes a member name 1, True, None or 1.5 as a string, so the value
        # reads back different: the writer refuses those (and writes tuples as arrays).
        parts = []
        _write(value, parts)
        return "".join(parts).encode("utf-8")
    return text.encode("utf-8")


_sorted_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _beyond_bmp(text: str) -> bool:
    return any(ord(c) > 0xFFFF for c in text)


def _refuse_float(text: str) -> Any:
    raise ValueError(f"{text}: floats have no exact canonical form here; use a decimal string")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is outside the exactly representable range")
    return value


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the exactly representable range")
        out.append(str(value))
    elif isinstance(value, float):
        raise ValueError("floats have no exact canonical form here; use a decimal string")
    elif isinstance(value, Mapping):
        names = list(value)
        if not all(isinstance(n, str) for n in names):
            raise ValueError("object member names must be strings")
        out.append("{")
        for n, name in enumerate(sorted(names, key=_utf16_key)):
            if n:
                out.append(",")
            out.append(_encode_string(name))
            out.append(":")
            _write(value[name], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- events -----------------------------------------------------------------------------


def event_hash(
    aggregate_id: str, version: int, topic: str, event: Mapping[str, Any], prev: str | None
) -> str:
    return sha256_hex(_event_document(aggregate_id, version, topic, canonical(event), prev))


def _event_document(
    aggregate_id: str, version: int, topic: str, event_text: bytes, prev: str | None
) -> bytes:
    # canonical({"aggregate_id", "event", "prev", "topic", "version"}): members in order,
    # the event's own canonical bytes spliced in.
    return b"".join(
        (
            b'{"aggregate_id":',
            canonical(aggregate_id),
            b',"event":',
            event_text,
            b',"prev":',
            canonical(prev),
            b',"topic":',
            canonical(topic),
            b',"version":',
            canonical(version),
            b"}",
        )
    )


_LINK_HEAD = b'{"' + CHAIN_KEY.encode() + b'":{"hash":"'


def chained_state(
    aggregate_id: str, version: int, topic: str, event: Mapping[str, Any], prev: str | None
) -> tuple[bytes, str]:
    """The bytes the ledger stores for an event (its state with the chain link inside,
    canonical) and the event's hash."""
    event_text = canonical(event)
    digest = sha256_hex(_event_document(aggregate_id, version, topic, event_text, prev))
    link = {"hash": digest, "prev": prev}
    if event and min(event) > CHAIN_KEY:  # the link is the first member: splice it in
        stored = b'{"' + CHAIN_KEY.encode() + b'":' + canonical(link) + b"," + event_text[1:]
    else:
        stored = canonical({**event, CHAIN_KEY: link})
    return stored, digest


@functools.lru_cache(maxsize=1024)
def _canonical_topic(topic: str) -> bytes:
    return canonical(topic)


def check_stored(
    aggregate_id: str, version: int, topic: str, state: bytes
) -> tuple[str | None, str | None, bool]:
    """(recorded hash, recorded prev, whether the recomputed hash matches) for a stored
    row. Fast path without parsing: the link is the first member of the canonical state,
    so the event's canonical bytes are the rest; any byte changed anywhere in the row
    changes the recomputed hash. Anything else goes through a full parse."""
    if state.startswith(_LINK_HEAD) and len(state) > 96:
        digest = state[22:86]
        tail = state[86:]
        if tail.startswith(b'","prev":null},'):
            prev, rest = None, tail[15:]
        elif tail.startswith(b'","prev":"') and tail[74:77] == b'"},':
            prev, rest = tail[10:74], tail[77:]
        else:
            prev = rest = None
        if rest is not None:
            recorded = digest.decode("ascii", "replace")
            prev_text = prev.decode("ascii", "replace") if prev is not None else None
            document = b"".join(
                (
                    b'{"aggregate_id":"',
                    aggregate_id.encode(),
                    b'","event":{',
                    rest,
                    b',"prev":',
                    b"null" if prev is None else b'"' + prev + b'"',
                    b',"topic":',
                    _canonical_topic(topic),
                    b',"version":',
                    str(version).encode(),
                    b"}",
                )
            )
            return recorded, prev_text, sha256_hex(document) == recorded
    try:
        parsed = json.loads(state)
        event, recorded_hash, recorded_prev = split_state(parsed)
        if recorded_hash is None:
            return None, None, False
        same = (
            event_hash(aggregate_id, version, topic, event, recorded_prev) == recorded_hash
            # The ledger stores canonical bytes with a link of exactly these members: a row
            # re-encoded, or a link member renamed (a "prev" of null reads as missing),
            # was edited even if its meaning was kept.
            and set(parsed[CHAIN_KEY]) == {"hash", "prev"}
            and canonical(parsed) == state
        )
        return recorded_hash, recorded_prev, same
    except (ValueError, TypeError, AttributeError):
        return None, None, False


def split_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """A stored state -> (the event's own state, its recorded hash, its recorded prev)."""
    event = dict(state)
    link = event.pop(CHAIN_KEY, None)
    if not isinstance(link, dict):
        return event, None, None
    return event, link.get("hash"), link.get("prev")


# --- Merkle trees (RFC 6962 / RFC 9162) -------------------------------------------------


def leaf_hash(position: int, event_digest: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{position}:{event_digest}".encode("ascii")).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 6962 tree, leaves first. Pairing bottom-up and promoting a
    level's odd last node builds exactly the tree RFC 6962 defines top-down."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        levels.append(paired)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    return merkle_levels(leaves)[-1][0]


def path_from_levels(levels: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """RFC 6962 PATH(index): the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(levels[0]):
        raise IndexError(index)
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):  # else this node is promoted unchanged
            path.append(level[sibling])
        index //= 2
    return path


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return path_from_levels(merkle_levels(leaves), index)


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, None if malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# --- checkpoints ------------------------------------------------------------------------

CHECKPOINT_FIELDS = (
    "seq",
    "first_position",
    "last_position",
    "count",
    "root",
    "prev",
    "created_at",
)


def checkpoint_hash(record: Mapping[str, Any]) -> str:
    return sha256_hex(canonical({name: record[name] for name in CHECKPOINT_FIELDS}))


# --- the bundle verifier ----------------------------------------------------------------

_EVENT_FIELDS = {"position", "aggregate_id", "version", "topic", "event", "prev", "hash"}
_PROOF_FIELDS = {"checkpoint", "index", "path"}
_CHECKPOINT_FIELDS = set(CHECKPOINT_FIELDS) | {"hash"}


class BundleError(Exception):
    pass


def _is_hex64(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _exact_keys(obj: Any, expected: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise BundleError(f"{where}: must be an object")
    if set(obj) != expected:
        unknown = sorted(set(obj) - expected)
        missing = sorted(expected - set(obj))
        raise BundleError(f"{where}: unknown members {unknown}, missing members {missing}")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BundleError(f"{where}: must be an integer >= {minimum}")
    return value


def verify_bundle(data: bytes, anchor: str | None = None) -> dict[str, Any]:
    """Checks an audit bundle; returns a summary, raises BundleError naming the first fault."""
    try:
        bundle = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"not a JSON document: {e}") from None
    try:
        if canonical(bundle) != data:
            raise BundleError(
                "the file is not in canonical form (RFC 8785): it was re-encoded or edited"
            )
    except ValueError as e:
        raise BundleError(f"not canonical JSON: {e}") from None
    _exact_keys(bundle, {"format", "batch", "events", "checkpoints"}, "bundle")
    if bundle["format"] != BUNDLE_FORMAT:
        raise BundleError(f"format: expected {BUNDLE_FORMAT!r}")

    checkpoints = bundle["checkpoints"]
    if not isinstance(checkpoints, list) or not checkpoints:
        raise BundleError("checkpoints: at least one checkpoint is required")
    by_seq: dict[int, dict[str, Any]] = {}
    previous: dict[str, Any] | None = None
    for n, cp in enumerate(checkpoints):
        where = f"checkpoints[{n}]"
        _exact_keys(cp, _CHECKPOINT_FIELDS, where)
        seq = _int(cp["seq"], f"{where}.seq", 1)
        first = _int(cp["first_position"], f"{where}.first_position", 1)
        last = _int(cp["last_position"], f"{where}.last_position", first)
        count = _int(cp["count"], f"{where}.count", 1)
        if count > last - first + 1:
            raise BundleError(f"{where}.count: more leaves than positions in the range")
        if not _is_hex64(cp["root"]) or not _is_hex64(cp["hash"]):
            raise BundleError(f"{where}: root and hash must be 64 lowercase hex digits")
        if not isinstance(cp["created_at"], str):
            raise BundleError(f"{where}.created_at: must be a string")
        if checkpoint_hash(cp) != cp["hash"]:
            raise BundleError(f"{where} (seq {seq}): its hash does not match its contents")
        if previous is None:
            if cp["prev"] is not None and not _is_hex64(cp["prev"]):
                raise BundleError(f"{where}.prev: must be null or a hash")
        else:
            if seq != previous["seq"] + 1 or cp["prev"] != previous["hash"]:
                raise BundleError(
                    f"{where} (seq {seq}): does not follow checkpoint {previous['seq']}"
                )
            if first != previous["last_position"] + 1:
                raise BundleError(
                    f"{where} (seq {seq}): its range does not follow the previous one"
                )
        by_seq[seq] = cp
        previous = cp

    batch = bundle["batch"]
    _exact_keys(batch, {"id", "reference"}, "batch")
    events = bundle["events"]
    if not isinstance(events, list) or not events:
        raise BundleError("events: at least one event is required")
    prev_hash: str | None = None
    last_position = 0
    for n, item in enumerate(events):
        where = f"events[{n}]"
        _exact_keys(item, _EVENT_FIELDS | _PROOF_FIELDS, where)
        version = _int(item["version"], f"{where}.version", 1)
        if item["aggregate_id"] != batch["id"]:
            raise BundleError(f"{where}: belongs to another aggregate than the batch")
        if version != n + 1:
            raise BundleError(
                f"{where}: version {version} where {n + 1} was expected (missing or reordered)"
            )
        position = _int(item["position"], f"{where}.position", 1)
        if position <= last_position:
            raise BundleError(f"{where}: positions must increase")
        last_position = position
        if not isinstance(item["topic"], str) or not isinstance(item["event"], dict):
            raise BundleError(f"{where}: topic must be a string and event an object")
        if item["prev"] != prev_hash:
            raise BundleError(
                f"{where} (version {version}): prev does not match the previous event's hash"
            )
        digest = event_hash(batch["id"], version, item["topic"], item["event"], item["prev"])
        if digest != item["hash"]:
            raise BundleError(
                f"{where} (version {version}): the event does not match its hash (edited)"
            )
        cp = by_seq.get(item["checkpoint"]) if isinstance(item["checkpoint"], int) else None
        if cp is None:
            raise BundleError(f"{where}.checkpoint: not among the bundle's checkpoints")
        if not cp["first_position"] <= position <= cp["last_position"]:
            raise BundleError(f"{where}: position {position} is outside checkpoint {cp['seq']}")
        path = item["path"]
        if not isinstance(path, list) or not all(_is_hex64(p) for p in path):
            raise BundleError(f"{where}.path: must be a list of hashes")
        index = _int(item["index"], f"{where}.index")
        root = root_from_path(
            leaf_hash(position, digest), index, cp["count"], [bytes.fromhex(p) for p in path]
        )
        if root is None or root.hex() != cp["root"]:
            raise BundleError(
                f"{where} (version {version}): its proof does not lead to checkpoint {cp['seq']}'s root"
            )
        prev_hash = digest

    first_state = events[0]["event"]
    expected_reference = f"{first_state.get('actor_code')}/{first_state.get('lot_code')}"
    if batch["reference"] != expected_reference:
        raise BundleError("batch.reference: does not match the batch's first event")
    newest = checkpoints[-1]
    if anchor is not None and anchor != newest["hash"]:
        raise BundleError(f"the newest checkpoint {newest['hash']} is not the anchor {anchor}")
    return {
        "batch": batch["reference"],
        "events": len(events),
        "newest_event_hash": prev_hash,
        "checkpoint": {
            k: newest[k] for k in ("seq", "last_position", "root", "hash", "created_at")
        },
        "anchored": anchor is not None,
    }


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    anchor = None
    if "--anchor" in args:
        i = args.index("--anchor")
        if i + 1 >= len(args):
            print("usage: integrity.py BUNDLE.json [--anchor CHECKPOINT_HASH]", file=sys.stderr)
            return 2
        anchor = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        print("usage: integrity.py BUNDLE.json [--anchor CHECKPOINT_HASH]", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"cannot read {args[0]}: {e}", file=sys.stderr)
        return 2
    try:
        summary = verify_bundle(data, anchor)
    except BundleError as e:
        print(f"FAILED: {e}")
        return 1
    cp = summary["checkpoint"]
    print(f"OK: {summary['events']} events of batch {summary['batch']} are intact and chained,")
    print(
        f"and each is included in checkpoint(s) ending with seq {cp['seq']} (positions up to {cp['last_position']}):"
    )
    print(f"  root {cp['root']}")
    print(f"  hash {cp['hash']}  created {cp['created_at']}")
    if summary["anchored"]:
        print("That checkpoint is the anchor you gave: the bundle is anchored.")
    else:
        print("Compare that checkpoint hash with one published on lodestone.checkpoints.v1")
        print("(or held by a third party), or pass it with --anchor, to anchor the bundle.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
