"""The anomaly rules: each a pure function of the facts and the thresholds, evaluated
when the view is read.

Why at read time, not per event: every rule needs the whole picture (all a company ever
produced, bought and sold; a month's median price; a mine's history; where goods went
afterwards), and on Kafka the events of different batches arrive in any interleaving.
The facts are written order-independently (upserts keyed by ids); evaluating over all of
them at once gives the same anomalies whatever the order, on either database, after any
rebuild, and a changed threshold applies at the next read without a rebuild. The cost is
one pass over the facts per evaluation; the query layer keeps the result until the view
moves on.

``RULES`` names every rule with its exact definition (the API documents them from there);
``evaluate`` runs them all. Refused attempts are not ledger events: another store counts
them; ``evaluate`` takes them as ``refused`` (the extension point: any source of
``RefusedAttempts``), and without a source that rule finds nothing.
"""

from __future__ import annotations

import bisect
import decimal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Protocol
from uuid import UUID

from lodestone.domain.values import EXACT, RARE_EARTHS, ZERO, reo_kg
from lodestone.projections.anomalies.anomaly import (
    CRITICAL,
    SEVERITIES,
    WARNING,
    Anomaly,
    EventRef,
    Figure,
    Hidden,
    Part,
    Ref,
    anomaly_id,
)
from lodestone.projections.anomalies.facts import Facts
from lodestone.projections.anomalies.rows import BatchFact, MovementFact, ReviewFact
from lodestone.projections.anomalies.thresholds import Thresholds

#: Ratios to 20 significant digits (the masses themselves stay exact).
RATIO = decimal.Context(prec=20, rounding=decimal.ROUND_HALF_EVEN)
ONE = Decimal(1)
DAY = Decimal(86400)

#: Refusals that concern a licence or a quota (the domain's rule names).
LICENCE_RULES = frozenset(
    {
        "licence-kind",
        "licence-holder",
        "licence-validity",
        "licence-remaining",
        "licence-destination",
        "licence-consignee",
        "licence-end-user",
        "licence-item",
        "consignee-country",
        "quota",
    }
)

MOVEMENT_TYPES = {
    "sale": "Batch.CustodyTransferred",
    "export": "Batch.ShipmentExported",
    "receipt": "Batch.ShipmentReceived",
    "move": "Batch.BatchMoved",
}
CREATION_TYPES = {
    "mined": "Batch.OreExtracted",
    "recycled": "Batch.ScrapCollected",
    "produced": "Batch.Produced",
    "split": "Batch.SplitOff",
    "merged": "Batch.BatchesMerged",
}


# --- the extension point for refused attempts -------------------------------------------------


@dataclass(frozen=True)
class RefusedAttempts:
    """How many writes were refused for ``rule``, naming ``licence_id`` (or none) and
    made for ``actor_id`` (or unknown), the latest at ``last_at``."""

    rule: str
    count: int
    licence_id: UUID | None = None
    actor_id: UUID | None = None
    last_at: datetime | None = None


class RefusedSource(Protocol):
    """Whatever counts refused attempts (they are kept outside the ledger)."""

    def refused_attempts(self) -> Iterable[RefusedAttempts]: ...


# --- what the rules share ------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    definition: str  # exact, naming the thresholds it reads
    thresholds: tuple[str, ...]
    find: Callable[[Context], Iterable[Anomaly]]


class Context:
    """The facts and thresholds one evaluation reads, with what several rules derive."""

    def __init__(
        self, facts: Facts, thresholds: Thresholds, refused: Sequence[RefusedAttempts]
    ) -> None:
        self.facts = facts
        self.t = thresholds
        self.refused = refused

    def country(self, party: UUID | None) -> str | None:
        found = self.facts.parties.get(party) if party else None
        return found.country if found else None

    def owner(self, facility: UUID | None) -> UUID | None:
        found = self.facts.parties.get(facility) if facility else None
        return found.owner_id if found else None

    def balance(self, step_id: UUID) -> dict[str, tuple[Decimal, Decimal]] | None:
        """Per element: (kg the step's inputs carried, kg its outputs carry); None while
        an input batch is not known yet."""
        return self._balances.get(step_id)

    @cached_property
    def _balances(self) -> dict[UUID, dict[str, tuple[Decimal, Decimal]] | None]:
        found: dict[UUID, dict[str, tuple[Decimal, Decimal]] | None] = {}
        for step in self.facts.steps.values():
            carried = dict(step.untraced_kg)
            complete = True
            for taken in self.facts.inputs.get(step.id, ()):
                batch = self.facts.batches.get(taken.batch_id)
                if batch is None or batch.composition is None:
                    complete = False
                    break
                for element, share in batch.composition.items():
                    carried[element] = EXACT.add(
                        carried.get(element, ZERO), EXACT.multiply(taken.kg, share)
                    )
            if not complete:
                found[step.id] = None
                continue
            elements = set(carried) | set(step.output_kg)
            found[step.id] = {
                e: (carried.get(e, ZERO), step.output_kg.get(e, ZERO)) for e in elements
            }
        return found

    @cached_property
    def outputs(self) -> dict[UUID, list[BatchFact]]:
        """The batches each transformation made."""
        found: dict[UUID, list[BatchFact]] = {}
        for batch in self.facts.batches.values():
            if batch.kind == "produced" and batch.made_by is not None:
                found.setdefault(batch.made_by, []).append(batch)
        for made in found.values():
            made.sort(key=lambda b: str(b.id))
        return found

    def location(self, batch_id: UUID, before_version: int) -> UUID | None:
        """The facility the batch was at just before its event ``before_version``."""
        place = None
        batch = self.facts.batches.get(batch_id)
        if batch is not None:
            place = batch.facility_id
        for movement in self._places.get(batch_id, ()):
            if movement.version >= before_version:
                break
            if movement.facility_id is not None:
                place = movement.facility_id
        return place

    @cached_property
    def _places(self) -> dict[UUID, list[MovementFact]]:
        found: dict[UUID, list[MovementFact]] = {}
        for movement in self.facts.movements:
            if movement.kind in ("sale", "receipt", "move"):
                found.setdefault(movement.batch_id, []).append(movement)
        for moves in found.values():
            moves.sort(key=lambda m: m.version)
        return found

    def composition(self, batch_id: UUID) -> Mapping[str, Decimal] | None:
        batch = self.facts.batches.get(batch_id)
        return batch.composition if batch else None

    def live(self, batch: BatchFact | None) -> bool:
        return batch is not None and batch.status != "void"


