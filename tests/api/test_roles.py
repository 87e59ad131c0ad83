"""Every role against every endpoint, and who sees commercial details.

``ENDPOINTS`` holds one role rule per route the gateway serves; a test checks it against
the app's routes, so a new endpoint without a rule fails. Allowed callers get their 2xx
answer; refused ones get 403 problem+json and nothing is stored. Without a valid key
(none, unknown, revoked) everything but the public routes answers 401."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import (
    PROBLEM,
    VALID_FROM,
    VALID_UNTIL,
    World,
    beneficiation,
    export,
    hold,
    ore,
    receipt,
    sale,
)

ROLES = ("admin", "mine", "magnets", "other", "auto", "auditor", "analyst", "regulator")
#: Keys that speak for no company: in a step they name the actor it is reported for.
WITHOUT_AN_ACTOR = frozenset({"admin", "auditor", "analyst", "regulator"})
EVERYONE = frozenset(ROLES)
STEP_REPORTERS = frozenset({"admin", "mine"})  # every step below is MINECO's
HOLDERS = STEP_REPORTERS | {"regulator"}
AUDITORS = frozenset({"admin", "auditor", "regulator"})


@pytest.fixture
def world(fresh_world: World) -> World:
    """Each test gets its own copy of the registered world (own data, own runtime)."""
    return fresh_world


# --- scenes: what must exist before an endpoint can be called; answer its path parameters -


def nothing(world: World) -> dict[str, str]:
    return {}


def ore_1(world: World) -> dict[str, str]:
    batch_id = world.extract("ORE-1", "10000")["batch_id"]
    return {"actor": "MINECO", "lot": "ORE-1", "id": batch_id}


def two_ores(world: World) -> dict[str, str]:
    world.extract("ORE-2", "2000")
    return ore_1(world)


def ore_1_exported(world: World) -> dict[str, str]:
    params = ore_1(world)
    world.report("shipment-exported", export("ORE-1"))
    return params


def ore_1_held(world: World) -> dict[str, str]:
    params = ore_1(world)
    world.report("batch-quarantined", hold("ORE-1"))
    return params


def an_anomaly(world: World) -> dict[str, str]:
    """MINECO exports ORE-1 to AUTOCO naming the end user in capitals: a licence mismatch
    about MINECO and AUTOCO."""
    ore_1(world)
    world.report("shipment-exported", export("ORE-1", end_user="AUTO MOTORS GMBH"))
    (found,) = world.get("/v1/anomalies", "admin").json()["anomalies"]
    return {"anomaly_id": found["id"]}


def ore_1_this_month(world: World) -> dict[str, str]:
    """ORE-1 mined now: MINECO's declaration of this month has something in it."""
    return ore_1(world) | {"month": datetime.now(UTC).strftime("%Y-%m")}


def a_spare_credential(world: World) -> dict[str, str]:
    issued = world.register("/v1/credentials", {"role": "analyst", "label": "spare"})
    return {"credential_id": issued["credential_id"]}


@dataclass(frozen=True)
class Rule:
    """Who may call an endpoint, and how to call it."""

    allowed: frozenset[str]
    scene: Callable[[World], dict[str, str]] = nothing
    body: Callable[[], dict[str, Any]] | None = None
    reporting_for: str | None = None  # steps: the actor keys without one must name
    query: str = ""
    public: bool = False  # answered without a key
    #: Callers for whom the thing named does not exist (404: an operator asking for an
    #: anomaly about another company learns nothing, not even that it exists).
    not_found: frozenset[str] = frozenset()


