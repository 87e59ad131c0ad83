"""A batch's genealogy drawn from the query layer's traces, for callers of any role: the
same Graphviz drawing as the audit report (mines on the left, end clients on the right,
the mass each step took on its edges), built from the ``Trace`` answers of
``lodestone.reads.batches``, so the drawing carries exactly what those answers show the
caller: a lot reference, holder or client they may not see is drawn as "not shown"."""

from __future__ import annotations

from typing import Any

from lodestone.audit.report.graph import Graph, draw_genealogy
from lodestone.reads.types import Trace, TraceNode


def genealogy(upstream: Trace, downstream: Trace) -> dict[str, Any]:
    """The two traces of one batch as the report's genealogy section (``nodes`` with
    their side, ``edges``), the input of ``draw_genealogy``."""
    up = {n["id"]: n for n in upstream["nodes"]}
    down = {n["id"]: n for n in downstream["nodes"]}
    # The root is the one batch in both traces: the genealogy is acyclic, so no
    # ancestor is also a descendant.
    roots = up.keys() & down.keys()
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for edge in [*upstream["edges"], *downstream["edges"]]:
        edges[(edge["from"], edge["to"], edge["operation_id"])] = {
            "from": edge["from"],
            "to": edge["to"],
            "kg": edge["kg"] or "0",
            "operation": edge["operation"],
        }
    parents = {e["from"] for e in downstream["edges"]}
    leaves = ({e["to"] for e in downstream["edges"]} - parents) or roots
    # The root as the downstream trace has it: with its own sales and exports.
    nodes = [_node(down[id], "root", end=id in leaves) for id in roots]
    nodes += [_node(n, "upstream", end=False) for id, n in up.items() if id not in roots]
    nodes += [_node(n, "downstream", end=id in leaves) for id, n in down.items() if id not in roots]
    return {"nodes": nodes, "edges": list(edges.values())}


def draw(upstream: Trace, downstream: Trace) -> Graph:
    """The batch's genealogy, upstream and downstream, as SVG (see ``draw_genealogy``)."""
    return draw_genealogy(
        genealogy(upstream, downstream), "Its upstream and downstream traces list"
    )


def _node(node: TraceNode, side: str, *, end: bool) -> dict[str, Any]:
    custodian = node.get("custodian") or {}
    return {
        "id": node["id"],
        "batch": node["batch"],  # None: the caller may not see the lot reference
        "side": side,
        "material": node["material"],
        "status": node.get("status"),
        "initial_kg": node["initial_kg"],
        "remaining_kg": node.get("remaining_kg"),
        "holder": custodian if "code" in custodian else None,
        "origin": dict(node["origin"]) if "origin" in node else None,
        "end": end,
        # Downstream nodes carry their sales, exports and receipts, clients redacted
        # where the caller is not a party.
        "trades": [dict(t) for t in node.get("trades", [])],
    }