def _content(kg: Decimal, composition: Mapping[str, Decimal] | None, element: str) -> Decimal:
    return EXACT.multiply(kg, (composition or {}).get(element, ZERO))


def _kg(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.001"), rounding=decimal.ROUND_HALF_EVEN)
    text = format(rounded.normalize(), ",f")
    return f"{text} kg"


def _pct(ratio: Decimal) -> str:
    """A share as a percentage to two places at most: 99.95 %, 100.3 %, 50 %."""
    shown = (ratio * 100).quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN)
    return f"{format(shown.normalize(), 'f')} %"


def _ratio(value: Decimal) -> Decimal:
    """A ratio as shown in figures: 6 places."""
    return value.quantize(Decimal("0.000001"), rounding=decimal.ROUND_HALF_EVEN)


def _day(at: datetime | None) -> str:
    return at.astimezone(UTC).date().isoformat() if at else "?"


def _creation(batch: BatchFact) -> EventRef:
    return EventRef(
        batch.id,
        1,
        CREATION_TYPES.get(batch.kind or "", "Batch.Created"),
        batch.created_at,
        frozenset({batch.actor_id} if batch.actor_id else ()),
        batch.id,
    )


def _movement(movement: MovementFact) -> EventRef:
    parties = frozenset(p for p in (movement.from_id, movement.to_id) if p is not None)
    return EventRef(
        movement.batch_id,
        movement.version,
        MOVEMENT_TYPES.get(movement.kind or "", "Batch.Step"),
        movement.occurred_at,
        parties,
        movement.batch_id,
    )


def _latest(events: Iterable[EventRef], default: datetime) -> datetime:
    times = [e.occurred_at for e in events if e.occurred_at is not None]
    return max(times) if times else default


def _countries(*found: str | None) -> tuple[str, ...]:
    return tuple(sorted({c for c in found if c}))


def _rare(composition: Mapping[str, Decimal] | None) -> tuple[str, ...]:
    return tuple(sorted(e for e, s in (composition or {}).items() if e in RARE_EARTHS and s > 0))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- mass-balance stress ------------------------------------------------------------------------


def mass_balance_stress(ctx: Context) -> Iterator[Anomaly]:
    t = ctx.t
    for step in sorted(ctx.facts.steps.values(), key=lambda s: (s.occurred_at, str(s.id))):
        balance = ctx.balance(step.id)
        if balance is None:
            continue
        stressed: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for element in sorted(balance):
            carried, made = balance[element]
            if element not in RARE_EARTHS or made < t.stress_min_kg or carried <= ZERO:
                continue
            share = RATIO.divide(made, carried)
            if share > t.stress_share:
                stressed[element] = (carried, made, share)
        if not stressed:
            continue
        over = any(share > ONE for _, _, share in stressed.values())
        outputs = ctx.outputs.get(step.id, [])
        inputs = [i.batch_id for i in ctx.facts.inputs.get(step.id, ())]
        parts: list[Part] = [
            f"a {step.process.replace('_', ' ')} step (",
            Ref("step", step.id),
            ") by ",
            Ref("company", step.actor_id),
            " at ",
            Ref("facility", step.facility_id),
            " put out ",
        ]
        parts.append(
            ", ".join(
                f"{_pct(share)} of the {element} its inputs carried ({_kg(made)} of {_kg(carried)})"
                for element, (carried, made, share) in stressed.items()
            )
        )
        parts.append(
            f": within its declared tolerance of {_pct(step.tolerance)}, above the "
            f"{_pct(t.stress_share)} that is flagged"
            + ("; more came out than went in" if over else "")
        )
        event = EventRef(
            step.id,
            1,
            "Transformation.BatchTransformed",
            step.occurred_at,
            frozenset({step.actor_id}),
        )
        yield Anomaly(
            anomaly_id("mass-balance-stress", str(step.id)),
            "mass-balance-stress",
            CRITICAL if over else WARNING,
            tuple(parts),
            step.occurred_at,
            (step.actor_id,),
            events=(event,),
            batches=tuple(dict.fromkeys([*inputs, *(b.id for b in outputs)])),
            about=(step.id, *(b.id for b in outputs)),
            figures={
                "process": Figure(step.process),
                "tolerance": Figure(step.tolerance),
                "stress_share": Figure(t.stress_share),
                "elements": Figure(
                    {
                        element: {"in_kg": carried, "out_kg": made, "share": _ratio(share)}
                        for element, (carried, made, share) in stressed.items()
                    }
                ),
            },
            elements=tuple(stressed),
            countries=_countries(ctx.country(step.facility_id)),
        )


