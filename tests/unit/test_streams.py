"""A subscription over a change log held in memory (a fake of the views' ``changes``):
pages bounded, resets instead of gaps, ids moving past what a caller does not get,
redaction per role, filters, and who may stream a read model with no presenter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from uuid import uuid4

import pytest

from lodestone.domain.access import Principal, Role
from lodestone.domain.refusals import Forbidden, InvalidInput, NotFound
from lodestone.projections.changes import RESET, Change, Page
from lodestone.reads import streams

ANALYST = Principal("a", Role.ANALYST)
REGULATOR = Principal("r", Role.REGULATOR)
MINE_CO = uuid4()
OPERATOR = Principal("o", Role.OPERATOR, MINE_CO)


@dataclass
class Log:
    """Changes floor+1..last, as a view's change log keeps them."""

    changes: list[Change] = field(default_factory=list)
    floor: int = 0
    asked: list[int] = field(default_factory=list)  # the limits readers asked for

    def add(self, table: str, row: dict[str, object]) -> None:
        seq = (self.changes[-1].seq if self.changes else self.floor) + 1
        key = str(row.get("id", seq))
        self.changes.append(
            Change("genealogy", seq, table, key, json.dumps(row), "ledger", seq, "2026-01-01")
        )

    def changes_after(self, after: int, limit: int) -> Page:
        self.asked.append(limit)
        last = self.changes[-1].seq if self.changes else self.floor
        kept = [c for c in self.changes if c.seq > max(after, self.floor)]
        return Page(kept[:limit], self.floor, last)


class Source:
    def __init__(self, log: Log) -> None:
        self.log = log

    def changes(self, after: int, limit: int) -> Page:
        return self.log.changes_after(after, limit)


def batch(reporter: object = None, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": str(uuid4()),
        "version": 1,
        "reference": "MINECO/ORE-1",
        "material": "ore",
        "initial_kg": "10",
        "remaining_kg": "10",
        "composition": {"Dy": "0.01", "Nd": "0.03"},
        "facility_id": str(uuid4()),
        "custodian_id": str(reporter or uuid4()),
        "reporter_id": str(reporter or uuid4()),
        "status": "active",
        "origin_kind": "mined",
        "origin_facility_id": str(uuid4()),
        "origin_licence_id": None,
        "origin_country": "CN",
        "created_at": "2026-01-01T00:00:00+00:00",
        "corrections": None,
    }
    return row | extra


def name(kind: str, code: str, label: str, id: object = None) -> dict[str, object]:
    return {"id": str(id or uuid4()), "kind": kind, "code": code, "name": label, "country": "CN"}


def everything(
    subscription: streams.Subscription, log: Log, cursor: int = 0
) -> list[streams.Delivery]:
    found, _ = subscription.next(Source(log), cursor, 10_000)
    return found


def test_a_read_asks_for_one_page_at_most() -> None:
    log = Log()
    for _ in range(30):
        log.add("batches", batch())
    subscription = streams.subscribe("genealogy", REGULATOR, [])

    found, cursor = subscription.next(Source(log), 0, 7)

    assert [d.id for d in found] == [1, 2, 3, 4, 5, 6, 7] and cursor == 7
    assert log.asked == [7]


def test_a_cursor_below_the_floor_gets_a_reset_not_a_gap() -> None:
    log = Log(floor=10)
    log.add("batches", batch())
    subscription = streams.subscribe("genealogy", REGULATOR, [])

    found, cursor = subscription.next(Source(log), 3, 100)

    assert [(d.id, d.event) for d in found] == [(10, "reset")] and cursor == 10
    assert [d.id for d in subscription.next(Source(log), cursor, 100)[0]] == [11]


def test_a_cursor_beyond_the_log_is_told_to_re_read() -> None:
    log = Log()
    log.add("batches", batch())

    found, cursor = streams.subscribe("genealogy", REGULATOR, []).next(Source(log), 50, 100)

    assert [(d.id, d.event) for d in found] == [(1, "reset")] and cursor == 1


def test_a_reset_marker_is_delivered_as_a_reset() -> None:
    log = Log()
    log.add("batches", batch())
    log.add(RESET, {})

    found = everything(streams.subscribe("genealogy", ANALYST, []), log)

    assert [d.event for d in found] == ["batches", "reset"]


def test_the_id_moves_past_changes_the_caller_does_not_get() -> None:
    log = Log()
    log.add("names", name("actor", "MINECO", "Bayan Mining Co"))
    log.add("names", name("actor", "MAGCO", "Ningbo Magnets"))

    found, cursor = streams.subscribe("genealogy", ANALYST, []).next(Source(log), 0, 100)

    assert [(d.id, d.event, d.data) for d in found] == [(2, None, None)] and cursor == 2


def test_an_analyst_sees_a_batch_without_its_reference_facility_or_custodian() -> None:
    log = Log()
    log.add("batches", batch())

    (shown,) = everything(streams.subscribe("genealogy", ANALYST, []), log)

    assert shown.data is not None
    row = shown.data["row"]
    assert row["batch"] is None and "actor" not in row
    assert row["custodian"] == row["facility"] == {"redacted": True}
    assert (row["material"], row["element"], row["country"]) == ("ore", ["Dy", "Nd"], "CN")


