"""Redaction as a property of the whole API, on the demo chain: a caller who may not
see a company's identity cannot reach it, directly or by joining answers.

Each caller starts from what anyone may know (the mines' ore lots: mines are
provenance, not clients) and then follows every reference any answer gave it: batch
ids to ``/v1/batches?id=``, ACTOR/LOT references to state, traces, provenance and
the drawn genealogy (``graph.svg``), codes to the actor and facility directories,
licence numbers to ``/v1/licences``, and an entry it reached there to that licence's
draws or that actor's or facility's stock (``/v1/inventory?actor=``) and that actor's
monthly declarations, and every link an answer gives (``/v1/...``: an anomaly's
``href`` to its evidence); the read models' lists, and the list of who has not
declared, are where every caller may start too.
No answer may contain the code or the name of a company the caller may not see, nor
an unredacted contract, price or consignee.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger
from lodestone.demo.generator import load
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.gateway import create_app
from tests.api.conftest import ADMIN_KEY, bearer

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
CODE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{1,}$")
FIGURE = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # a mass or a count, not a code: not followed
FOUND = re.compile(r"^/v1/(actors|facilities|licences)/([^/?]+)$")
COMMERCIAL = (
    "contract",
    "price",
    "currency",
    "consignee",
    "end_user",
    "end_use",
    # the same in an EPCIS export
    "bizTransactionList",
    "re:price",
    "re:currency",
    "re:endUser",
)
MAX_REQUESTS = 4_000
#: What a batch reference leads to: its state, traces, drawing and EPCIS exports.
TAILS = (
    "",
    "/upstream",
    "/downstream",
    "/provenance",
    "/graph.svg",
    "/epcis?lineage=upstream",
    "/epcis?lineage=downstream",
)
EPCIS_ID = re.compile(r"^urn:lodestone:(batch|lot|facility):(.+)$")
#: Answers of the read models that need no reference: every walk starts there too.
READ_MODEL_STARTS = [
    "/v1/trades",
    "/v1/trades/totals?by=month",
    "/v1/trades/totals?by=client",
    "/v1/trades/totals?by=destination",
    "/v1/trades/totals?by=element",
    "/v1/dashboards/exports",
    "/v1/dashboards/top-clients",
    "/v1/inventory",
    "/v1/licences",
    "/v1/anomalies?limit=500",
    "/v1/anomalies/rules",
    "/v1/me",  # the caller's own actor: its stock and declarations
]


@dataclass(frozen=True)
class Chain:
    """Who is who in the demo, read back from the ledger."""

    actors: dict[UUID, tuple[str, str]]  # id -> (code, name)
    facilities: dict[UUID, tuple[str, str, UUID]]  # id -> (code, name, owner)
    batches: list[Batch]

    def months(self) -> list[str]:
        """Every month (YYYY-MM, UTC) from the first batch made to the last step."""
        first = min(b.created_at for b in self.batches).astimezone(UTC)
        last = max(b.last_occurred_at for b in self.batches).astimezone(UTC)
        months = []
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    def origin_actors(self) -> set[UUID]:
        """Mines and recycling intakes: their identity is provenance, open to all."""
        return {self.facilities[b.origin["facility_id"]][2] for b in self.batches if b.origin}

    def parties(self, batch: Batch) -> set[UUID]:
        found = {*batch.holders, batch.reporter_id, self.facilities[batch.facility_id][2]}
        if batch.export:
            found |= {batch.export["exporter_id"], batch.export["consignee_id"]}
        return found

    def seen_by(self, actor: UUID | None) -> set[UUID]:
        """The companies a caller may see: origins, and for an operator itself and every
        party of a batch it is party to."""
        allowed = self.origin_actors()
        if actor is not None:
            allowed.add(actor)
            for batch in self.batches:
                parties = self.parties(batch)
                if actor in parties:
                    allowed |= parties
        return allowed

    def forbidden(self, actor: UUID | None) -> dict[str, re.Pattern[str]]:
        allowed = self.seen_by(actor)
        words: dict[str, re.Pattern[str]] = {}
        for id, (code, name) in self.actors.items():
            if id not in allowed:
                words[code] = _word(code)
                words[name] = re.compile(re.escape(name))
        for code, name, owner in self.facilities.values():
            if owner not in allowed:
                words[code] = _word(code)
                words[name] = re.compile(re.escape(name))
        return words


def _word(code: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(code)}(?![A-Za-z0-9])")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Chain]]:
    data_dir: Path = tmp_path_factory.mktemp("redaction") / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
    ledger = build_ledger(settings)
    load(ledger, seed=11, size=250)
    actors: dict[UUID, tuple[str, str]] = {}
    facilities: dict[UUID, tuple[str, str, UUID]] = {}
    batches: list[Batch] = []
    for n in ledger.recorder.select_notifications(start=1, limit=1_000_000):
        if n.originator_version != 1:
            continue
        aggregate: Any = ledger.repository.get(n.originator_id)
        if isinstance(aggregate, Actor):
            actors[aggregate.id] = (aggregate.code, aggregate.name)
        elif isinstance(aggregate, Facility):
            facilities[aggregate.id] = (aggregate.code, aggregate.name, aggregate.owner_id)
        elif isinstance(aggregate, Batch):
            batches.append(aggregate)
    ledger.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, Chain(actors, facilities, batches)


def _key(client: TestClient, role: str, actor: str | None) -> dict[str, str]:
    body = {"role": role, "actor": actor, "label": f"{role} {actor or ''}"}
    answer = client.post("/v1/credentials", json=body, headers=bearer(ADMIN_KEY))
    assert answer.status_code == 201, answer.text
    return bearer(answer.json()["key"])


def _explore(
    client: TestClient, headers: dict[str, str], starts: list[str], months: list[str]
) -> list[str]:
    """Every answer the caller can reach from ``starts`` (and the read models' answers)
    by following what it was told; an actor's declarations for ``months``."""
    todo = [f"/v1/batches/{ref}" for ref in starts] + READ_MODEL_STARTS
    todo += [f"/v1/declarations?month={month}" for month in months]
    seen: set[str] = set(todo)
    answers: list[str] = []

    def follow(url: str) -> None:
        if url not in seen:
            seen.add(url)
            todo.append(url)

    while todo and len(answers) < MAX_REQUESTS:
        url = todo.pop()
        response = client.get(url, headers=headers)
        assert response.status_code < 500, (url, response.text)
        if response.headers["content-type"].startswith("image/svg+xml"):
            # A drawing: its labels as written (Graphviz escapes them as XML).
            answers.append(f"{url} {html.unescape(response.text)}")
            continue
        answers.append(f"{url} {response.text}")
        if response.status_code != 200:
            continue
        # What a directory entry the caller reached leads to: a licence's draws, the
        # stock of an actor or at a facility.
        found = FOUND.match(url)
        if found:
            kind, code = found.groups()
            if kind == "actors":
                for month in months:
                    follow(f"/v1/declarations/{code}/{month}")
            follow(
                f"/v1/licences/{code}/draws"
                if kind == "licences"
                else f"/v1/inventory?{kind.rstrip('s').replace('facilitie', 'facility')}={code}"
            )
        for value in _strings(response.json()):
            if value.startswith("/v1/"):
                follow(value)
            elif UUID_TEXT.fullmatch(value):
                follow(f"/v1/batches?id={value}")
            elif REFERENCE.match(value):
                for tail in TAILS:
                    follow(f"/v1/batches/{value}{tail}")
            elif EPCIS_ID.match(value):  # the identifiers an EPCIS export uses
                kind, rest = EPCIS_ID.match(value).groups()  # type: ignore[union-attr]
                if kind == "batch":
                    follow(f"/v1/batches?id={rest}")
                elif kind == "lot":
                    for tail in TAILS:
                        follow(f"/v1/batches/{rest.replace(':', '/', 1)}{tail}")
                else:
                    follow(f"/v1/facilities/{rest.split(':')[-1]}")
            elif CODE.match(value) and not FIGURE.fullmatch(value):
                for prefix in ("/v1/actors/", "/v1/facilities/", "/v1/licences/"):
                    follow(prefix + value)

    return answers


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _commercial_values(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in COMMERCIAL and item not in (None, {"redacted": True}):
                yield key, item
            yield from _commercial_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _commercial_values(item)


def _starts(chain: Chain) -> list[str]:
    return sorted(b.reference for b in chain.batches if b.origin)


def _leaks(answers: list[str], forbidden: dict[str, re.Pattern[str]]) -> list[str]:
    return [
        f"{word!r} in {answer[:160]}"
        for answer in answers
        for word, pattern in forbidden.items()
        if pattern.search(answer)
    ]


def test_an_analyst_reaches_no_company_beyond_the_mines_by_joining_answers(demo):
    client, chain = demo
    answers = _explore(client, _key(client, "analyst", None), _starts(chain), chain.months())

    assert len(answers) > 100  # the walk went far: traces, states by id, directories
    assert any("/epcis?" in answer.split(" ", 1)[0] for answer in answers)  # and exports
    assert _leaks(answers, chain.forbidden(None)) == []


def test_an_analyst_reaches_no_contract_price_or_consignee(demo):
    client, chain = demo
    answers = _explore(client, _key(client, "analyst", None), _starts(chain), chain.months())

    found = [
        (answer.split(" ", 1)[0], hit)
        for answer in answers
        if not answer.split(" ", 1)[0].endswith(".svg")  # drawings carry no such field
        for body in [json.loads(answer.split(" ", 1)[1] or "null")]
        for hit in _commercial_values(body)
    ]
    assert found == []


def test_an_unrelated_operator_reaches_only_its_own_counterparties(demo):
    client, chain = demo
    # The company party to the fewest batches: it knows the least.
    counts = {id: sum(1 for b in chain.batches if id in chain.parties(b)) for id in chain.actors}
    origins = chain.origin_actors()
    actor = min((id for id in chain.actors if id not in origins), key=lambda i: (counts[i], i))
    code = chain.actors[actor][0]
    forbidden = chain.forbidden(actor)
    assert forbidden  # there are companies it must not see

    answers = _explore(client, _key(client, "operator", code), _starts(chain), chain.months())

    assert _leaks(answers, forbidden) == []


def test_the_walk_reads_the_anomalies_and_their_evidence(demo):
    client, chain = demo
    answers = _explore(client, _key(client, "analyst", None), [], chain.months())

    evidence = [a for a in answers if a.startswith("/v1/anomalies/") and '"evidence"' in a]
    # The demo holds a few of each pattern the rules look for; each one was opened.
    assert len(evidence) >= 6


# --- the live stream of the genealogy (GET /v1/streams/genealogy) ----------------------


def _streamed(client: TestClient, headers: dict[str, str]) -> list[str]:
    """The data of every change of the demo's genealogy the caller is sent (the stream
    read to the log's last id, then closed: ``until``)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.fresh_view()
    last = runtime.change_source("genealogy").changes(0, 0).last
    response = client.get(f"/v1/streams/genealogy?after=0&until={last}", headers=headers)
    assert response.status_code == 200, response.text
    return [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]


def test_an_analysts_stream_reaches_no_company_beyond_the_mines(demo):
    client, chain = demo
    streamed = _streamed(client, _key(client, "analyst", None))

    assert len(streamed) > 100
    assert _leaks(streamed, chain.forbidden(None)) == []
    assert [hit for body in streamed for hit in _commercial_values(json.loads(body))] == []


def test_an_unrelated_operators_stream_reaches_only_its_own_counterparties(demo):
    client, chain = demo
    counts = {id: sum(1 for b in chain.batches if id in chain.parties(b)) for id in chain.actors}
    origins = chain.origin_actors()
    actor = min((id for id in chain.actors if id not in origins), key=lambda i: (counts[i], i))

    streamed = _streamed(client, _key(client, "operator", chain.actors[actor][0]))

    assert streamed
    assert _leaks(streamed, chain.forbidden(actor)) == []


def test_an_operators_own_declarations_name_only_its_counterparties(demo):
    client, chain = demo
    # The company party to the most batches that is not a mine: its declarations name
    # the most clients, suppliers and consignees.
    counts = {id: sum(1 for b in chain.batches if id in chain.parties(b)) for id in chain.actors}
    origins = chain.origin_actors()
    actor = max((id for id in chain.actors if id not in origins), key=lambda i: (counts[i], i))
    code = chain.actors[actor][0]
    headers = _key(client, "operator", code)

    answers = [
        f"{url} {client.get(url, headers=headers).text}"
        for month in chain.months()
        for url in [f"/v1/declarations/{code}/{month}"]
    ]

    assert any('"counterparty":{"code"' in answer for answer in answers)  # names its partners
    assert _leaks(answers, chain.forbidden(actor)) == []