# --- smuggling cover ---------------------------------------------------------------------------


@dataclass
class _Ledger:
    sold: Decimal = ZERO
    produced: Decimal = ZERO
    bought: Decimal = ZERO
    received: Decimal = ZERO

    @property
    def had(self) -> Decimal:
        return self.produced + self.bought + self.received


def smuggling_cover(ctx: Context) -> Iterator[Anomaly]:
    books: dict[tuple[UUID, str], _Ledger] = {}
    outflows: dict[tuple[UUID, str], list[MovementFact]] = {}
    for batch in ctx.facts.batches.values():
        made = batch.kind in ("mined", "recycled", "produced") and ctx.live(batch)
        if made and batch.actor_id and batch.material and batch.initial_kg is not None:
            books.setdefault(
                (batch.actor_id, batch.material), _Ledger()
            ).produced += batch.initial_kg
    for movement in ctx.facts.movements:
        moved = ctx.facts.batches.get(movement.batch_id)
        if moved is None or moved.material is None or movement.kg is None:
            continue
        material = moved.material
        if movement.kind in ("sale", "export") and movement.from_id is not None:
            key = (movement.from_id, material)
            books.setdefault(key, _Ledger()).sold += movement.kg
            outflows.setdefault(key, []).append(movement)
        if movement.kind == "sale" and movement.to_id is not None:
            books.setdefault((movement.to_id, material), _Ledger()).bought += movement.kg
        if movement.kind == "receipt" and movement.to_id is not None:
            books.setdefault((movement.to_id, material), _Ledger()).received += movement.kg
    for (actor, material), book in sorted(books.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        limit = EXACT.multiply(book.had, ONE + ctx.t.smuggling_margin)
        if book.sold <= limit:
            continue
        moves = outflows.get((actor, material), [])
        events = tuple(_movement(m) for m in moves)
        excess = book.sold - book.had
        yield Anomaly(
            anomaly_id("smuggling-cover", f"{actor}:{material}"),
            "smuggling-cover",
            CRITICAL,
            (
                Ref("company", actor),
                f" sold or exported {_kg(book.sold)} of {material} but produced "
                f"{_kg(book.produced)}, bought {_kg(book.bought)} and received "
                f"{_kg(book.received)} of it: {_kg(excess)} more than it ever had",
            ),
            _latest(events, EPOCH),
            (actor,),
            events=events,
            batches=tuple(dict.fromkeys(m.batch_id for m in moves)),
            figures={
                "material": Figure(material),
                "sold_kg": Figure(book.sold),
                "produced_kg": Figure(book.produced),
                "bought_kg": Figure(book.bought),
                "received_kg": Figure(book.received),
                "excess_kg": Figure(excess),
                "margin": Figure(ctx.t.smuggling_margin),
            },
            elements=tuple(sorted({e for m in moves for e in _rare(ctx.composition(m.batch_id))})),
            countries=_countries(ctx.country(actor)),
        )


# --- licence mismatch and refused attempts ----------------------------------------------------------


def licence_mismatch(ctx: Context) -> Iterator[Anomaly]:
    for movement in ctx.facts.movements:
        if movement.kind != "export" or movement.licence_id is None:
            continue
        licence = ctx.facts.licences.get(movement.licence_id)
        if licence is None or not licence.end_user or movement.end_user is None:
            continue
        if movement.end_user == licence.end_user:
            continue
        parties = frozenset(
            p for p in (movement.from_id, movement.to_id, licence.holder_id) if p is not None
        )
        batch = ctx.facts.batches.get(movement.batch_id)
        event = _movement(movement)
        exporter = movement.from_id or licence.holder_id
        yield Anomaly(
            anomaly_id("licence-mismatch", f"{movement.batch_id}:{movement.version}"),
            "licence-mismatch",
            WARNING,
            (
                "an export of ",
                Ref("batch", movement.batch_id),
                " by ",
                Ref("company", exporter),
                f" to {movement.destination_country} under licence ",
                Ref("licence", licence.id),
                " names the end user ",
                Hidden(repr(movement.end_user), parties),
                " where the licence names ",
                Hidden(repr(licence.end_user), parties),
                ": the same name in other letters, which the write side accepts",
            ),
            movement.occurred_at or EPOCH,
            tuple(p for p in (exporter, movement.to_id) if p is not None),
            events=(event,),
            batches=(movement.batch_id,),
            figures={
                "shipment_end_user": Figure(movement.end_user, parties),
                "licence_end_user": Figure(licence.end_user, parties),
                "destination_country": Figure(movement.destination_country or ""),
            },
            elements=_rare(batch.composition if batch else None),
            countries=_countries(ctx.country(exporter), movement.destination_country),
            licences=(licence.id,),
        )


def licence_refusals(ctx: Context) -> Iterator[Anomaly]:
    counts: dict[tuple[str, UUID], dict[str, int]] = {}
    latest: dict[tuple[str, UUID], datetime] = {}
    actors: dict[tuple[str, UUID], set[UUID]] = {}
    for attempt in ctx.refused:
        if attempt.rule not in LICENCE_RULES or attempt.count <= 0:
            continue
        if attempt.licence_id is not None:
            key = ("licence", attempt.licence_id)
        elif attempt.actor_id is not None:
            key = ("actor", attempt.actor_id)
        else:
            continue
        by_rule = counts.setdefault(key, {})
        by_rule[attempt.rule] = by_rule.get(attempt.rule, 0) + attempt.count
        if attempt.last_at is not None:
            latest[key] = max(latest.get(key, attempt.last_at), attempt.last_at)
        if attempt.actor_id is not None:
            actors.setdefault(key, set()).add(attempt.actor_id)
    for key, by_rule in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        total = sum(by_rule.values())
        if total < ctx.t.refusal_count:
            continue
        kind, id = key
        licence = ctx.facts.licences.get(id) if kind == "licence" else None
        companies = sorted(actors.get(key, set()), key=str)
        if licence is not None and licence.holder_id not in companies:
            companies.insert(0, licence.holder_id)
        if kind == "actor" and id not in companies:
            companies.insert(0, id)
        subject: list[Part] = (
            ["licence ", Ref("licence", id)] if kind == "licence" else [Ref("company", id)]
        )
        yield Anomaly(
            anomaly_id("licence-refusals", f"{kind}:{id}"),
            "licence-refusals",
            WARNING,
            (
                *subject,
                f": {total} attempts refused for licence or quota rules ("
                + ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items()))
                + ")",
            ),
            latest.get(key, EPOCH),
            tuple(companies),
            figures={"refused": Figure(dict(sorted(by_rule.items()))), "total": Figure(total)},
            countries=_countries(*(ctx.country(c) for c in companies)),
            licences=(id,) if licence is not None else (),
        )