ENDPOINTS: dict[tuple[str, str], Rule] = {
    # public
    ("GET", "/health"): Rule(EVERYONE, public=True),
    # the ledger's activity: the admin (or the metrics token, tests/api/test_metrics.py)
    ("GET", "/metrics"): Rule(frozenset({"admin"})),
    ("GET", "/openapi.json"): Rule(EVERYONE, public=True),
    ("GET", "/docs"): Rule(EVERYONE, public=True),
    ("GET", "/docs/oauth2-redirect"): Rule(EVERYONE, public=True),
    ("GET", "/redoc"): Rule(EVERYONE, public=True),
    # the page and its files (the data it shows comes from the API, by the key's role)
    ("GET", "/"): Rule(EVERYONE, public=True),
    ("GET", "/page"): Rule(EVERYONE, public=True),
    ("GET", "/page/assets/{name}"): Rule(
        EVERYONE, scene=lambda w: {"name": "page.js"}, public=True
    ),
    ("GET", "/page/vendor/plotly.min.js"): Rule(EVERYONE, public=True),
    # registry: writes
    ("POST", "/v1/actors"): Rule(
        frozenset({"admin"}),
        body=lambda: {"code": "NEWCO", "name": "New Trading", "country": "CN", "roles": ["trader"]},
    ),
    ("POST", "/v1/facilities"): Rule(
        frozenset({"admin", "mine"}),  # an operator for its own company only
        body=lambda: {
            "code": "WH-9",
            "name": "Baotou bonded warehouse",
            "kind": "warehouse",
            "owner": "MINECO",
            "country": "CN",
        },
    ),
    ("POST", "/v1/licences"): Rule(
        frozenset({"admin", "regulator"}),
        body=lambda: {
            "number": "MQ-9",
            "kind": "mining_quota",
            "holder": "MINECO",
            "max_kg": "5000",
            "valid_from": VALID_FROM,
            "valid_until": VALID_UNTIL,
        },
    ),
    ("POST", "/v1/credentials"): Rule(
        frozenset({"admin"}), body=lambda: {"role": "analyst", "label": "dashboard"}
    ),
    # Anyone may rotate its own key; only an admin another principal's.
    ("POST", "/v1/credentials/{credential_id}/rotate"): Rule(
        frozenset({"admin"}), scene=a_spare_credential, body=lambda: {}
    ),
    ("POST", "/v1/credentials/{credential_id}/revoke"): Rule(
        frozenset({"admin"}), scene=a_spare_credential, body=lambda: {"reason": "rotated"}
    ),
    # registry and batches: reads
    ("GET", "/v1/me"): Rule(EVERYONE),
    ("GET", "/v1/actors/{code}"): Rule(EVERYONE, scene=lambda w: {"code": "MINECO"}),
    ("GET", "/v1/facilities/{code}"): Rule(EVERYONE, scene=lambda w: {"code": "MINE-1"}),
    ("GET", "/v1/licences/{number}"): Rule(EVERYONE, scene=lambda w: {"number": "EX-1"}),
    ("GET", "/v1/batches"): Rule(EVERYONE, scene=ore_1, query="?id={id}"),
    ("GET", "/v1/batches/{actor}/{lot}"): Rule(EVERYONE, scene=ore_1),
    ("GET", "/v1/batches/{actor}/{lot}/upstream"): Rule(EVERYONE, scene=ore_1),
    # EPCIS: the export redacts by role as the trace does; its context is public vocabulary
    ("GET", "/v1/batches/{actor}/{lot}/epcis"): Rule(EVERYONE, scene=ore_1),
    ("GET", "/epcis/contexts/rare-earth.jsonld"): Rule(EVERYONE, public=True),
    ("GET", "/v1/batches/{actor}/{lot}/downstream"): Rule(EVERYONE, scene=ore_1),
    ("GET", "/v1/batches/{actor}/{lot}/provenance"): Rule(EVERYONE, scene=ore_1),
    # inventory and licences: reads (operators see their own stock; an export licence's
    # shipments are its parties')
    ("GET", "/v1/inventory"): Rule(EVERYONE, scene=ore_1),
    ("GET", "/v1/licences"): Rule(EVERYONE),
    ("GET", "/v1/licences/{number}/draws"): Rule(
        EVERYONE - {"magnets", "other"}, scene=lambda w: {"number": "EX-1"}
    ),
    ("GET", "/v1/batches/{actor}/{lot}/graph.svg"): Rule(EVERYONE, scene=ore_1),
    # events
    ("POST", "/v1/events/ore-extracted"): Rule(
        STEP_REPORTERS, body=lambda: ore("ORE-9", "1000"), reporting_for="MINECO"
    ),
    ("POST", "/v1/events/scrap-collected"): Rule(
        STEP_REPORTERS,
        body=lambda: {
            "facility": "SEP-1",
            "lot_code": "SCRAP-9",
            "mass_kg": "300",
            "composition": {"Nd": "0.22", "Dy": "0.03", "Fe": "0.65"},
            "source": "end-of-life EV motors",
        },
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/batch-transformed"): Rule(
        STEP_REPORTERS,
        scene=ore_1,
        body=lambda: beneficiation("MINECO/ORE-1"),
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/batch-split"): Rule(
        STEP_REPORTERS,
        scene=ore_1,
        body=lambda: {"batch": "MINECO/ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "100"}]},
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/batches-merged"): Rule(
        STEP_REPORTERS,
        scene=two_ores,
        body=lambda: {
            "lot_code": "BLEND-1",
            "inputs": [
                {"batch": "MINECO/ORE-1", "mass_kg": "10000"},
                {"batch": "MINECO/ORE-2", "mass_kg": "2000"},
            ],
        },
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/batch-moved"): Rule(
        STEP_REPORTERS,
        scene=ore_1,
        body=lambda: {"batch": "MINECO/ORE-1", "to_facility": "SEP-1"},
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/custody-transferred"): Rule(
        STEP_REPORTERS,
        scene=ore_1,
        body=lambda: sale("MINECO/ORE-1", "OTHER"),
        reporting_for="MINECO",
    ),
    ("POST", "/v1/events/shipment-exported"): Rule(
        STEP_REPORTERS, scene=ore_1, body=lambda: export("MINECO/ORE-1"), reporting_for="MINECO"
    ),
    ("POST", "/v1/events/shipment-received"): Rule(
        frozenset({"admin", "auto"}),  # the consignee, not the exporter
        scene=ore_1_exported,
        body=lambda: receipt("MINECO/ORE-1"),
        reporting_for="AUTOCO",
    ),
    # Holds need no actor: the custodian holds its own batch, an authority in its own name.
    ("POST", "/v1/events/batch-quarantined"): Rule(
        HOLDERS, scene=ore_1, body=lambda: hold("MINECO/ORE-1")
    ),
    ("POST", "/v1/events/batch-released"): Rule(
        HOLDERS,
        scene=ore_1_held,
        body=lambda: hold("MINECO/ORE-1", "second assay within spec"),
    ),
    # A correction: the actor that reported the event (the mine's key), a regulator, an admin.
    ("POST", "/v1/events/corrections"): Rule(
        HOLDERS,
        scene=ore_1,
        body=lambda: {
            "batch": "MINECO/ORE-1",
            "version": 1,
            "reason": "incorrect-data",
            "facts": {"mass_kg": "9000"},
            "note": "weighbridge misread",
        },
    ),
    # audit: auditors, regulators and admins
    ("GET", "/v1/batches/{actor}/{lot}/history"): Rule(AUDITORS, scene=ore_1),
    ("GET", "/v1/batches/{actor}/{lot}/as-of"): Rule(AUDITORS, scene=ore_1, query="?version=1"),
    ("GET", "/v1/batches/{actor}/{lot}/bundle"): Rule(AUDITORS, scene=ore_1),
    ("GET", "/v1/audit/verifier.py"): Rule(AUDITORS),
    ("GET", "/v1/audit/verify"): Rule(AUDITORS),
    ("GET", "/v1/audit/checkpoints"): Rule(AUDITORS),
    ("POST", "/v1/audit/checkpoints"): Rule(AUDITORS),
    ("GET", "/v1/batches/{actor}/{lot}/report"): Rule(AUDITORS, scene=ore_1),
    ("GET", "/v1/batches/{actor}/{lot}/report.html"): Rule(AUDITORS, scene=ore_1),
    ("GET", "/v1/batches/{actor}/{lot}/report.pdf"): Rule(AUDITORS, scene=ore_1),
    ("POST", "/v1/events/bulk"): Rule(
        STEP_REPORTERS,
        body=lambda: {"events": [{"type": "OreExtracted", **ore("ORE-9", "1000")}]},
        reporting_for="MINECO",
    ),
    # the trade ledger: lines name clients (analysts get totals and dashboards only)
    ("GET", "/v1/trades"): Rule(EVERYONE - {"analyst"}, scene=ore_1_exported),
    ("GET", "/v1/trades/totals"): Rule(EVERYONE, scene=ore_1_exported, query="?by=client"),
    ("GET", "/v1/dashboards/exports"): Rule(EVERYONE, scene=ore_1_exported),
    ("GET", "/v1/dashboards/top-clients"): Rule(EVERYONE, scene=ore_1_exported),
    # anomalies: everyone reads (operators those about their own company); analysts,
    # regulators and admins review
    ("GET", "/v1/anomalies"): Rule(EVERYONE, scene=an_anomaly),
    ("GET", "/v1/anomalies/rules"): Rule(EVERYONE),
    ("GET", "/v1/anomalies/{anomaly_id}"): Rule(
        EVERYONE - {"magnets", "other"},
        scene=an_anomaly,
        not_found=frozenset({"magnets", "other"}),
    ),
    ("POST", "/v1/anomalies/{anomaly_id}/review"): Rule(
        frozenset({"admin", "analyst", "regulator"}),
        scene=an_anomaly,
        body=lambda: {"status": "acknowledged", "note": "asked the exporter for its papers"},
    ),
    # live subscriptions (finite here: `until`; redaction per role in test_streams.py)
    ("GET", "/v1/streams/{projection}"): Rule(
        EVERYONE, scene=lambda w: {"projection": "genealogy"}, query="?after=0&until=1"
    ),
    # monthly declarations name clients: an operator reads its own, analysts none; the
    # list of who has not declared is the overseers'
    ("GET", "/v1/declarations"): Rule(AUDITORS, query="?month=2026-01&missing=true"),
    **{
        ("GET", f"/v1/declarations/{{actor}}/{{month}}{suffix}"): Rule(
            AUDITORS | {"mine"}, scene=ore_1_this_month
        )
        for suffix in ("", ".csv", ".xlsx", ".html", ".pdf")
    },
}


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, HEAD aside."""
    routes: Any = app.routes
    try:  # FastAPI 0.16x keeps included routers as wrappers; this flattens them
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(routes))
    except ImportError:  # older FastAPI: app.routes is already flat
        pass
    return {
        (method, route.path)
        for route in routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }


def prepare(world: World, method: str, path: str) -> str:
    """Set the endpoint's scene; the URL to call."""
    rule = ENDPOINTS[(method, path)]
    return (path + rule.query).format(**rule.scene(world))


def send(
    world: World, method: str, path: str, url: str, headers: dict[str, str], named: bool
) -> Any:
    """Call the endpoint. ``named``: the caller has no actor of its own, so a step's body
    names the one it reports for."""
    rule = ENDPOINTS[(method, path)]
    if method == "GET":
        return world.client.get(url, headers=headers)
    body = rule.body() if rule.body else {}
    if named and rule.reporting_for:
        if "events" in body:
            body["events"] = [e | {"actor": rule.reporting_for} for e in body["events"]]
        else:
            body["actor"] = rule.reporting_for
    return world.client.post(url, json=body, headers=headers)


def _cases(*, allowed: bool) -> list[Any]:
    """(method, path, role) for every pair whose role is (or is not) allowed."""
    return [
        pytest.param(method, path, who, id=f"{who}-{method}-{path}")
        for (method, path), rule in ENDPOINTS.items()
        for who in ROLES
        if (who in rule.allowed) is allowed and who not in rule.not_found
    ]


def test_every_route_has_a_role_rule(client: TestClient) -> None:
    assert served_routes(client.app) == set(ENDPOINTS)  # type: ignore[arg-type]


def test_every_documented_operation_has_a_role_rule(client: TestClient) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
    }

    assert documented <= set(ENDPOINTS)


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "who"), _cases(allowed=True))
def test_allowed_role_gets_its_answer(world: World, method: str, path: str, who: str) -> None:
    url = prepare(world, method, path)

    response = send(world, method, path, url, world.headers(who), who in WITHOUT_AN_ACTOR)

    assert response.status_code == (200 if method == "GET" else 201), response.text


