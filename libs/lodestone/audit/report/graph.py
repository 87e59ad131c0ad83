"""The genealogy drawn for the HTML and PDF report, as SVG by Graphviz's ``dot``: mines
on the left, end clients on the right, the mass each step took on its edges. Large
genealogies are drawn grouped; the JSON report keeps every batch."""

from __future__ import annotations

import html as html_escape
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lodestone.audit.report.formats import format_kg

#: Beyond this many nodes the drawn graph groups batches; the JSON keeps every one.
MAX_DRAWN_NODES = 60
MAX_DRAWN_CLIENTS = 20
MATERIAL_FILL = {
    "ore": "#eadbc8",
    "concentrate": "#f3e3b5",
    "oxide": "#d9ecd0",
    "metal": "#d3e2f2",
    "alloy": "#e2d8f0",
    "magnet": "#f4d3d3",
    "scrap": "#dedede",
}
FONT = "DejaVu Sans"
#: Where a trade's client is redacted for the caller (``{"redacted": true}``).
HIDDEN_CLIENT: Mapping[str, Any] = {"code": "(not shown)"}
CLIENT_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "#fff7d6", "color": "#b08900"}


@dataclass(frozen=True)
class Graph:
    svg: str | None
    note: str | None  # said under the graph: grouping, or why it is not drawn


@dataclass
class _Box:
    """One drawn node: a batch, or a group of batches of one side, material and holder."""

    lines: list[str]
    material: str | None
    side: str
    origin: bool
    end: bool


def _group_key(node: Mapping[str, Any], coarse: bool) -> str:
    if node["side"] == "root":
        return "root"
    base = f"{node['side']}|{node['material']}"
    if coarse:
        return base
    if node["origin"]:
        return f"{base}|origin|{node['origin']['facility']}"
    return f"{base}|{(node['holder'] or {}).get('code')}"


def draw_genealogy(
    genealogy_: Mapping[str, Any], listed_in: str = "The JSON report lists"
) -> Graph:
    """The genealogy as SVG, drawn by Graphviz's ``dot``: mines on the left, end clients
    on the right, the mass each step took on its edge. Beyond ``MAX_DRAWN_NODES``
    batches, batches of the same side, material and holder (or mine) are drawn as one
    box with their count and total mass; beyond that again, by side and material (the
    note says so, and where every batch is listed: ``listed_in``)."""
    import graphviz

    nodes: list[Mapping[str, Any]] = genealogy_["nodes"]
    edges: list[Mapping[str, Any]] = genealogy_["edges"]
    note = None
    if len(nodes) <= MAX_DRAWN_NODES:
        group = {n["id"]: n["id"] for n in nodes}
    else:
        coarse = len({_group_key(n, False) for n in nodes}) > MAX_DRAWN_NODES
        group = {n["id"]: _group_key(n, coarse) for n in nodes}
        how = "side and material" if coarse else "side, material and holder (or mine)"
        note = (
            f"The genealogy has {len(nodes):,} batches: drawn as "
            f"{len(set(group.values())):,} boxes, batches of the same {how} together. "
            f"{listed_in} every batch."
        )
    boxes: dict[str, _Box] = {}
    members: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes:
        members.setdefault(group[node["id"]], []).append(node)
    for key, batch_nodes in members.items():
        boxes[key] = _box(batch_nodes)

    dot = graphviz.Digraph(
        "genealogy",
        graph_attr={
            "rankdir": "LR",
            "fontname": FONT,
            "fontsize": "10",
            "nodesep": "0.25",
            "ranksep": "0.6",
            "bgcolor": "white",
            "pad": "0.2",
        },
        node_attr={"fontname": FONT, "fontsize": "9", "shape": "box", "style": "rounded,filled"},
        edge_attr={"fontname": FONT, "fontsize": "8", "color": "#555555", "arrowsize": "0.6"},
    )
    ids = {key: f"n{i}" for i, key in enumerate(boxes)}
    origins, ends = [], []
    for key, box in boxes.items():
        attrs = {
            "fillcolor": MATERIAL_FILL.get(box.material or "", "#ffffff"),
            "color": "#1f4e79" if box.side == "root" else "#777777",
            "penwidth": "2.5" if box.side == "root" else "1",
        }
        if box.origin:
            attrs["peripheries"] = "2"
        dot.node(ids[key], _html_label(box.lines, bold_first=True), **attrs)
        if box.origin:
            origins.append(ids[key])
        elif box.end:
            ends.append(ids[key])
    totals: dict[tuple[str, str, str], list[Decimal]] = {}
    for edge in edges:
        a, b = group.get(edge["from"]), group.get(edge["to"])
        if a is None or b is None:
            continue
        entry = totals.setdefault((a, b, edge["operation"]), [Decimal(0), Decimal(0)])
        entry[0] += Decimal(edge["kg"])
        entry[1] += 1
    for (a, b, operation), (kg, count) in totals.items():
        times = f" ×{count}" if count > 1 else ""
        label = f"{format_kg(kg)} kg\\n{graphviz.escape(operation)}{times}"
        dot.edge(ids[a], ids[b], label=graphviz.nohtml(label))
    clients = _draw_clients(dot, nodes, group, ids)
    # Mines in the first column, end clients (or the last batches) in the last.
    for name, rank, column_ids in (
        ("origins", "min", origins),
        ("ends", "max", clients or ends),
    ):
        with dot.subgraph(name=name) as column:
            column.attr(rank=rank)
            for node_id in column_ids:
                column.node(node_id)
    try:
        svg = dot.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return Graph(None, "Graphviz (dot) is not installed here: the genealogy is not drawn.")
    start = svg.find("<svg")
    return Graph(svg[start:] if start >= 0 else svg, note)