# --- content from outside any quota --------------------------------------------------------------


def outside_quota_shares(facts: Facts) -> dict[UUID, dict[str, tuple[Decimal, Decimal]]]:
    """Per batch and rare earth it carries: (share of the content no input carried,
    share from recycled intakes), following mass through the genealogy with each step's
    inputs pooled per element (the provenance model). Children are worked out after
    their parents, iteratively (genealogies can be deep). A batch whose making is not
    known in full yet (its step, or a parent, still to arrive) is left out, and so are
    its descendants: the rule judges only what it can trace."""
    shares: dict[UUID, dict[str, tuple[Decimal, Decimal]]] = {}
    batches = facts.batches

    def parents(batch: BatchFact) -> list[tuple[UUID, Decimal]]:
        if batch.kind == "produced" and batch.made_by is not None:
            return [(i.batch_id, i.kg) for i in facts.inputs.get(batch.made_by, ())]
        if batch.kind == "merged":
            return [(i.batch_id, i.kg) for i in facts.inputs.get(batch.id, ())]
        if batch.kind == "split" and batch.made_by is not None:
            return [(batch.made_by, batch.initial_kg or ZERO)]
        return []

    def work_out(batch: BatchFact) -> dict[str, tuple[Decimal, Decimal]] | None:
        """None: not known yet (a step or a parent whose facts have not arrived)."""
        composition = batch.composition or {}
        elements = [e for e in sorted(composition) if e in RARE_EARTHS]
        if batch.kind == "mined":
            return {e: (ZERO, ZERO) for e in elements}
        if batch.kind == "recycled":
            return {e: (ZERO, ONE) for e in elements}
        links = parents(batch)
        if not links or any(p not in shares for p, _ in links):
            return None
        step = None
        if batch.kind == "produced" and batch.made_by is not None:
            step = facts.steps.get(batch.made_by)
            if step is None:
                return None
        result: dict[str, tuple[Decimal, Decimal]] = {}
        for element in elements:
            carried = ZERO
            untraced = ZERO
            recycled = ZERO
            for parent_id, kg in links:
                amount = _content(kg, batches[parent_id].composition, element)
                if not amount:
                    continue
                carried += amount
                u, r = shares[parent_id].get(element, (ZERO, ZERO))
                untraced += RATIO.multiply(amount, u)
                recycled += RATIO.multiply(amount, r)
            if step is not None:
                out = step.output_kg.get(element, ZERO)
            else:
                out = _content(batch.initial_kg or ZERO, composition, element)
            if carried <= ZERO:
                result[element] = (ONE, ZERO)
                continue
            surplus = RATIO.divide(max(out - carried, ZERO), out) if out > ZERO else ZERO
            kept = ONE - surplus
            result[element] = (
                surplus + RATIO.multiply(kept, RATIO.divide(untraced, carried)),
                RATIO.multiply(kept, RATIO.divide(recycled, carried)),
            )
        return result

    settled: set[UUID] = set()  # worked out, known or not
    for root in sorted(batches, key=str):
        if root in settled:
            continue
        stack: list[tuple[UUID, bool]] = [(root, False)]
        on_stack: set[UUID] = set()
        while stack:
            node, expanded = stack.pop()
            if node in settled:
                continue
            batch = batches.get(node)
            if batch is None:
                settled.add(node)
                continue
            if expanded:
                known = work_out(batch)
                if known is not None:
                    shares[node] = known
                settled.add(node)
                on_stack.discard(node)
                continue
            on_stack.add(node)
            stack.append((node, True))
            for parent_id, _ in parents(batch):
                if parent_id not in settled and parent_id not in on_stack:
                    stack.append((parent_id, False))
    return shares