@pytest.mark.parametrize(("method", "path", "who"), _cases(allowed=False))
def test_role_not_allowed_is_refused_and_nothing_is_stored(
    world: World, method: str, path: str, who: str
) -> None:
    url = prepare(world, method, path)
    before = world.recorded()

    response = send(world, method, path, url, world.headers(who), who in WITHOUT_AN_ACTOR)

    assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM), response.text
    assert world.recorded() == before


@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        pytest.param(method, path, who, id=f"{who}-{method}-{path}")
        for (method, path), rule in ENDPOINTS.items()
        for who in sorted(rule.not_found)
    ],
)
def test_what_a_role_may_not_see_is_not_found(
    world: World, method: str, path: str, who: str
) -> None:
    url = prepare(world, method, path)

    response = send(world, method, path, url, world.headers(who), who in WITHOUT_AN_ACTOR)

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM), response.text


# --- without a valid key ------------------------------------------------------------------


def _bad_key(world: World, kind: str) -> dict[str, str]:
    if kind == "no key":
        return {}
    if kind == "unknown key":
        return {"Authorization": "Bearer lsk_this-key-was-never-issued"}
    issued = world.register("/v1/credentials", {"role": "operator", "actor": "MINECO"})
    world.register(f"/v1/credentials/{issued['credential_id']}/revoke", {"reason": "laptop stolen"})
    return {"Authorization": f"Bearer {issued['key']}"}


