"""An audit bundle: one batch's events, their hashes and the proofs that link each to a
checkpoint, in one canonical JSON file that ``lodestone/integrity.py`` checks alone.

If the batch's newest event is not yet covered by a checkpoint, one is made first, so a
bundle always proves every event it carries.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from lodestone import integrity
from lodestone.audit.checkpointer import Checkpointer, TamperDetected, checked_hash
from lodestone.audit.pages import pages
from lodestone.domain.refusals import Conflict, NotFound
from lodestone.ledger.stores import Checkpoint, CheckpointStore, EventRows


def _tree(
    recorder: ApplicationRecorder, cp: Checkpoint
) -> tuple[dict[int, int], list[list[bytes]]]:
    """Position -> leaf index, and the Merkle levels of one checkpoint's range."""
    leaves: list[bytes] = []
    index: dict[int, int] = {}
    for page in pages(recorder, cp["first_position"], cp["last_position"]):
        for n in page:
            index[n.id] = len(leaves)
            leaves.append(integrity.leaf_hash(n.id, checked_hash(n)))
    if len(leaves) != cp["count"]:
        raise TamperDetected(
            cp["first_position"], f"checkpoint {cp['seq']} no longer matches the store"
        )
    return index, integrity.merkle_levels(leaves)


def build(
    recorder: ApplicationRecorder,
    rows: EventRows,
    store: CheckpointStore,
    checkpointer: Checkpointer,
    batch_id: UUID,
) -> bytes:
    own = rows.for_aggregates([batch_id])
    if not own:
        raise NotFound("", "exists", "batch is not registered")
    latest = store.latest()
    if latest is None or latest["last_position"] < own[-1].position:
        checkpointer.make()
        latest = store.latest()
    if latest is None or latest["last_position"] < own[-1].position:
        raise Conflict("", "checkpoint", "another checkpoint is being made; retry")
    covering: dict[int, Checkpoint] = {}
    trees: dict[int, tuple[dict[int, int], list[list[bytes]]]] = {}
    events: list[dict[str, Any]] = []
    for row in own:
        cp = next(
            (
                c
                for c in covering.values()
                if c["first_position"] <= row.position <= c["last_position"]
            ),
            None,
        )
        if cp is None:
            cp = store.covering(row.position)
            if cp is None:
                raise Conflict("", "checkpoint", f"no checkpoint covers position {row.position}")
            covering[cp["seq"]] = cp
            trees[cp["seq"]] = _tree(recorder, cp)
        index, levels = trees[cp["seq"]]
        state = json.loads(row.state)
        event, digest, prev = integrity.split_state(state)
        leaf = index[row.position]
        events.append(
            {
                "position": row.position,
                "aggregate_id": str(batch_id),
                "version": row.version,
                "topic": row.topic,
                "event": event,
                "prev": prev,
                "hash": digest,
                "checkpoint": cp["seq"],
                "index": leaf,
                "path": [h.hex() for h in integrity.path_from_levels(levels, leaf)],
            }
        )
    first_seq = min(covering)
    chain = store.list(after_seq=first_seq - 1, limit=latest["seq"] - first_seq + 1)
    first = events[0]["event"]
    bundle = {
        "format": integrity.BUNDLE_FORMAT,
        "batch": {
            "id": str(batch_id),
            "reference": f"{first.get('actor_code')}/{first.get('lot_code')}",
        },
        "events": events,
        "checkpoints": chain,
    }
    return integrity.canonical(bundle)
