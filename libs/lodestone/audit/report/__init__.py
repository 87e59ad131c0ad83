"""An audit report for one batch: everything an auditor or a regulator asks of it, in
one document. ``build`` gathers it as plain JSON; ``html`` and ``pdf`` render that JSON
alone, so a report kept as JSON can be rendered again later exactly as it was.

The report shows client names, contracts and prices: it is for auditors, regulators
and admins only.

One job per module:

- ``gather``: ``build``, the report's sections from the event store and the genealogy;
- ``context``: what the sections, sentences and rules read (the ``Context``);
- ``anomalies``: the anomaly rules, one function and one row of ``RULES`` each;
- ``wording``: the sentence for each event type;
- ``render``: HTML (Jinja, ``templates/``) and PDF (WeasyPrint);
- ``graph``: the genealogy drawn by Graphviz;
- ``formats``: masses, shares and times spelled for people;
- exact JSON values and reporter labels come from the query layer (``lodestone.reads``).
"""

from lodestone.audit.report.anomalies import LATE_AFTER
from lodestone.audit.report.formats import format_kg, format_share, format_time
from lodestone.audit.report.gather import FORMAT, build
from lodestone.audit.report.graph import MAX_DRAWN_CLIENTS, MAX_DRAWN_NODES, Graph, draw_genealogy
from lodestone.audit.report.render import html, pdf

__all__ = [
    "FORMAT",
    "LATE_AFTER",
    "MAX_DRAWN_CLIENTS",
    "MAX_DRAWN_NODES",
    "Graph",
    "build",
    "draw_genealogy",
    "format_kg",
    "format_share",
    "format_time",
    "html",
    "pdf",
]
