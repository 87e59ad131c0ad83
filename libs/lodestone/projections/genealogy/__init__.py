"""The genealogy read model: batches, the input->output edges between them with masses,
custody and trades; upstream and downstream traversal and per-element provenance shares.

``rows`` (the row types), ``view`` (the writer and the view interface), ``projection``
(events -> rows), ``traversal`` and ``provenance`` (queries over any view, and the
shares the view keeps per batch) need no database; ``schema`` describes the tables once, and ``sqlite`` and ``postgres`` are the
two views (import them from there: this package does not, so that its readers need no
SQL driver).
"""

from lodestone.projections.genealogy.projection import (
    CORRECTED_COLUMNS,
    NAME,
    VERSION,
    GenealogyProjection,
)
from lodestone.projections.genealogy.provenance import (
    SHARE,
    OriginShare,
    Shares,
    answer,
    pooled,
    provenance,
)
from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, ProvenanceRow, Trade
from lodestone.projections.genealogy.traversal import Lineage, downstream, upstream
from lodestone.projections.genealogy.view import GenealogyView, Writer

__all__ = [
    "CORRECTED_COLUMNS",
    "NAME",
    "SHARE",
    "VERSION",
    "BatchRow",
    "Edge",
    "GenealogyProjection",
    "GenealogyView",
    "Lineage",
    "Name",
    "OriginShare",
    "ProvenanceRow",
    "Shares",
    "Trade",
    "Writer",
    "answer",
    "downstream",
    "pooled",
    "provenance",
    "upstream",
]
