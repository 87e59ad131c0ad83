"""What an auditor should look at first: the anomaly rules. Each rule is a small function
that yields its findings (severity, the event found, the sentence); ``RULES`` names each
with the ``kind`` the report gives it. A new rule is one function and one row there."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lodestone.audit.report.context import Context, is_correction, lag_days
from lodestone.audit.report.formats import format_share, kg
from lodestone.audit.report.wording import summary
from lodestone.domain.values import RARE_EARTHS
from lodestone.projections import genealogy
from lodestone.reads.history import Entry

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}
#: A step recorded this long after it happened is flagged: late reports are how
#: material laundered into the chain is usually made to look old.
LATE_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class Evidence:
    """What the rules look at."""

    context: Context
    shares: Mapping[str, list[genealogy.OriginShare]]  # provenance per element
    verification: Mapping[str, Any]  # the report's verification section


@dataclass(frozen=True)
class Finding:
    severity: str
    entry: Entry | None  # the event found; None: the report's batch as a whole
    detail: str


@dataclass(frozen=True)
class Rule:
    kind: str  # the anomaly's ``kind`` in the report
    find: Callable[[Evidence], Iterable[Finding]]


def anomalies(
    context: Context,
    shares: Mapping[str, list[genealogy.OriginShare]],
    verification: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Every rule's findings, most severe first."""
    evidence = Evidence(context, shares, verification)
    found = [_anomaly(context, rule.kind, f) for rule in RULES for f in rule.find(evidence)]
    # Stable: one rule's findings about the same event keep the order it found them in.
    found.sort(key=lambda a: (SEVERITY_ORDER[a["severity"]], a["position"] or 0, a["kind"]))
    return found


def _anomaly(context: Context, kind: str, finding: Finding) -> dict[str, Any]:
    entry = finding.entry
    return {
        "kind": kind,
        "severity": finding.severity,
        # A batch's ACTOR/LOT, a step's work order or a licence's number.
        "subject": context.ref(entry.aggregate_id) if entry else context.batch.reference,
        "position": entry.position if entry else None,
        "type": entry.type if entry else None,
        "detail": finding.detail,
    }


# --- the rules ----------------------------------------------------------------------------


def _verification_failed(evidence: Evidence) -> Iterator[Finding]:
    if not evidence.verification["ok"]:
        yield Finding(CRITICAL, None, str(evidence.verification["error"]))


def _not_intact(evidence: Evidence) -> Iterator[Finding]:
    context = evidence.context
    for entry in [*context.events, *context.licence_events]:
        if not entry.intact:
            yield Finding(
                CRITICAL,
                entry,
                f"the stored {entry.type} (version {entry.version}) of "
                f"{context.ref(entry.aggregate_id)} no longer matches its hash: it was "
                "altered after it was recorded",
            )


def _late_report(evidence: Evidence) -> Iterator[Finding]:
    context = evidence.context
    for late in _late_steps(context.events):
        first = late[0]
        what = ", ".join(
            f"{e.type.rpartition('.')[2]} of {context.ref(e.aggregate_id)}" for e in late[:5]
        )
        if len(late) > 5:
            what += f" and {len(late) - 5} more events of the same step"
        happened = first.occurred_at.date().isoformat() if first.occurred_at else "?"
        yield Finding(
            WARNING,
            first,
            f"recorded {lag_days(first)} days after it happened ({happened}): {what}",
        )


def _late_steps(events: Sequence[Entry]) -> list[list[Entry]]:
    """Events recorded more than ``LATE_AFTER`` after they happened, one group per
    reported step: the events one command stores share its reporter and event time
    (a transformation's outputs, the inputs it consumed and its record)."""
    groups: dict[tuple[datetime, str | None], list[Entry]] = {}
    for entry in events:
        if entry.occurred_at and entry.recorded_at - entry.occurred_at > LATE_AFTER:
            groups.setdefault((entry.occurred_at, entry.reported_by), []).append(entry)
    return list(groups.values())


def _quarantine(evidence: Evidence) -> Iterator[Finding]:
    """A hold still in force is a warning; one released since, for the record."""
    context = evidence.context
    for entry in context.events:
        if entry.type != "Batch.BatchQuarantined":
            continue
        name = context.ref(entry.aggregate_id)
        detail = (
            f"{name} quarantined by a {entry.facts.get('by_role')}: {entry.facts.get('reason')}"
        )
        end = _quarantine_end(context.events, entry)
        if end is None:
            yield Finding(WARNING, entry, detail + "; still quarantined")
        else:
            when = end.occurred_at.date().isoformat() if end.occurred_at else ""
            released = f"{detail}; released {when}: {end.facts.get('reason')}"
            yield Finding(INFO, entry, released)


def _quarantine_end(events: Sequence[Entry], quarantine: Entry) -> Entry | None:
    for entry in events:
        if (
            entry.aggregate_id == quarantine.aggregate_id
            and entry.position > quarantine.position
            and entry.type in ("Batch.BatchReleased", "Batch.BatchQuarantined")
        ):
            return entry if entry.type == "Batch.BatchReleased" else None
    return None


def _correction(evidence: Evidence) -> Iterator[Finding]:
    context = evidence.context
    for entry in context.events:
        if is_correction(entry):
            # A step that never happened is what laundering looks like afterwards.
            gone = entry.facts.get("reason") == "did-not-occur"
            yield Finding(
                WARNING if gone else INFO,
                entry,
                f"{context.ref(entry.aggregate_id)}: {summary(context, entry)}",
            )


def _untraced_input(evidence: Evidence) -> Iterator[Finding]:
    """Material a step took from outside the ledger; a warning if it carries rare earths."""
    context = evidence.context
    for entry in context.steps.values():
        for untraced in entry.facts.get("untraced_inputs", []):
            rare = sorted(
                e for e, share in (untraced.get("composition") or {}).items() if e in RARE_EARTHS
            )
            yield Finding(
                WARNING if rare else INFO,
                entry,
                f"{entry.facts.get('process')} ({context.ref(entry.aggregate_id)}) took "
                f"{kg(untraced.get('kg'))} of {untraced.get('name')} not traced in the ledger"
                + (
                    f", carrying rare earths ({', '.join(rare)})"
                    if rare
                    else " (no rare earths declared)"
                ),
            )


def _unattributed_provenance(evidence: Evidence) -> Iterator[Finding]:
    for element, origins in evidence.shares.items():
        for origin in origins:
            if origin.kind == "unattributed":
                yield Finding(
                    WARNING,
                    None,
                    f"{format_share(origin.share)} of the {element} ({kg(origin.kg)}) "
                    "traces back to no mine or recycling intake",
                )


RULES: tuple[Rule, ...] = (
    Rule("verification-failed", _verification_failed),
    Rule("not-intact", _not_intact),
    Rule("late-report", _late_report),
    Rule("quarantine", _quarantine),
    Rule("correction", _correction),
    Rule("untraced-input", _untraced_input),
    Rule("unattributed-provenance", _unattributed_provenance),
)