@pytest.mark.parametrize("kind", ["no key", "unknown key", "revoked key"])
@pytest.mark.parametrize(
    ("method", "path"), [mp for mp, rule in ENDPOINTS.items() if not rule.public]
)
def test_request_without_a_valid_key_is_unauthorized(
    world: World, method: str, path: str, kind: str
) -> None:
    headers = _bad_key(world, kind)
    url = prepare(world, method, path)
    before = world.recorded()

    response = send(world, method, path, url, headers, named=False)

    assert (response.status_code, response.headers["content-type"]) == (401, PROBLEM), response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lodestone"'
    assert response.json()["rule"] == "authentication"
    assert world.recorded() == before


@pytest.mark.parametrize(("method", "path"), [mp for mp, rule in ENDPOINTS.items() if rule.public])
def test_public_route_answers_without_a_key(world: World, method: str, path: str) -> None:
    response = world.client.request(method, prepare(world, method, path))

    assert response.status_code == 200


# --- the rules behind the matrix ----------------------------------------------------------


def _facility(owner: str) -> dict[str, Any]:
    return {
        "code": "WH-9",
        "name": "Bonded warehouse",
        "kind": "warehouse",
        "owner": owner,
        "country": "CN",
    }


def test_operator_registers_a_facility_of_its_own_company(world: World) -> None:
    answer = world.register("/v1/facilities", _facility("MAGCO"), "magnets")

    assert answer["code"] == "WH-9"
    assert world.get("/v1/facilities/WH-9").json()["owner"] == "MAGCO"


