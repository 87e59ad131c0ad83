"""The shapes of every answer the query layer gives: typed for the code that builds
them (mypy checks each literal against its shape) and, read by the gateway as response
models, for the OpenAPI document. Decimals, ids and times are strings (exact JSON).

A key that is absent in some answers is ``NotRequired``; a detail hidden from a caller
who is not party to it is ``{"redacted": true}`` in its place (``Redacted``).
"""

from __future__ import annotations

from typing import Any, NotRequired

# pydantic reads TypedDicts as schemas only from typing_extensions before Python 3.12.
from typing_extensions import TypedDict


class Redacted(TypedDict):
    redacted: bool


class PartyRef(TypedDict, total=False):
    """An actor or facility as a caller may see it: a party sees code and name; others
    see at most the kind and country, with ``redacted``."""

    code: str
    name: str
    kind: str
    country: str | None
    redacted: bool


class ParentRef(TypedDict):
    batch: str | None  # ACTOR/LOT of the supplier's batch: parties only
    id: str
    kg: str


class OriginView(TypedDict):
    kind: str  # mined | recycled
    facility: str | None
    country: str | None
    quota: str | None


class TraceOrigin(TypedDict):
    kind: str  # mined | recycled
    facility: str | None
    quota: str | None
    country: str | None


class ExportView(TypedDict):
    licence: str | Redacted | None  # None: uncontrolled goods shipped without a licence
    destination_country: str
    consignee: str | Redacted
    kg: str
    shipment: str | Redacted | None  # the customs declaration or B/L number (None before v2)
    controlled: bool


class QuarantineView(TypedDict):
    reason: str
    by_role: str


class BatchState(TypedDict):
    id: str
    batch: str | None  # ACTOR/LOT; null when found by id by a caller not party to it
    lot_code: str | None
    material: str
    status: str
    initial_kg: str
    remaining_kg: str
    composition: dict[str, str]
    facility: PartyRef
    custodian: PartyRef
    created_at: str
    version: int
    parents: list[ParentRef]
    origin: NotRequired[OriginView]
    export: NotRequired[ExportView]
    corrected: bool
    corrections: NotRequired[list[dict[str, Any]]]
    quarantine: NotRequired[QuarantineView]


TradeView = TypedDict(
    "TradeView",
    {
        "kind": str,  # sale | export | receipt
        "kg": str,
        "occurred_at": str,
        "from": PartyRef | None,
        "to": PartyRef | None,
        "contract": str | Redacted,
        "price": str | Redacted | None,
        "currency": str | Redacted,
        "destination_country": str | None,
    },
)


class TraceNode(TypedDict):
    id: str
    batch: str | None  # ACTOR/LOT: the root, and batches the caller is party to
    material: str | None
    status: NotRequired[str | None]
    initial_kg: str | None
    remaining_kg: NotRequired[str | None]
    facility: NotRequired[PartyRef | None]
    custodian: NotRequired[PartyRef | None]
    corrections: NotRequired[int]
    origin: NotRequired[TraceOrigin]
    trades: NotRequired[list[TradeView]]


TraceEdge = TypedDict(
    "TraceEdge",
    {"from": str, "to": str, "kg": str | None, "operation": str, "operation_id": str},
)


class TraceSummary(TypedDict):
    batches: int
    edges: int
    origins: NotRequired[int]
    end_holders: NotRequired[list[str]]


class Trace(TypedDict):
    batch: str | None
    direction: str  # upstream | downstream
    summary: TraceSummary
    nodes: list[TraceNode]
    edges: list[TraceEdge]


class OriginShareView(TypedDict):
    kind: str  # mined | recycled | unattributed
    mine: str | None
    facility: str | None
    quota: str | None
    country: str | None
    share: str
    kg: str


class ElementProvenance(TypedDict):
    kg: str
    origins: list[OriginShareView]


class Provenance(TypedDict):
    batch: str | None
    model: str
    basis: str  # remaining | initial
    basis_kg: str | None
    elements: dict[str, ElementProvenance]
    by_country: dict[str, dict[str, str]]


class Reporter(TypedDict):
    principal: str
    role: str
    label: str
    actor: str | None


class HistoryEntry(TypedDict):
    position: int
    aggregate_id: str
    version: int
    type: str
    occurred_at: str | None
    recorded_at: str | None
    reported_by: Reporter | str | None
    hash: str | None
    prev: str | None
    intact: bool
    facts: dict[str, Any]
    corrected_by_versions: NotRequired[list[int]]


class History(TypedDict):
    batch: str
    id: str
    lineage: str  # none | upstream | downstream
    events: list[HistoryEntry]