def untraced_content(ctx: Context) -> Iterator[Anomaly]:
    t = ctx.t
    shares = outside_quota_shares(ctx.facts)
    made = {"produced", "split", "merged"}
    for batch in sorted(
        ctx.facts.batches.values(), key=lambda b: (b.created_at or EPOCH, str(b.id))
    ):
        if batch.kind not in made or not ctx.live(batch):
            continue
        own = shares.get(batch.id, {})
        parent_ids = _parent_ids(ctx.facts, batch)
        flagged: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for element, (untraced, recycled) in own.items():
            content = _content(batch.initial_kg or ZERO, batch.composition, element)
            if content < t.untraced_min_kg or untraced + recycled <= t.untraced_share:
                continue
            entered_earlier = any(
                ctx.facts.batches.get(p) is not None
                and ctx.facts.batches[p].kind in made
                and sum(shares.get(p, {}).get(element, (ZERO, ZERO))) > t.untraced_share
                for p in parent_ids
            )
            if not entered_earlier:
                flagged[element] = (content, untraced, recycled)
        if not flagged:
            continue
        event = _creation(batch)
        described = "; ".join(
            f"{_pct(u + r)} of its {element} ({_kg(content)}) comes from outside any quota: "
            f"{_pct(r)} from recycled intakes, {_pct(u)} that no input carried"
            for element, (content, u, r) in flagged.items()
        )
        yield Anomaly(
            anomaly_id("untraced-content", str(batch.id)),
            "untraced-content",
            WARNING,
            (
                Ref("batch", batch.id),
                f" ({batch.material}, made by ",
                Ref("company", batch.actor_id) if batch.actor_id else "?",
                " at ",
                Ref("facility", batch.facility_id) if batch.facility_id else "?",
                f"): {described}",
            ),
            batch.created_at or EPOCH,
            (batch.actor_id,) if batch.actor_id else (),
            events=(event,),
            batches=(batch.id, *parent_ids),
            about=(batch.id,),
            figures={
                "untraced_share": Figure(t.untraced_share),
                "elements": Figure(
                    {
                        element: {
                            "kg": content,
                            "outside_quota_share": _ratio(u + r),
                            "recycled_share": _ratio(r),
                            "no_input_share": _ratio(u),
                        }
                        for element, (content, u, r) in flagged.items()
                    }
                ),
            },
            elements=tuple(flagged),
            countries=_countries(ctx.country(batch.facility_id)),
        )


def _parent_ids(facts: Facts, batch: BatchFact) -> tuple[UUID, ...]:
    if batch.kind == "produced" and batch.made_by is not None:
        return tuple(i.batch_id for i in facts.inputs.get(batch.made_by, ()))
    if batch.kind == "merged":
        return tuple(i.batch_id for i in facts.inputs.get(batch.id, ()))
    if batch.kind == "split" and batch.made_by is not None:
        return (batch.made_by,)
    return ()


# --- extraction surge ---------------------------------------------------------------------------


def extraction_surge(ctx: Context) -> Iterator[Anomaly]:
    t = ctx.t
    window = timedelta(days=t.extraction_window_days)
    history_needed = timedelta(days=t.extraction_history_days)
    by_mine: dict[UUID, list[tuple[datetime, BatchFact, Decimal]]] = {}
    for batch in ctx.facts.batches.values():
        if batch.kind != "mined" or not ctx.live(batch) or batch.facility_id is None:
            continue
        if batch.created_at is None or batch.initial_kg is None:
            continue
        reo = reo_kg(batch.initial_kg, batch.composition or {})
        by_mine.setdefault(batch.facility_id, []).append((batch.created_at, batch, reo))
    if window <= timedelta(0):
        return
    for mine, found in sorted(by_mine.items(), key=lambda kv: str(kv[0])):
        found.sort(key=lambda x: (x[0], str(x[1].id)))
        for episode in _surges(t, found, window, history_needed):
            yield _surge(ctx, mine, found, episode, window)