def test_operator_registering_a_facility_for_another_company_is_refused(world: World) -> None:
    problem = world.refused("/v1/facilities", _facility("MINECO"), "magnets").json()

    assert (problem["status"], problem["field"], problem["rule"]) == (403, "owner", "ownership")


@pytest.mark.parametrize("who", ["auditor", "analyst"])
def test_auditors_and_analysts_are_refused_for_their_role(world: World, who: str) -> None:
    problem = world.refused("/v1/events/ore-extracted", ore(actor="MINECO"), who).json()

    assert (problem["status"], problem["rule"]) == (403, "role")


def test_admin_reporting_a_step_must_name_the_actor(world: World) -> None:
    problem = world.refused("/v1/events/ore-extracted", ore(), "admin").json()

    assert (problem["status"], problem["field"], problem["rule"]) == (422, "actor", "required")


def test_operator_reporting_for_another_actor_is_refused(world: World) -> None:
    body = ore(actor="MINECO")

    problem = world.refused("/v1/events/ore-extracted", body, "magnets").json()

    assert (problem["status"], problem["field"], problem["rule"]) == (403, "actor", "ownership")


def test_operator_may_name_its_own_actor(world: World) -> None:
    answer = world.report("ore-extracted", ore(actor="MINECO"))

    assert answer["batch"] == "MINECO/ORE-1"