class AsOfAnswer(TypedDict):
    batch: str
    clock: str  # recorded | occurred | version
    at: str | None
    version: int
    events_after: int
    existed: bool
    state: BatchState | None
    upstream: NotRequired[Trace]
    provenance: NotRequired[Provenance]


class Me(TypedDict):
    id: str
    role: str
    actor: str | None


class ActorView(TypedDict):
    id: str
    code: str
    name: str
    country: str
    roles: list[str]


class FacilityView(TypedDict):
    id: str
    code: str
    name: str
    kind: str
    owner: str
    country: str
    location: str | None


class LicenceView(TypedDict):
    id: str
    number: str
    kind: str
    holder: str | Redacted  # an export licence's holder: parties only
    unit: str
    max_kg: str
    drawn_kg: str
    remaining_kg: str
    draws: int  # how many shipments or extractions drew it
    valid_from: str
    valid_until: str
    items: NotRequired[list[dict[str, Any]]]
    destination_country: NotRequired[str | None]
    consignee: NotRequired[str | Redacted | None]
    end_user: NotRequired[str | Redacted | None]
    end_use: NotRequired[str | Redacted | None]
    contract: NotRequired[str | Redacted | None]


# --- audit answers ------------------------------------------------------------------------


class CheckpointView(TypedDict):
    seq: int
    first_position: int
    last_position: int
    count: int
    root: str
    prev: str | None
    created_at: str
    hash: str


class Checkpoints(TypedDict):
    checkpoints: list[CheckpointView]


class CheckpointsMade(TypedDict):
    made: list[CheckpointView]
    latest: CheckpointView | None


class VerifyProblem(TypedDict):
    kind: str  # edited | missing | reordered | chain-broken | checkpoint-mismatch | ...
    detail: str
    position: int | None
    aggregate_id: str | None
    version: int | None
    checkpoint: int | None


class Verification(TypedDict):
    ok: bool
    events: int
    aggregates: int
    checkpoints: int
    covered_up_to_position: int
    uncovered_events: int
    newest_checkpoint: CheckpointView | None
    compared_with_published: int
    first_problem: VerifyProblem | None
    problems: list[VerifyProblem]


class Health(TypedDict):
    status: str
    recorded_position: NotRequired[int]  # authenticated callers only
    genealogy_position: NotRequired[int | None]


class AuditReport(TypedDict):
    """``lodestone.audit-report.v1``: each section as ``lodestone.audit.report`` builds it."""

    format: str
    generated_at: str
    audience: str
    confidential: str
    batch: str
    id: str
    state: dict[str, Any]
    timeline: list[dict[str, Any]]
    genealogy: dict[str, Any]
    provenance: dict[str, Any]
    licences: list[dict[str, Any]]
    corrections: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    verification: dict[str, Any]


# --- trade ledger ---------------------------------------------------------------------------


class TradeParty(TypedDict, total=False):
    """A seller or client: code, name and country for whoever may see it; for an
    analyst, a client is only a pseudonym ("client 3": its rank by volume)."""

    code: str
    name: str
    country: str | None
    pseudonym: str


class TradeLine(TypedDict):
    batch: str | None  # ACTOR/LOT
    batch_id: str
    version: int  # the batch version of the sale, export or receipt event
    kind: str  # sale | export | receipt
    occurred_at: str | None
    month: str | None  # YYYY-MM, UTC
    material: str | None
    kg: str
    elements: dict[str, str]  # kg of each element: kg x the batch's mass fraction
    seller: TradeParty | None  # seller or exporter (a receipt's exporter)
    client: TradeParty | None  # buyer, consignee or receiver
    end_user: str | None
    price: str | None
    currency: str | None
    contract: str | None
    destination_country: str | None
    customs_code: str | None
    licence: str | None  # None: an uncontrolled export shipped without one
    shipment: str | None  # the customs declaration or bill of lading number
    controlled: bool | None  # exports and their receipts: whether a licence was needed
    corrected_by_version: int | None  # the correction of its time, if any


class TradeLines(TypedDict):
    lines: list[TradeLine]
    total: int  # lines matching, over every page
    offset: int
    limit: int
    next_offset: int | None


class TradeTotal(TypedDict):
    month: NotRequired[str | None]
    client: NotRequired[TradeParty | None]
    destination_country: NotRequired[str | None]
    element: NotRequired[str]
    kg: str  # goods mass
    lines: int
    element_kg: NotRequired[str]  # content of the element grouped by or filtered on