def test_an_operator_sees_its_own_batch_in_full() -> None:
    log = Log()
    log.add("batches", batch(reporter=MINE_CO))

    (shown,) = everything(streams.subscribe("genealogy", OPERATOR, []), log)

    assert shown.data is not None
    assert shown.data["row"]["batch"] == "MINECO/ORE-1"
    assert shown.data["row"]["actor"] == [str(MINE_CO)]


def test_an_operator_sees_its_own_name_and_no_other() -> None:
    log = Log()
    log.add("names", name("actor", "MINECO", "Bayan Mining Co", MINE_CO))
    log.add("names", name("actor", "MAGCO", "Ningbo Magnets"))

    found = everything(streams.subscribe("genealogy", OPERATOR, []), log)

    assert [d.data["row"]["code"] for d in found if d.data] == ["MINECO"]


def test_only_mining_quotas_of_the_licences_are_shown_to_an_analyst() -> None:
    log = Log()
    log.add("names", name("licence", "MQ-1", "mining_quota"))
    log.add("names", name("licence", "CN-SQ-2026-NREG-1", "separation_quota"))
    log.add("names", name("licence", "EX-1", "export_licence"))

    found = everything(streams.subscribe("genealogy", ANALYST, []), log)

    assert [d.data["row"]["code"] for d in found if d.data] == ["MQ-1"]


def test_a_filter_matches_a_value_or_a_member_and_either_of_two_values() -> None:
    log = Log()
    log.add("batches", batch(composition={"Tb": "0.1"}, origin_country="MM"))
    log.add("batches", batch(composition={"Dy": "0.1"}, origin_country="CN"))
    log.add("batches", batch(composition={"Nd": "0.1"}, origin_country="CN"))
    query = [("element", "Dy"), ("element", "Tb"), ("country", "CN")]

    found = everything(streams.subscribe("genealogy", ANALYST, query), log)

    assert [d.data["row"]["element"] for d in found if d.data] == [["Dy"]]


def test_a_field_a_caller_may_not_see_filters_nothing_in() -> None:
    log = Log()
    log.add("batches", batch(reporter=MINE_CO))

    found = everything(streams.subscribe("genealogy", ANALYST, [("actor", str(MINE_CO))]), log)

    assert [d.data for d in found] == [None]  # only the id moves on


def test_an_unknown_filter_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        streams.subscribe("genealogy", ANALYST, [("colour", "red")])

    assert (refused.value.field, refused.value.rule) == ("colour", "filter")


def test_an_unknown_read_model_is_not_found() -> None:
    with pytest.raises(NotFound):
        streams.subscribe("nothing", ANALYST, [])


def test_a_read_model_without_a_presenter_streams_raw_rows_to_regulators_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(streams.PRESENTERS, "genealogy")
    log = Log()
    row = batch()
    log.add("batches", row)

    with pytest.raises(Forbidden):
        streams.subscribe("genealogy", ANALYST, [])
    with pytest.raises(Forbidden):
        streams.subscribe("genealogy", OPERATOR, [])
    (shown,) = everything(streams.subscribe("genealogy", REGULATOR, []), log)
    assert shown.data is not None and shown.data["row"] == row


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_auditors_and_admins_also_get_raw_rows(monkeypatch: pytest.MonkeyPatch, role: Role) -> None:
    monkeypatch.delitem(streams.PRESENTERS, "genealogy")

    subscription = streams.subscribe("genealogy", Principal("x", role), [("reference", "A/B")])

    assert subscription.filters == {"reference": frozenset({"A/B"})}


AUDIENCES = [
    [REGULATOR, Principal("au", Role.AUDITOR), Principal("ad", Role.ADMIN)],
    [OPERATOR, Principal("o2", Role.OPERATOR, MINE_CO)],
    [Principal("o3", Role.OPERATOR, uuid4())],
    [ANALYST, Principal("a2", Role.ANALYST)],
]


def test_callers_of_one_audience_are_shown_every_change_alike() -> None:
    log = Log()
    log.add("batches", batch(MINE_CO))
    log.add("batches", batch())
    log.add("names", name("actor", "MINECO", "Bayan Mining Co", MINE_CO))
    log.add("names", name("licence", "MQ-1", "mining_quota"))

    shown = []
    for group in AUDIENCES:
        subscriptions = [streams.subscribe("genealogy", p, []) for p in group]
        assert len({s.audience for s in subscriptions}) == 1
        found = [everything(s, log) for s in subscriptions]
        assert all(f == found[0] for f in found)
        shown.append(found[0])

    audiences = {streams.subscribe("genealogy", group[0], []).audience for group in AUDIENCES}
    assert len(audiences) == len(AUDIENCES)
    overseers, own, unrelated, analysts = shown
    assert overseers != analysts and own != analysts and own != overseers
    assert unrelated == analysts  # a company party to nothing here sees what analysts see


def test_subscriptions_share_a_key_only_with_the_same_audience_and_filters() -> None:
    def key(principal: Principal, query: list[tuple[str, str]]) -> object:
        return streams.subscribe("genealogy", principal, query).key

    assert key(ANALYST, [("element", "Dy")]) == key(
        Principal("a2", Role.ANALYST), [("element", "Dy")]
    )
    assert key(ANALYST, [("element", "Dy")]) != key(ANALYST, [("element", "Tb")])
    assert key(ANALYST, []) != key(OPERATOR, [])