def _box(batch_nodes: Sequence[Mapping[str, Any]]) -> _Box:
    first = batch_nodes[0]
    holder = first["holder"] or {}
    origin = first["origin"]
    if len(batch_nodes) == 1:
        lines = [
            str(first["batch"] or "lot not shown"),
            f"{first['material']} · {format_kg(first['initial_kg'])} kg",
            f"holder {holder.get('code')} ({holder.get('country')})"
            if holder.get("code")
            else "holder not shown",
        ]
        if first["status"] and first["status"] != "active":
            lines[1] += f" · {str(first['status']).replace('_', ' ')}"
        elif first["remaining_kg"] != first["initial_kg"]:
            lines[1] += f" ({format_kg(first['remaining_kg'])} kg left)"
    else:
        total = sum((Decimal(n["initial_kg"] or 0) for n in batch_nodes), Decimal(0))
        holders = {(n["holder"] or {}).get("code") for n in batch_nodes}
        lines = [
            f"{len(batch_nodes):,} {first['material']} batches",
            f"{format_kg(total)} kg in all",
            f"holder {holder.get('code') or 'not shown'}"
            if len(holders) == 1
            else f"{len(holders)} holders",
        ]
    if origin:
        if len(batch_nodes) == 1 or len({str(n["origin"]) for n in batch_nodes}) == 1:
            lines.append(f"{origin['kind']} at {origin['facility']}, {origin['country']}")
            if origin.get("quota"):
                lines.append(f"quota {origin['quota']}")
        else:
            lines.append(f"{origin['kind']}: several origins")
    return _Box(
        lines,
        first["material"],
        first["side"],
        origin=bool(origin),
        end=any(n["end"] for n in batch_nodes),
    )


def _html_label(lines: Sequence[str], bold_first: bool = False) -> str:
    """A Graphviz HTML-like label; every text is escaped, so lot codes and names are
    shown as written, never read as markup."""
    cells = []
    for n, line in enumerate(lines):
        text = html_escape.escape(line, quote=True)
        if n == 0 and bold_first:
            text = f"<b>{text}</b>"
        cells.append(f'<tr><td align="left">{text}</td></tr>')
    table = '<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
    return f"<{table}{''.join(cells)}</table>>"


def _draw_clients(
    dot: Any,
    nodes: Sequence[Mapping[str, Any]],
    group: Mapping[str, str],
    ids: Mapping[str, str],
) -> list[str]:
    """Sales and exports of the batch and everything downstream, to the actor that bought
    or received them: the end clients at the right-hand edge of the drawing. Beyond
    ``MAX_DRAWN_CLIENTS`` the clients that took least are drawn as one."""
    import graphviz

    flows: dict[tuple[str, str, str], list[Any]] = {}
    clients: dict[str, Mapping[str, Any]] = {}
    taken: dict[str, Decimal] = {}
    for node in nodes:
        if node["side"] == "upstream":
            continue
        received = any(t["kind"] == "receipt" for t in node["trades"])
        for trade in node["trades"]:
            if trade["kind"] not in ("sale", "export") or not trade["to"]:
                continue
            # A client the caller may not see (a redacted party) is drawn as one
            # anonymous ellipse: which of them are the same company is not shown either.
            client = trade["to"] if trade["to"].get("code") else HIDDEN_CLIENT
            clients[client["code"]] = client
            taken[client["code"]] = taken.get(client["code"], Decimal(0)) + Decimal(trade["kg"])
            how = "sold" if trade["kind"] == "sale" else "exported"
            if trade["kind"] == "export":
                how += f" to {trade['destination_country']}" + (", received" if received else "")
            flow = flows.setdefault((group[node["id"]], client["code"], how), [Decimal(0), 0])
            flow[0] += Decimal(trade["kg"])
            flow[1] += 1
    biggest = sorted(taken, key=lambda code: (-taken[code], code))[:MAX_DRAWN_CLIENTS]
    others = sorted(set(clients) - set(biggest))
    drawn: dict[str, str] = {}  # client code -> drawn node id
    for n, code in enumerate(sorted(biggest)):
        client = clients[code]
        drawn[code] = f"c{n}"
        lines = (
            ["clients not shown", "(not a party to these trades)"]
            if client is HIDDEN_CLIENT
            else [code, str(client.get("name") or ""), str(client.get("country") or "")]
        )
        dot.node(drawn[code], _html_label(lines), **CLIENT_STYLE)
    if others:
        for code in others:
            drawn[code] = "c-others"
        lines = [
            f"{len(others):,} more clients",
            f"{format_kg(sum((taken[c] for c in others), Decimal(0)))} kg",
        ]
        dot.node("c-others", _html_label(lines), **CLIENT_STYLE)
    merged: dict[tuple[str, str, str], list[Any]] = {}
    for (box, code, how), (kg, count) in flows.items():
        flow = merged.setdefault((ids[box], drawn[code], how), [Decimal(0), 0])
        flow[0] += kg
        flow[1] += count
    for (box_id, client_id, how), (kg, count) in merged.items():
        times = f" ×{count}" if count > 1 else ""
        label = f"{graphviz.escape(how)}\\n{format_kg(kg)} kg{times}"
        dot.edge(box_id, client_id, label=graphviz.nohtml(label), style="dashed", color="#b08900")
    return sorted(set(drawn.values()))