def test_regulator_may_quarantine_in_bulk(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {"events": [{"type": "BatchQuarantined", **hold("MINECO/ORE-1", "suspected smuggling")}]}

    answer = world.report("bulk", body, "regulator")

    assert answer["results"][0]["event"] == "BatchQuarantined"


def test_regulator_reporting_a_step_for_an_actor_in_bulk_is_refused(world: World) -> None:
    body = {"events": [{"type": "OreExtracted", **ore(actor="MINECO")}]}

    problem = world.refused("/v1/events/bulk", body, "regulator").json()

    assert (problem["status"], problem["field"], problem["rule"]) == (
        403,
        "events[0].actor",
        "role",
    )


def test_regulator_reporting_a_step_in_bulk_is_forbidden_even_without_an_actor(
    world: World,
) -> None:
    body = {"events": [{"type": "OreExtracted", **ore()}]}

    problem = world.refused("/v1/events/bulk", body, "regulator").json()

    assert problem["status"] == 403


def test_key_presented_as_x_api_key_is_accepted(world: World) -> None:
    response = world.client.get("/v1/me", headers={"X-API-Key": world.keys["auditor"]})

    assert response.json()["role"] == "auditor"


@pytest.mark.parametrize(
    ("who", "role", "actor"),
    [
        ("mine", "operator", "MINECO"),
        ("auto", "operator", "AUTOCO"),
        ("regulator", "regulator", None),
    ],
)
def test_me_names_the_keys_role_and_actor(
    world: World, who: str, role: str, actor: str | None
) -> None:
    me = world.get("/v1/me", who).json()

    assert (me["role"], me["actor"]) == (role, actor)


def test_revoked_key_stops_working_at_once(world: World) -> None:
    issued = world.register("/v1/credentials", {"role": "auditor", "label": "temp"})
    headers = {"Authorization": f"Bearer {issued['key']}"}
    assert world.client.get("/v1/me", headers=headers).status_code == 200

    world.register(
        f"/v1/credentials/{issued['credential_id']}/revoke", {"reason": "contract ended"}
    )

    assert world.client.get("/v1/me", headers=headers).status_code == 401


# --- commercial details -------------------------------------------------------------------

REDACTED = {"redacted": True}
#: After MINECO sells ORE-1 to MAGCO: the seller, the buyer and the overseers see.
SALE_VIEWERS = [
    ("admin", True),
    ("mine", True),
    ("magnets", True),
    ("auditor", True),
    ("regulator", True),
    ("other", False),
    ("auto", False),
    ("analyst", False),
]
#: After MINECO exports ORE-1 to AUTOCO (and for EX-1 itself): the exporter and licence
#: holder, the consignee and the overseers see.
EXPORT_VIEWERS = [
    ("admin", True),
    ("mine", True),
    ("auto", True),
    ("auditor", True),
    ("regulator", True),
    ("magnets", False),
    ("other", False),
    ("analyst", False),
]


def _sold(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report(
        "custody-transferred",
        sale("ORE-1", "MAGCO", to_facility="MAG-1", price="61500", currency="USD"),
    )


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_custodian_of_a_sold_batch_is_shown_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)

    custodian = world.get("/v1/batches/MINECO/ORE-1", who).json()["custodian"]

    assert custodian == (
        {"code": "MAGCO", "name": "Ningbo Magnets", "country": "CN"} if sees else REDACTED
    )


@pytest.mark.parametrize(("who", "sees"), EXPORT_VIEWERS)
def test_consignee_of_an_exported_batch_is_shown_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    ore_1_exported(world)

    state = world.get("/v1/batches/MINECO/ORE-1", who).json()

    assert state["export"]["consignee"] == ("AUTOCO" if sees else REDACTED)
    assert (state["custodian"] == REDACTED) is not sees


@pytest.mark.parametrize(("who", "sees"), EXPORT_VIEWERS)
def test_licence_of_an_exported_batch_is_shown_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    ore_1_exported(world)

    state = world.get("/v1/batches/MINECO/ORE-1", who).json()

    # A licence is issued to one exporter for one consignee: its number identifies them.
    assert state["export"]["licence"] == ("EX-1" if sees else REDACTED)
    assert state["export"]["destination_country"] == "DE"


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_a_batch_found_by_id_is_named_only_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)
    id = world.get("/v1/batches/MINECO/ORE-1", "admin").json()["id"]

    state = world.get(f"/v1/batches?id={id}", who).json()

    # ACTOR/LOT names the company that made the batch: an id found in a trace must not
    # turn back into it for a caller who may not see that company.
    assert (state["batch"], state["lot_code"]) == (
        ("MINECO/ORE-1", "ORE-1") if sees else (None, None)
    )
    assert state["remaining_kg"] == "10000"


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_trade_details_downstream_are_shown_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream", who).json()

    [trade] = downstream["nodes"][0]["trades"]
    details = {k: trade[k] for k in ("from", "to", "contract", "price", "currency")}
    if sees:
        assert (details["from"]["code"], details["to"]["code"]) == ("MINECO", "MAGCO")
        assert (details["contract"], details["price"], details["currency"]) == (
            "C-2026-077",
            "61500",
            "USD",
        )
    else:
        assert details == dict.fromkeys(details, REDACTED)


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_holder_downstream_is_shown_to_the_trades_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream", who).json()

    magco = {"code": "MAGCO", "name": "Ningbo Magnets", "country": "CN"}
    assert downstream["nodes"][0]["custodian"] == (magco if sees else REDACTED)
    assert downstream["summary"]["end_holders"] == (["MAGCO"] if sees else ["redacted"])


