"""Anomalies as a caller may see them: the rules evaluated over the anomalies read model,
with each anomaly's review status, filtered and paged.

Redaction, per caller:
- auditors, regulators and admins see everything: companies by code, batch references,
  work orders, licence numbers, prices, end users, who reviewed and why;
- analysts see every anomaly's rule, severity, reason, figures and evidence times, with
  companies pseudonymised (``company-`` and ten hex digits, stable for the process's
  pseudonym key, so that anomalies about one company can be told apart from others'),
  facilities described by kind and country, and batch references, work orders, licence
  numbers, prices and end users withheld;
- operators see the anomalies about their own company, in full for the steps they are
  party to, and with the companies, batches and prices of other steps withheld as for
  analysts.
The ``actor`` filter matches a company as the caller sees it (its code, or the
pseudonym it is shown by), so a hidden company cannot be found by its code.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast
from uuid import UUID

from lodestone.domain.access import SEES_ALL_COMMERCIAL, Principal, Role
from lodestone.domain.refusals import InvalidInput, NotFound
from lodestone.ledger.stores import EventRows
from lodestone.projections.anomalies import (
    RULE_IDS,
    RULES,
    SEVERITIES,
    AnomaliesView,
    Anomaly,
    EventRef,
    Facts,
    Figure,
    Hidden,
    Ref,
    RefusedSource,
    Thresholds,
    evaluate,
    review_status,
)
from lodestone.projections.anomalies import rule as rule_of
from lodestone.reads.batches import REDACTED
from lodestone.reads.json import plain
from lodestone.reads.types import (
    AnomalyDecision,
    AnomalyDetail,
    AnomalyEvent,
    AnomalyPage,
    AnomalyRules,
    AnomalySummary,
)

STATUSES = ("open", "acknowledged", "dismissed")
MAX_LIMIT = 500
PSEUDONYM_PREFIX = "company-"

ViewSource = Callable[[], AnomaliesView]


@dataclass(frozen=True)
class Evaluation:
    """What the rules found in one state of the view."""

    facts: Facts
    anomalies: list[Anomaly]

    @cached_property
    def by_id(self) -> dict[UUID, Anomaly]:
        return {a.id: a for a in self.anomalies}

    @cached_property
    def batch_parties(self) -> dict[UUID, set[UUID]]:
        """Who made, sold, bought, exported or received each batch."""
        found: dict[UUID, set[UUID]] = {}
        for batch in self.facts.batches.values():
            if batch.actor_id is not None:
                found.setdefault(batch.id, set()).add(batch.actor_id)
        for movement in self.facts.movements:
            for party in (movement.from_id, movement.to_id):
                if party is not None:
                    found.setdefault(movement.batch_id, set()).add(party)
        return found


class AnomalyBook:
    """The anomalies of a view, evaluated once per state of it.

    ``view`` gives the view caught up (read-your-writes); ``state`` names the state it is
    in (e.g. the embedded projector's position), so that an evaluation is kept until the
    view moves on; without it every read evaluates afresh. ``refused``: where refused
    attempts are counted, if anywhere. ``pseudonym_key``: the secret pseudonyms are made
    with (one per deployment keeps them stable across restarts)."""

    def __init__(
        self,
        view: ViewSource,
        thresholds: Thresholds | None = None,
        *,
        pseudonym_key: bytes,
        refused: RefusedSource | None = None,
        state: Callable[[], Hashable] | None = None,
    ) -> None:
        self._view = view
        self.thresholds = thresholds or Thresholds()
        self.pseudonym_key = pseudonym_key
        self._refused = refused
        self._state = state
        self._lock = threading.Lock()
        self._kept: tuple[Hashable, Evaluation] | None = None

    def read(self) -> Evaluation:
        view = self._view()
        refused = tuple(self._refused.refused_attempts()) if self._refused else ()
        key = None if self._state is None else (self._state(), refused)
        with self._lock:
            if key is not None and self._kept is not None and self._kept[0] == key:
                return self._kept[1]
        facts = view.facts()
        found = Evaluation(facts, evaluate(facts, self.thresholds, refused))
        if key is not None:
            with self._lock:
                self._kept = (key, found)
        return found

    def pseudonym(self, company: UUID) -> str:
        digest = hmac.new(self.pseudonym_key, company.bytes, hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:10]


class _Lens:
    """One caller's view of one evaluation: what it may see, and how each thing a reason
    or evidence names is shown to it."""

    def __init__(self, book: AnomalyBook, evaluation: Evaluation, principal: Principal) -> None:
        self.book = book
        self.facts = evaluation.facts
        self.evaluation = evaluation
        self.principal = principal
        self.full = principal.role in SEES_ALL_COMMERCIAL
        self.me = principal.actor if principal.role is Role.OPERATOR else None

    def may_see(self, anomaly: Anomaly) -> bool:
        if self.full or self.principal.role is Role.ANALYST:
            return True
        return self.me is not None and self.me in anomaly.companies

    # --- what is shown of each thing ------------------------------------------------------

    def shows_company(self, company: UUID, anomaly: Anomaly) -> bool:
        if self.full or company == self.me:
            return True
        return self.me is not None and any(
            self.me in e.parties and company in e.parties for e in anomaly.events
        )

    def company(self, company: UUID, anomaly: Anomaly, *, named: bool = False) -> str:
        if not self.shows_company(company, anomaly):
            return self.book.pseudonym(company)
        party = self.facts.parties.get(company)
        if party is None:
            return str(company)
        return f"{party.code} ({party.name})" if named else party.code

    def facility(self, facility: UUID, anomaly: Anomaly) -> str:
        party = self.facts.parties.get(facility)
        if party is None:
            return "an unknown facility"
        owner = party.owner_id
        kind = party.facility_kind.replace("_", " ") or "facility"
        if self.full or (owner is not None and self.shows_company(owner, anomaly)):
            return f"{kind} {party.code}"
        return f"a {kind} in {party.country}"

    def shows_batch(self, batch: UUID) -> bool:
        return self.full or (
            self.me is not None and self.me in self.evaluation.batch_parties.get(batch, ())
        )

    def batch(self, batch: UUID) -> str | None:
        if not self.shows_batch(batch):
            return None
        found = self.facts.batches.get(batch)
        return found.reference if found and found.reference else str(batch)

    def step(self, step: UUID) -> str | None:
        found = self.facts.steps.get(step)
        if found is None:
            return None
        return found.reference if self.full or found.actor_id == self.me else None

    def licence(self, licence: UUID) -> str | None:
        found = self.facts.licences.get(licence)
        if found is None:
            return None
        shown = self.full or (
            self.me is not None and self.me in (found.holder_id, found.consignee_id)
        )
        return found.number if shown else None

    def sees(self, parties: frozenset[UUID] | None) -> bool:
        return parties is None or self.full or (self.me is not None and self.me in parties)

    # --- an anomaly ---------------------------------------------------------------------------

    def reason(self, anomaly: Anomaly) -> str:
        words: list[str] = []
        for part in anomaly.reason:
            if isinstance(part, str):
                words.append(part)
            elif isinstance(part, Hidden):
                words.append(part.text if self.sees(part.parties) else "[withheld]")
            elif isinstance(part, Ref):
                words.append(self._ref(part, anomaly))
        return "".join(words)

    def _ref(self, ref: Ref, anomaly: Anomaly) -> str:
        if ref.kind == "company":
            return self.company(ref.id, anomaly, named=True)
        if ref.kind == "facility":
            return self.facility(ref.id, anomaly)
        if ref.kind == "batch":
            return self.batch(ref.id) or "a batch"
        if ref.kind == "step":
            return self.step(ref.id) or "reference withheld"
        if ref.kind == "licence":
            return self.licence(ref.id) or "[withheld]"
        return "?"

    def summary(self, anomaly: Anomaly) -> AnomalySummary:
        reviews = self.facts.reviews.get(anomaly.id, [])
        return {
            "id": str(anomaly.id),
            "href": f"/v1/anomalies/{anomaly.id}",
            "rule": anomaly.rule,
            "title": rule_of(anomaly.rule).title,
            "severity": anomaly.severity,
            "status": review_status(reviews),
            "reason": self.reason(anomaly),
            "occurred_at": anomaly.occurred_at.isoformat(),
            "companies": [self.company(c, anomaly) for c in anomaly.companies],
            "elements": list(anomaly.elements),
            "countries": list(anomaly.countries),
        }

    def detail(self, anomaly: Anomaly, rows: EventRows | None) -> AnomalyDetail:
        positions = self._positions(anomaly.events, rows)
        summary = self.summary(anomaly)
        return cast(
            AnomalyDetail,
            {
                **summary,
                "evidence": {
                    "events": [self._event(e, positions) for e in anomaly.events],
                    "batches": [self.batch(b) or REDACTED for b in anomaly.batches],
                    "licences": [self.licence(lic) or REDACTED for lic in anomaly.licences],
                    "figures": {
                        name: self._figure(figure) for name, figure in anomaly.figures.items()
                    },
                },
                "reviews": [self._decision(r) for r in self.facts.reviews.get(anomaly.id, [])],
            },
        )

    def _figure(self, figure: Figure) -> Any:
        return plain(figure.value) if self.sees(figure.parties) else REDACTED

    def _event(self, event: EventRef, positions: Mapping[tuple[UUID, int], int]) -> AnomalyEvent:
        shown: AnomalyEvent = {
            "type": event.type,
            "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        }
        if not self.sees(event.parties):
            shown["redacted"] = True
            return shown
        shown["event_id"] = event.id
        shown["aggregate_id"] = str(event.aggregate_id)
        shown["version"] = event.version
        shown["position"] = positions.get((event.aggregate_id, event.version))
        if event.batch_id is not None:
            shown["batch"] = self.batch(event.batch_id)
        return shown

    def _positions(
        self, events: Sequence[EventRef], rows: EventRows | None
    ) -> dict[tuple[UUID, int], int]:
        wanted = {e.aggregate_id for e in events if self.sees(e.parties)}
        if rows is None or not wanted:
            return {}
        return {
            (row.aggregate_id, row.version): row.position for row in rows.for_aggregates(wanted)
        }

    def _decision(self, review: Any) -> AnomalyDecision:
        decision: AnomalyDecision = {
            "status": review.status,
            "at": review.reviewed_at.isoformat(),
            "by_role": review.by_role,
        }
        # A note may name companies: the authorities and the reviewer itself read it.
        if self.full or review.reviewed_by == self.principal.id:
            decision["by"] = review.reviewed_by
            decision["note"] = review.note
        return decision


# --- the queries ------------------------------------------------------------------------------


def _one_of(value: str | None, allowed: Iterable[str], field: str) -> str | None:
    if value is None:
        return None
    options = tuple(allowed)
    if value not in options:
        raise InvalidInput(field, "one-of", f"{value!r} is not one of {', '.join(options)}")
    return value


def list_anomalies(
    book: AnomalyBook,
    principal: Principal,
    *,
    rule: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    actor: str | None = None,
    element: str | None = None,
    country: str | None = None,
    batch: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> AnomalyPage:
    """The anomalies the caller may see that match every filter given, newest first.
    ``batch`` (ACTOR/LOT) matches the anomalies about that batch, for a
    caller who may see its reference (for others it matches nothing: a reference named
    would otherwise tie a pseudonym to the company in it)."""
    _one_of(rule, RULE_IDS, "rule")
    _one_of(severity, SEVERITIES, "severity")
    _one_of(status, STATUSES, "status")
    if offset < 0:
        raise InvalidInput("offset", "not-negative", "offset must be 0 or more")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", "page-size", f"limit must be between 1 and {MAX_LIMIT}")
    evaluation = book.read()
    lens = _Lens(book, evaluation, principal)
    wanted = actor.casefold() if actor else None
    named = None
    if batch is not None:
        named = next(
            (b.id for b in evaluation.facts.batches.values() if b.reference == batch), None
        )
        if named is not None and not lens.shows_batch(named):
            named = None
    found: list[AnomalySummary] = []
    for anomaly in sorted(
        evaluation.anomalies, key=lambda a: (a.occurred_at, str(a.id)), reverse=True
    ):
        if not lens.may_see(anomaly):
            continue
        if rule and anomaly.rule != rule:
            continue
        if severity and anomaly.severity != severity:
            continue
        if element and element not in anomaly.elements:
            continue
        if country and country.upper() not in anomaly.countries:
            continue
        if batch is not None and (named is None or named not in anomaly.subjects):
            continue
        summary = lens.summary(anomaly)
        if status and summary["status"] != status:
            continue
        if wanted and wanted not in (c.casefold() for c in summary["companies"]):
            continue
        found.append(summary)
    return {
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "anomalies": found[offset : offset + limit],
    }


def _visible(book: AnomalyBook, id: UUID, principal: Principal) -> tuple[_Lens, Anomaly]:
    evaluation = book.read()
    lens = _Lens(book, evaluation, principal)
    anomaly = evaluation.by_id.get(id)
    if anomaly is None or not lens.may_see(anomaly):
        # The same answer for "none" and "not yours": an id tells nothing.
        raise NotFound("", "exists", f"anomaly {id} is not known")
    return lens, anomaly


def anomaly_detail(
    book: AnomalyBook, id: UUID, principal: Principal, rows: EventRows | None = None
) -> AnomalyDetail:
    """One anomaly with its evidence (events with their store positions from ``rows``,
    batches, licences, figures) and every review of it."""
    lens, anomaly = _visible(book, id, principal)
    return lens.detail(anomaly, rows)


def reviewable(book: AnomalyBook, id: UUID, principal: Principal) -> Anomaly:
    """The anomaly a review names, as the caller may see it; NotFound otherwise."""
    return _visible(book, id, principal)[1]


def naming(
    book: AnomalyBook, ids: Iterable[UUID], principal: Principal
) -> list[tuple[Anomaly, str]]:
    """The anomalies the caller may see about any of these batches or steps (a
    report's genealogy), each with its reason as the caller reads it, in the order they
    happened."""
    wanted = set(ids)
    evaluation = book.read()
    lens = _Lens(book, evaluation, principal)
    return [
        (anomaly, lens.reason(anomaly))
        for anomaly in evaluation.anomalies
        if lens.may_see(anomaly) and wanted.intersection(anomaly.subjects)
    ]


def rules(book: AnomalyBook) -> AnomalyRules:
    configured = book.thresholds.as_text()
    return {
        "rules": [
            {
                "id": r.id,
                "title": r.title,
                "definition": r.definition,
                "thresholds": {name: configured[name] for name in r.thresholds},
            }
            for r in RULES
        ]
    }


def rules_description(thresholds: Thresholds | None = None) -> str:
    """The rules and their exact definitions, as Markdown for the API document."""
    values = (thresholds or Thresholds()).as_text()
    lines = []
    for r in RULES:
        defaults = ", ".join(f"`{name}` = {values[name]}" for name in r.thresholds)
        lines.append(
            f"- **`{r.id}`** ({r.title}): {r.definition}"
            + (f" Defaults: {defaults}." if defaults else "")
        )
    return "\n".join(lines)