def _surges(
    t: Thresholds,
    found: list[tuple[datetime, BatchFact, Decimal]],
    window: timedelta,
    history_needed: timedelta,
) -> Iterator[list[tuple[int, Decimal, Decimal]]]:
    """Runs of consecutive flagged extractions of one mine (in time order), each
    extraction as (index, window rate, history rate)."""
    times = [x[0] for x in found]
    totals = [ZERO]  # running kg REO: totals[n] is that of the first n extractions
    for _, _, reo in found:
        totals.append(totals[-1] + reo)
    first = times[0]
    episode: list[tuple[int, Decimal, Decimal]] = []
    for i, at in enumerate(times):
        start = at - window
        if start - first < history_needed:
            continue
        lo = bisect.bisect_right(times, start)  # the extractions up to ``start``: history
        history = totals[lo]
        span = Decimal((start - first).total_seconds()) / DAY
        if history <= ZERO or span <= ZERO:
            continue
        window_rate = RATIO.divide(totals[i + 1] - totals[lo], Decimal(t.extraction_window_days))
        history_rate = RATIO.divide(history, span)
        if window_rate > RATIO.multiply(t.extraction_factor, history_rate):
            episode.append((i, window_rate, history_rate))
        elif episode:
            yield episode
            episode = []
    if episode:
        yield episode


def _surge(
    ctx: Context,
    mine: UUID,
    found: list[tuple[datetime, BatchFact, Decimal]],
    episode: list[tuple[int, Decimal, Decimal]],
    window: timedelta,
) -> Anomaly:
    peak_index, window_rate, history_rate = max(episode, key=lambda x: (x[1], -x[0]))
    peak_at = found[peak_index][0]
    lots = [x for x in found[: episode[-1][0] + 1] if x[0] > found[episode[0][0]][0] - window]
    events = tuple(_creation(batch) for _, batch, _ in lots)
    owner = ctx.owner(mine)
    ratio = RATIO.divide(window_rate, history_rate)
    first = found[episode[0][0]][1]
    return Anomaly(
        anomaly_id("extraction-surge", f"{mine}:{first.id}"),
        "extraction-surge",
        WARNING,
        (
            Ref("facility", mine),
            " of ",
            Ref("company", owner) if owner else "?",
            f" extracted {_kg(window_rate)} REO a day in the {window.days} days to "
            f"{_day(peak_at)}: {format(ratio.quantize(Decimal('0.1')), 'f')} times its rate "
            f"before ({_kg(history_rate)} REO a day); flagged above "
            f"{format(ctx.t.extraction_factor.normalize(), 'f')} times",
        ),
        _latest(events, peak_at),
        (owner,) if owner else (),
        events=events,
        batches=tuple(batch.id for _, batch, _ in lots),
        figures={
            "window_days": Figure(ctx.t.extraction_window_days),
            "window_reo_kg_per_day": Figure(_ratio(window_rate)),
            "history_reo_kg_per_day": Figure(_ratio(history_rate)),
            "ratio": Figure(_ratio(ratio)),
            "factor": Figure(ctx.t.extraction_factor),
            "extractions": Figure(len(lots)),
        },
        elements=tuple(sorted({e for _, b, _ in lots for e in _rare(b.composition)})),
        countries=_countries(ctx.country(mine)),
    )


# --- under-invoicing ------------------------------------------------------------------------------


def under_invoicing(ctx: Context) -> Iterator[Anomaly]:
    t = ctx.t
    groups: dict[tuple[str, str, str, str], list[tuple[Decimal, MovementFact, BatchFact]]] = {}
    for movement in ctx.facts.movements:
        if movement.kind != "sale" or movement.price is None or not movement.currency:
            continue
        batch = ctx.facts.batches.get(movement.batch_id)
        if batch is None or not batch.material or movement.kg is None or movement.kg <= ZERO:
            continue
        rare = {e: s for e, s in (batch.composition or {}).items() if e in RARE_EARTHS and s > 0}
        if not rare or movement.occurred_at is None:
            continue
        content = EXACT.multiply(movement.kg, sum(rare.values(), ZERO))
        principal = max(sorted(rare), key=lambda e: rare[e])
        month = movement.occurred_at.astimezone(UTC).strftime("%Y-%m")
        unit = RATIO.divide(movement.price, content)
        key = (batch.material, principal, movement.currency, month)
        groups.setdefault(key, []).append((unit, movement, batch))
    for (material, principal, currency, month), sales in sorted(groups.items()):
        if len(sales) < t.price_min_sales:
            continue
        median = _median([unit for unit, _, _ in sales])
        if median <= ZERO:
            continue
        for unit, movement, _ in sales:
            share = RATIO.divide(unit, median)
            if share >= t.price_share:
                continue
            parties = frozenset(p for p in (movement.from_id, movement.to_id) if p is not None)
            seller = movement.from_id
            yield Anomaly(
                anomaly_id("under-invoicing", f"{movement.batch_id}:{movement.version}"),
                "under-invoicing",
                WARNING,
                (
                    "a sale of ",
                    Ref("batch", movement.batch_id),
                    f" ({material}, mostly {principal}) by ",
                    Ref("company", seller) if seller else "?",
                    " to ",
                    Ref("company", movement.to_id) if movement.to_id else "?",
                    f" on {_day(movement.occurred_at)} was priced at {_pct(share)} of the "
                    f"median per kg of rare-earth content of the {len(sales)} {material} sales "
                    f"mostly of {principal} in {month} priced in the same currency; flagged below "
                    f"{_pct(t.price_share)}",
                ),
                movement.occurred_at or EPOCH,
                tuple(p for p in (seller, movement.to_id) if p is not None),
                events=(_movement(movement),),
                batches=(movement.batch_id,),
                figures={
                    "group": Figure(
                        {
                            "material": material,
                            "principal_element": principal,
                            "month": month,
                            "sales": len(sales),
                        }
                    ),
                    "share_of_median": Figure(_ratio(share)),
                    "price_share": Figure(t.price_share),
                    "price_per_kg_content": Figure(_ratio(unit), parties),
                    "median_price_per_kg_content": Figure(_ratio(median), parties),
                    "price": Figure(movement.price, parties),
                    "currency": Figure(currency, parties),
                },
                elements=(principal,),
                countries=_countries(ctx.country(seller), ctx.country(movement.to_id)),
            )