@pytest.mark.parametrize(("who", "sees"), SALE_VIEWERS)
def test_volume_of_a_trade_downstream_is_shown_to_everyone(
    world: World, who: str, sees: bool
) -> None:
    _sold(world)

    [trade] = world.get("/v1/batches/MINECO/ORE-1/downstream", who).json()["nodes"][0]["trades"]

    assert (trade["kind"], trade["kg"]) == ("sale", "10000")


@pytest.mark.parametrize(("who", "sees"), EXPORT_VIEWERS)
def test_licence_terms_are_shown_to_its_parties_and_overseers(
    world: World, who: str, sees: bool
) -> None:
    licence = world.get("/v1/licences/EX-1", who).json()

    terms = {k: licence[k] for k in ("consignee", "end_user", "end_use", "contract")}
    assert terms == (
        {
            "consignee": "AUTOCO",
            "end_user": "Auto Motors GmbH",
            "end_use": "EV traction motors",
            "contract": "C-2026-01",
        }
        if sees
        else dict.fromkeys(terms, REDACTED)
    )
    assert licence["destination_country"] == "DE"


@pytest.mark.parametrize(("who", "sees"), EXPORT_VIEWERS)
def test_an_export_licence_names_its_holder_to_its_parties_and_overseers_only(
    world: World, who: str, sees: bool
) -> None:
    licence = world.get("/v1/licences/EX-1", who).json()

    # The holder is the exporter trading with the consignee: as commercial as the
    # consignee itself (a quota's holder, a mine or separator, stays open).
    assert licence["holder"] == ("MINECO" if sees else REDACTED)


def test_seller_in_the_middle_of_a_chain_still_sees_whom_it_sold_to(world: World) -> None:
    _sold(world)
    world.report("custody-transferred", sale("MINECO/ORE-1", "OTHER"), "magnets")

    custodian = world.get("/v1/batches/MINECO/ORE-1", "magnets").json()["custodian"]

    assert custodian["code"] == "OTHER"