class TradeTotals(TypedDict):
    by: str  # month | client | destination | element
    kinds: list[str]
    element: str | None
    kg: str
    lines: int
    element_kg: NotRequired[str]
    totals: list[TradeTotal]


class ExportFlow(TypedDict):
    destination_country: str | None
    month: str | None
    kg: str  # of the element (controlled elements), or of magnets
    lines: int


class ExportDashboard(TypedDict):
    elements: dict[str, list[ExportFlow]]  # each controlled element: Sm, Gd, Tb, Dy, Lu, Sc, Y
    element_kg: dict[str, str]  # each controlled element's total over the period
    magnets: list[ExportFlow]
    magnets_kg: str


class TopClient(TypedDict):
    rank: int
    client: TradeParty | None
    kg: str
    lines: int
    share: str  # of the kg (or element kg) of every client in the answer's scope
    element_kg: NotRequired[str]


class TopClients(TypedDict):
    kinds: list[str]
    element: str | None
    clients: list[TopClient]


# --- inventory ----------------------------------------------------------------------------


class StockLine(TypedDict):
    """What one holder holds at one facility of one material (``actor`` and ``facility``
    left out of an analyst's answer, which is by country and material)."""

    actor: NotRequired[PartyRef]
    facility: NotRequired[PartyRef | None]  # null: in transit on an export shipment
    country: str | None  # where it is held (the facility's country); null in transit
    in_transit: bool
    material: str
    kg: str
    batches: int
    elements: dict[str, str]  # kg of each element: mass x mass fraction


class StockTotals(TypedDict):
    kg: str
    by_material: dict[str, str]
    by_element: dict[str, str]


class Inventory(TypedDict):
    at: str | None  # the moment asked (event time); null: now
    clock: str  # occurred: stock by when steps happened, as reported and corrected
    grouping: str  # holder (actor, facility, material) | country (country, material)
    lines: list[StockLine]
    totals: StockTotals


# --- licences and quotas ------------------------------------------------------------------


class LicenceSummary(TypedDict):
    id: str | None  # null with the number, in a list, for a non-party (see reads.licences)
    number: str | Redacted
    kind: str
    holder: str | Redacted  # an export licence's holder: parties only
    unit: str
    max_kg: str
    drawn_kg: str
    remaining_kg: str
    draws: int
    valid_from: str
    valid_until: str  # the expiry
    expired: bool
    issued_at: str
    refused_attempts: dict[str, int] | Redacted  # per rule broken
    items: NotRequired[list[dict[str, Any]]]
    destination_country: NotRequired[str | None]
    consignee: NotRequired[str | Redacted | None]
    end_user: NotRequired[str | Redacted | None]
    end_use: NotRequired[str | Redacted | None]
    contract: NotRequired[str | Redacted | None]


class LicenceList(TypedDict):
    licences: list[LicenceSummary]


class DrawView(TypedDict):
    version: int  # the licence's version this event made
    position: int | None  # its store position (see the history endpoints)
    kind: str  # draw | correction
    cause: str  # extraction | separation | export | correction
    batch: str | Redacted | None  # ACTOR/LOT drawn for; null: a separation's record
    batch_id: str
    kg: str  # negative for a correction that gives back
    occurred_at: str
    month: str  # the month it counts in (a correction: its draw's month)
    corrects_version: int | None


class LicenceDraws(TypedDict):
    licence: LicenceSummary
    draws: list[DrawView]
    by_month: dict[str, str]  # quota use over time: kg drawn per month (UTC)


# --- anomalies ------------------------------------------------------------------------------


class AnomalyEvent(TypedDict):
    """An event of an anomaly's evidence. Who reported what is shown to its parties and
    the authorities; others see its type and time only (``redacted``)."""

    type: str
    occurred_at: str | None
    event_id: NotRequired[str]  # the CloudEvents id its Kafka record carries
    aggregate_id: NotRequired[str]
    version: NotRequired[int]
    position: NotRequired[int | None]  # in the event store
    batch: NotRequired[str | None]  # ACTOR/LOT
    redacted: NotRequired[bool]


class AnomalyDecision(TypedDict):
    """A review of the anomaly: recorded in the ledger with who and why."""

    status: str  # open | acknowledged | dismissed
    at: str
    by_role: str
    by: NotRequired[str]  # the principal: authorities, and the reviewer itself
    note: NotRequired[str]


class AnomalySummary(TypedDict):
    id: str
    href: str
    rule: str
    title: str
    severity: str  # critical | warning | info
    status: str  # open | acknowledged | dismissed
    reason: str  # companies pseudonymised and references withheld as the caller requires
    occurred_at: str
    companies: list[str]  # codes, or pseudonyms ("company-...") the caller may not see
    elements: list[str]
    countries: list[str]