def _median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return RATIO.divide(ordered[middle - 1] + ordered[middle], Decimal(2))


# --- round trips ------------------------------------------------------------------------------------


def round_trip(ctx: Context) -> Iterator[Anomaly]:
    exports = [m for m in ctx.facts.movements if m.kind == "export" and m.occurred_at]
    by_batch: dict[UUID, list[MovementFact]] = {}
    for export in exports:
        by_batch.setdefault(export.batch_id, []).append(export)
    same_goods: dict[UUID, list[UUID]] = {}  # batch -> batches split or merged from it
    for batch in ctx.facts.batches.values():
        if batch.kind == "split" and batch.made_by is not None:
            same_goods.setdefault(batch.made_by, []).append(batch.id)
        elif batch.kind == "merged":
            for taken in ctx.facts.inputs.get(batch.id, ()):
                same_goods.setdefault(taken.batch_id, []).append(batch.id)
    limit = timedelta(days=ctx.t.round_trip_days)
    for out in exports:
        assert out.occurred_at is not None
        left = ctx.country(ctx.location(out.batch_id, out.version))
        if not left or left == out.destination_country:
            continue
        goods = {out.batch_id}
        todo = [out.batch_id]
        while todo:
            for child in same_goods.get(todo.pop(), ()):
                if child not in goods:
                    goods.add(child)
                    todo.append(child)
        back = [
            m
            for batch in goods
            for m in by_batch.get(batch, ())
            if m is not out
            and m.destination_country == left
            and m.occurred_at is not None
            and out.occurred_at < m.occurred_at <= out.occurred_at + limit
        ]
        if not back:
            continue
        home = min(back, key=lambda m: (m.occurred_at, str(m.batch_id), m.version))
        assert home.occurred_at is not None
        via = ctx.country(ctx.location(home.batch_id, home.version)) or "?"
        days = (home.occurred_at - out.occurred_at).days
        events = (_movement(out), _movement(home))
        companies = tuple(
            dict.fromkeys(
                p for p in (out.from_id, out.to_id, home.from_id, home.to_id) if p is not None
            )
        )
        goods_batch = ctx.facts.batches.get(out.batch_id)
        yield Anomaly(
            anomaly_id("round-trip", f"{out.batch_id}:{out.version}"),
            "round-trip",
            WARNING,
            (
                Ref("batch", out.batch_id),
                f" ({goods_batch.material if goods_batch else '?'}) left {left} for "
                f"{out.destination_country} on {_day(out.occurred_at)}, exported by ",
                Ref("company", out.from_id) if out.from_id else "?",
                ", and came back unprocessed: ",
                Ref("batch", home.batch_id),
                f" exported from {via} to {left} by ",
                Ref("company", home.from_id) if home.from_id else "?",
                f" on {_day(home.occurred_at)}, {days} days later",
            ),
            home.occurred_at,
            companies,
            events=events,
            batches=tuple(dict.fromkeys([out.batch_id, home.batch_id])),
            figures={
                "left": Figure(left),
                "went_to": Figure(out.destination_country or ""),
                "came_back_from": Figure(via),
                "days": Figure(days),
                "kg_out": Figure(out.kg),
                "kg_back": Figure(home.kg),
            },
            elements=_rare(goods_batch.composition if goods_batch else None),
            countries=_countries(left, out.destination_country, via),
        )


