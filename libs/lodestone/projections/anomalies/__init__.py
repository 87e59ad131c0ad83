"""The anomalies read model: the facts the anomaly rules need (batches as made and
corrected, transformations and what they took, sales, exports, receipts and moves, who
is who, licences) and the reviews of anomalies; the rules themselves, evaluated over
those facts when the view is read.

``rows`` (row types), ``facts`` (all of them at once), ``view`` (writer and view
interface), ``projection`` (events -> rows), ``thresholds``, ``anomaly`` (what a rule
finds) and ``rules`` need no database; ``schema`` describes the tables once, and
``sqlite`` and ``postgres`` are the two views (import them from there).
"""

from lodestone.projections.anomalies.anomaly import (
    CRITICAL,
    INFO,
    SEVERITIES,
    WARNING,
    Anomaly,
    EventRef,
    Figure,
    Hidden,
    Ref,
    anomaly_id,
    event_id,
)
from lodestone.projections.anomalies.facts import Facts
from lodestone.projections.anomalies.projection import NAME, VERSION, AnomaliesProjection
from lodestone.projections.anomalies.rules import (
    RULE_IDS,
    RULES,
    RefusedAttempts,
    RefusedSource,
    Rule,
    evaluate,
    review_status,
    rule,
)
from lodestone.projections.anomalies.thresholds import Thresholds
from lodestone.projections.anomalies.view import AnomaliesView, Writer

__all__ = [
    "CRITICAL",
    "INFO",
    "NAME",
    "RULES",
    "RULE_IDS",
    "SEVERITIES",
    "VERSION",
    "WARNING",
    "AnomaliesProjection",
    "AnomaliesView",
    "Anomaly",
    "EventRef",
    "Facts",
    "Figure",
    "Hidden",
    "Ref",
    "RefusedAttempts",
    "RefusedSource",
    "Rule",
    "Thresholds",
    "Writer",
    "anomaly_id",
    "evaluate",
    "event_id",
    "review_status",
    "rule",
]