class AnomalyEvidence(TypedDict):
    events: list[AnomalyEvent]
    batches: list[str | Redacted]  # ACTOR/LOT, or redacted
    licences: list[str | Redacted]
    figures: dict[str, Any]  # a commercial figure (a price) is redacted for non-parties


class AnomalyDetail(AnomalySummary):
    evidence: AnomalyEvidence
    reviews: list[AnomalyDecision]


class AnomalyPage(TypedDict):
    total: int  # anomalies matching the filters
    offset: int
    limit: int
    anomalies: list[AnomalySummary]


class AnomalyRuleView(TypedDict):
    id: str
    title: str
    definition: str
    thresholds: dict[str, str]  # as configured


class AnomalyRules(TypedDict):
    rules: list[AnomalyRuleView]


# --- monthly declarations -----------------------------------------------------------------


class DeclaredParty(TypedDict):
    code: str
    name: str
    country: str | None


class DeclarationPeriod(TypedDict):
    starts_at: str  # the month's first instant, UTC
    ends_before: str  # the next month's first instant, UTC (the stock is taken then)


class ProducedLine(TypedDict):
    """Batches the actor made in the month of one material by one process."""

    process: str  # mined | recycled | the transformation's process (beneficiation, ...)
    material: str
    kg: str
    batches: int
    elements: dict[str, str]  # kg of each element: mass x mass fraction


class TradedLine(TypedDict):
    """Purchases from one supplier, or sales to one client, of one material in one
    currency: their goods mass, element content and the sum of their prices."""

    counterparty: DeclaredParty | None  # the supplier (seller, exporter) or the client
    kind: str  # sale | receipt (an import received: purchases only)
    material: str
    kg: str
    lines: int
    elements: dict[str, str]
    currency: str | None  # the prices' currency (null: none given)
    value: str | None  # the sum of the lines' contract prices (whole-batch prices); null: unpriced


class ExportLine(TypedDict):
    """Shipments to one destination under one licence (none: uncontrolled goods) to
    one consignee, of one material under one customs code."""

    destination_country: str | None
    licence: str | None
    consignee: DeclaredParty | None
    end_user: str | None
    material: str
    customs_code: str | None
    kg: str
    lines: int
    shipments: list[str]  # customs declaration or bill of lading numbers
    elements: dict[str, str]


class DeclaredExports(TypedDict):
    controlled: list[ExportLine]  # goods that needed a licence
    uncontrolled: list[ExportLine]  # goods shipped without one
    controlled_kg: str
    uncontrolled_kg: str


class HeldLine(TypedDict):
    facility: DeclaredParty | None  # null: in transit on an export shipment
    in_transit: bool
    material: str
    kg: str
    batches: int
    elements: dict[str, str]


class QuotaLine(TypedDict):
    """A licence or quota the actor holds, as drawn in the month and by its end."""

    licence: str
    kind: str  # mining_quota | separation_quota | export_licence
    unit: str  # kg REO (quotas) | kg (export licences)
    max_kg: str
    drawn_kg: str  # drawn in the month (corrections count in their draw's month)
    draws: int  # draws and corrections counted in the month
    drawn_to_date_kg: str  # drawn in every month up to and including this one
    remaining_kg: str  # max_kg - drawn_to_date_kg
    valid_from: str
    valid_until: str


class DeclarationTotals(TypedDict):
    produced_kg: str
    purchased_kg: str
    sold_kg: str
    exported_kg: str
    stock_kg: str


class Declaration(TypedDict):
    actor: DeclaredParty
    roles: list[str]
    month: str  # YYYY-MM, UTC
    period: DeclarationPeriod
    due_by: str  # YYYY-MM-DD: the 10th of the next month
    provisional: bool  # the month has not ended: its figures may still grow
    clock: str  # occurred: every figure by when the step happened, as reported and corrected
    reported: bool  # any activity of the actor in the month (see reads.declarations)
    production: list[ProducedLine]
    purchases: list[TradedLine]
    sales: list[TradedLine]
    exports: DeclaredExports
    stock: list[HeldLine]  # held at the month's end (period.ends_before)
    quota: list[QuotaLine]
    totals: DeclarationTotals


class DeclarationStatus(TypedDict):
    actor: DeclaredParty
    roles: list[str]
    reported: bool  # any activity in the month


class DeclarationIndex(TypedDict):
    month: str
    due_by: str
    overdue: bool  # the due date has passed
    missing: bool  # only actors with no activity in the month are listed
    actors: list[DeclarationStatus]