# --- the table of rules -------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        "mass-balance-stress",
        "Mass-balance stress",
        "For each transformation and each rare earth its outputs carry at least "
        "`stress_min_kg` kg of: out = kg of the element in all its outputs; in = kg of it in "
        "the traced inputs (mass taken times the input batch's composition) plus the declared "
        "untraced inputs. Flagged when out > `stress_share` x in (the write side refuses "
        "out > (1 + tolerance) x in): the first sign of undeclared material entering. "
        "Critical when out > in, else warning.",
        ("stress_share", "stress_min_kg"),
        mass_balance_stress,
    ),
    Rule(
        "smuggling-cover",
        "Sold or exported more than produced or bought",
        "For each actor and material: sold = kg of the material it sold (custody transfers "
        "as seller) or exported (as exporter); had = kg of it the actor produced (the lots "
        "it mined, collected or made by transformation, as corrected; a lot corrected as "
        "never having existed counts 0), bought (custody transfers as buyer) and received "
        "(shipment receipts). Splits and merges repackage what it had and count on neither "
        "side. Flagged when sold > (1 + `smuggling_margin`) x had. Critical.",
        ("smuggling_margin",),
        smuggling_cover,
    ),
    Rule(
        "licence-mismatch",
        "Shipment differs from its licence",
        "For each export shipment whose end user differs, character for character, from the "
        "end user its licence names. The write side refuses another consignee or "
        "destination and an end user that differs other than in letter case, so what it "
        "accepted differs in spelling only. Warning.",
        (),
        licence_mismatch,
    ),
    Rule(
        "licence-refusals",
        "Attempts refused for licence or quota",
        "For each licence or quota (for attempts that named none: each actor): the writes "
        "refused for a licence or quota rule (licence-kind, licence-holder, "
        "licence-validity, licence-remaining, licence-destination, licence-consignee, "
        "licence-end-user, licence-item, consignee-country, quota), as counted outside the "
        "ledger. Flagged at `refusal_count` or more. Warning.",
        ("refusal_count",),
        licence_refusals,
    ),
    Rule(
        "untraced-content",
        "Rare earths largely from outside any quota",
        "For each batch made by a transformation, split or merge and each rare earth it "
        "carries at least `untraced_min_kg` kg of: the share of that content from outside "
        "any quota, following mass through the genealogy as provenance does (the inputs of "
        "a step pooled per element): scrap collected into the ledger (recycled intakes draw "
        "no quota) plus material that no input carried (a step's outputs above its inputs, "
        "within tolerance). Flagged when that share > `untraced_share` and no parent made "
        "by a step, split or merge already exceeded it: the batch where such content "
        "entered is flagged, not each of its descendants. Warning.",
        ("untraced_share", "untraced_min_kg"),
        untraced_content,
    ),
    Rule(
        "extraction-surge",
        "A mine extracting much faster than its history",
        "For each mine and each of its extractions: the window is the "
        "`extraction_window_days` days up to and including it; the history is the mine's "
        "extractions before the window, which must span at least `extraction_history_days` "
        "days from its first. Flagged when kg REO extracted in the window / window days > "
        "`extraction_factor` x kg REO extracted in the history / history days (the "
        "illegal-mining signal). Consecutive flagged extractions make one anomaly. Warning.",
        ("extraction_window_days", "extraction_history_days", "extraction_factor"),
        extraction_surge,
    ),
    Rule(
        "under-invoicing",
        "Sale priced far below the median",
        "For each priced sale: unit = price / (kg sold x the batch's rare-earth mass "
        "fraction), the price per kg of rare-earth content. Sales are grouped by material, "
        "principal rare earth (the largest fraction: an oxide of lanthanum and one of "
        "terbium are different goods), currency and month (UTC); in a group of at least "
        "`price_min_sales` sales, flagged when unit < `price_share` x the group's median "
        "unit (the tax-evasion signal). Warning.",
        ("price_share", "price_min_sales"),
        under_invoicing,
    ),
    Rule(
        "round-trip",
        "Material that leaves a country and comes back",
        "For each export from country X (the country of the facility the batch was at): "
        "flagged when the same goods (the batch itself, or batches split or merged from it, "
        "never transformed) are exported to X within `round_trip_days` days after. One "
        "anomaly per export, with the first return. Warning.",
        ("round_trip_days",),
        round_trip,
    ),
)
RULE_IDS = tuple(rule.id for rule in RULES)
_BY_ID = {rule.id: rule for rule in RULES}
SEVERITY_ORDER = {severity: n for n, severity in enumerate(SEVERITIES)}


def rule(id: str) -> Rule:
    return _BY_ID[id]


def evaluate(
    facts: Facts,
    thresholds: Thresholds | None = None,
    refused: Iterable[RefusedAttempts] = (),
) -> list[Anomaly]:
    """Every anomaly the rules find in ``facts``, in the order they happened (then by
    rule and id): the same list for the same facts, whatever order they were written in."""
    ctx = Context(facts, thresholds or Thresholds(), list(refused))
    found = [anomaly for rule in RULES for anomaly in rule.find(ctx)]
    found.sort(key=lambda a: (a.occurred_at, RULE_IDS.index(a.rule), str(a.id)))
    return found


def review_status(reviews: Sequence[ReviewFact]) -> str:
    """An anomaly's status: its latest decision's, else open."""
    return reviews[-1].status if reviews else "open"
