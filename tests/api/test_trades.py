"""The trade ledger over HTTP, role by role: auditors, regulators and admins see every
line with names, prices and contracts; an operator only its own lines and their
counterparties; an analyst no line, only totals and dashboards in which clients are
pseudonyms, and a filter naming a company is refused rather than answered."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from lodestone.projections.registry import REGISTRY
from tests.api.conftest import PROBLEM, VALID_FROM, VALID_UNTIL, World, export, ore, receipt, sale

#: Every actor of the world, by code and name: none may appear in an analyst's answer.
COMPANIES = [
    "MINECO",
    "Bayan Mining Co",
    "MAGCO",
    "Ningbo Magnets",
    "OTHER",
    "Other Refining",
    "AUTOCO",
    "Auto Motors GmbH",
]
ANALYST_GETS = [
    "/v1/trades/totals?by=month",
    "/v1/trades/totals?by=client",
    "/v1/trades/totals?by=destination",
    "/v1/trades/totals?by=element",
    "/v1/trades/totals?by=client&element=Dy&kind=sale&kind=export&kind=receipt",
    "/v1/dashboards/exports",
    "/v1/dashboards/top-clients",
    "/v1/dashboards/top-clients?element=Dy",
]


@pytest.fixture
def world(fresh_world: World) -> World:
    """A registered world of its own per test; ORE-1 sold to MAGCO in February, ORE-2
    exported to AUTOCO in Germany in March and received there."""
    fresh_world.report("ore-extracted", ore("ORE-1", "10000", occurred_at=day(2, 2)))
    fresh_world.report(
        "custody-transferred",
        sale(
            "ORE-1",
            "MAGCO",
            to_facility="MAG-1",
            price="150000",
            currency="USD",
            occurred_at=day(2, 10),
        ),
    )
    fresh_world.report("ore-extracted", ore("ORE-2", "5000", occurred_at=day(2, 3)))
    fresh_world.report("shipment-exported", export("ORE-2", occurred_at=day(3, 5)))
    fresh_world.report("shipment-received", receipt("MINECO/ORE-2", occurred_at=day(3, 20)), "auto")
    return fresh_world


def day(month: int, n: int) -> str:
    return f"2026-{month:02d}-{n:02d}T08:00:00Z"


def magnets_exported(world: World) -> None:
    """MAGCO recycles 1000 kg of scrap (3 % Dy) into alloy, makes 900 kg of magnets of
    it and exports them to AUTOCO in April under a licence of its own."""
    world.register(
        "/v1/licences",
        {
            "number": "EX-MAG",
            "kind": "export_licence",
            "holder": "MAGCO",
            "max_kg": "10000",
            "valid_from": VALID_FROM,
            "valid_until": VALID_UNTIL,
            "items": [{"material": "magnet", "customs_code": "8505.11"}],
            "consignee": "AUTOCO",
            "end_user": "Auto Motors GmbH",
            "end_use": "EV traction motors",
            "destination_country": "DE",
        },
    )
    scrap = {"Nd": "0.25", "Dy": "0.03", "Fe": "0.65", "B": "0.01"}
    steps = [
        (
            "scrap-collected",
            {
                "facility": "MAG-1",
                "lot_code": "SCRAP-1",
                "mass_kg": "1000",
                "composition": scrap,
                "source": "end-of-life motors",
                "occurred_at": day(3, 1),
            },
        ),
        (
            "batch-transformed",
            {
                "facility": "MAG-1",
                "process": "recycling",
                "reference": "RC-1",
                "inputs": [{"batch": "SCRAP-1", "mass_kg": "1000"}],
                "outputs": [
                    {
                        "lot_code": "ALLOY-1",
                        "material": "alloy",
                        "mass_kg": "950",
                        "composition": scrap,
                    }
                ],
                "occurred_at": day(3, 2),
            },
        ),
        (
            "batch-transformed",
            {
                "facility": "MAG-1",
                "process": "magnet_making",
                "reference": "MM-1",
                "inputs": [{"batch": "ALLOY-1", "mass_kg": "950"}],
                "outputs": [
                    {
                        "lot_code": "MAGNETS-1",
                        "material": "magnet",
                        "mass_kg": "900",
                        "composition": scrap,
                    }
                ],
                "occurred_at": day(3, 3),
            },
        ),
        (
            "shipment-exported",
            export(
                "MAGNETS-1",
                licence="EX-MAG",
                customs_code="8505.11",
                occurred_at=day(4, 1),
            ),
        ),
    ]
    for kind, body in steps:
        world.report(kind, body, "magnets")


def lines(world: World, who: str, query: str = "") -> Any:
    response = world.get(f"/v1/trades{query}", who)
    assert response.status_code == 200, response.text
    return response.json()


def ok(world: World, path: str, who: str) -> Any:
    response = world.get(path, who)
    assert response.status_code == 200, response.text
    return response.json()


def refused(world: World, path: str, who: str, status: int) -> Any:
    response = world.get(path, who)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


# --- lines, by role ---------------------------------------------------------------------------


def test_a_regulator_sees_every_line_with_names_prices_and_contracts(world: World) -> None:
    found = lines(world, "regulator")

    assert found["total"] == 3
    sold, exported, received = found["lines"]
    assert (sold["kind"], sold["batch"], sold["kg"], sold["month"]) == (
        "sale",
        "MINECO/ORE-1",
        "10000",
        "2026-02",
    )
    assert (sold["seller"]["code"], sold["client"]["name"]) == ("MINECO", "Ningbo Magnets")
    assert (sold["price"], sold["currency"], sold["contract"]) == ("150000", "USD", "C-2026-077")
    assert (exported["client"]["code"], exported["licence"], exported["customs_code"]) == (
        "AUTOCO",
        "EX-1",
        "2530.90",
    )
    assert (exported["end_user"], exported["destination_country"]) == ("Auto Motors GmbH", "DE")
    assert (received["kind"], received["seller"]["code"], received["client"]["code"]) == (
        "receipt",
        "MINECO",
        "AUTOCO",
    )


def test_a_line_gives_the_kg_of_each_element_it_carries(world: World) -> None:
    sold = lines(world, "regulator", "?kind=sale")["lines"][0]

    # 10,000 kg of ore at 3 % Nd, 1 % Pr, 0.2 % Dy, 0.05 % Tb, 20 % Fe.
    assert sold["elements"] == {"Dy": "20", "Fe": "2000", "Nd": "300", "Pr": "100", "Tb": "5"}
    assert sold["material"] == "ore"


@pytest.mark.parametrize("who", ["auditor", "admin"])
def test_auditors_and_admins_see_every_line_too(world: World, who: str) -> None:
    found = lines(world, who)

    assert found["total"] == 3
    assert found["lines"][0]["contract"] == "C-2026-077"


def test_an_operator_sees_only_the_lines_it_is_party_to_with_its_counterparty(
    world: World,
) -> None:
    bought = lines(world, "magnets")
    imported = lines(world, "auto")

    assert [(line["kind"], line["seller"]["code"]) for line in bought["lines"]] == [
        ("sale", "MINECO")
    ]
    assert bought["lines"][0]["price"] == "150000"  # its own purchase: it is a party
    assert [line["kind"] for line in imported["lines"]] == ["export", "receipt"]
    assert (bought["total"], imported["total"]) == (1, 2)


def test_an_operator_party_to_no_trade_sees_no_line(world: World) -> None:
    found = lines(world, "other")

    assert (found["lines"], found["total"]) == ([], 0)


def test_an_operator_naming_a_client_it_never_traded_with_gets_nothing(world: World) -> None:
    found = lines(world, "magnets", "?client=AUTOCO")

    assert (found["lines"], found["total"]) == ([], 0)


def test_an_analyst_is_refused_the_trade_lines(world: World) -> None:
    problem = refused(world, "/v1/trades", "analyst", 403)

    assert problem["rule"] == "role"
    assert "trade lines" in problem["detail"]


# --- an analyst may not name a company ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/trades/totals?by=month&client=MAGCO",
        "/v1/trades/totals?by=client&client=MAGCO",
        "/v1/dashboards/top-clients?client=MAGCO",
    ],
)
def test_an_analyst_naming_a_client_is_refused_with_a_problem_naming_the_field(
    world: World, path: str
) -> None:
    problem = refused(world, path, "analyst", 403)

    assert (problem["field"], problem["rule"]) == ("client", "client-names")


def test_an_analyst_naming_a_client_that_does_not_exist_gets_the_same_refusal(
    world: World,
) -> None:
    known = refused(world, "/v1/trades/totals?by=month&client=MAGCO", "analyst", 403)
    unknown = refused(world, "/v1/trades/totals?by=month&client=NOBODY", "analyst", 403)

    assert (unknown["field"], unknown["rule"], unknown["detail"]) == (
        known["field"],
        known["rule"],
        known["detail"],
    )


def test_an_analyst_naming_a_seller_is_refused(world: World) -> None:
    problem = refused(world, "/v1/trades/totals?by=month&actor=MINECO", "analyst", 403)

    assert (problem["field"], problem["rule"]) == ("actor", "actor-names")


def test_an_analyst_sees_clients_as_pseudonyms_ranked_by_volume(world: World) -> None:
    totals = ok(world, "/v1/trades/totals?by=client", "analyst")["totals"]

    assert [(t["client"], t["kg"]) for t in totals] == [
        ({"pseudonym": "client 1"}, "10000"),
        ({"pseudonym": "client 2"}, "5000"),
    ]


def test_a_pseudonym_stays_with_its_client_whatever_the_filter(world: World) -> None:
    march = ok(world, "/v1/trades/totals?by=client&from=2026-03", "analyst")["totals"]

    # AUTOCO is the second client of the whole ledger, also when alone in March.
    assert [t["client"] for t in march] == [{"pseudonym": "client 2"}]


def test_no_company_price_or_contract_appears_in_any_analyst_answer(world: World) -> None:
    magnets_exported(world)

    answers = [json.dumps(ok(world, path, "analyst")) for path in ANALYST_GETS]

    leaks = [
        (path, word)
        for path, answer in zip(ANALYST_GETS, answers, strict=True)
        for word in [*COMPANIES, "C-2026-077", "150000", "EX-1", "EX-MAG"]
        if word in answer
    ]
    assert leaks == []
    assert all('"price"' not in a and '"contract"' not in a for a in answers)


# --- totals ----------------------------------------------------------------------------------


def test_totals_by_element_give_the_exact_content_of_sales_and_exports(world: World) -> None:
    answer = ok(world, "/v1/trades/totals?by=element", "regulator")

    by_element = {t["element"]: t for t in answer["totals"]}
    assert (by_element["Dy"]["element_kg"], by_element["Dy"]["kg"]) == ("30", "15000")
    assert by_element["Tb"]["element_kg"] == "7.5"
    assert (answer["kinds"], answer["kg"], answer["lines"]) == (["sale", "export"], "15000", 2)


def test_totals_by_month_and_by_destination_sum_goods_mass(world: World) -> None:
    by_month = ok(world, "/v1/trades/totals?by=month", "regulator")["totals"]
    by_destination = ok(world, "/v1/trades/totals?by=destination", "auditor")["totals"]

    assert [(t["month"], t["kg"], t["lines"]) for t in by_month] == [
        ("2026-02", "10000", 1),
        ("2026-03", "5000", 1),
    ]
    assert [(t["destination_country"], t["kg"]) for t in by_destination] == [
        (None, "10000"),
        ("DE", "5000"),
    ]


def test_a_regulator_sees_totals_by_client_with_names(world: World) -> None:
    totals = ok(world, "/v1/trades/totals?by=client&element=Dy", "regulator")["totals"]

    assert [(t["client"]["code"], t["element_kg"]) for t in totals] == [
        ("MAGCO", "20"),
        ("AUTOCO", "10"),
    ]


def test_an_operator_s_totals_cover_only_its_own_lines(world: World) -> None:
    answer = ok(world, "/v1/trades/totals?by=client", "auto")

    assert [(t["client"]["code"], t["kg"]) for t in answer["totals"]] == [("AUTOCO", "5000")]
    assert answer["kg"] == "5000"


def test_lines_are_filtered_by_client_element_material_country_and_period(world: World) -> None:
    def count(query: str) -> int:
        return int(lines(world, "regulator", query)["total"])

    assert count("?client=MAGCO") == 1
    assert count("?actor=MINECO") == 3  # its sale, its export, and that export's receipt
    assert count("?element=Tb&material=ore") == 3
    assert count("?element=Y") == 0
    assert count("?country=DE") == 2
    assert count("?from=2026-03&to=2026-03") == 2
    assert count("?kind=receipt") == 1


def test_lines_come_a_page_at_a_time_with_the_total(world: World) -> None:
    first = lines(world, "regulator", "?limit=2")
    last = lines(world, "regulator", f"?limit=2&offset={first['next_offset']}")

    assert (len(first["lines"]), first["total"], first["next_offset"]) == (2, 3, 2)
    assert (len(last["lines"]), last["next_offset"]) == (1, None)
    assert last["lines"][0]["kind"] == "receipt"


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        ("?limit=1001", "limit", "range"),
        ("?offset=-1", "offset", "range"),
        ("?element=Xx", "element", "element-symbol"),
        ("?material=rock", "material", "material"),
        ("?country=Germany", "country", "iso-3166"),
        ("?from=2026-13", "from", "month"),
        ("?from=2026-05&to=2026-04", "to", "period"),
        ("?client=NOBODY", "client", "exists"),
    ],
)
def test_an_invalid_filter_is_refused_naming_the_field_and_rule(
    world: World, query: str, field: str, rule: str
) -> None:
    problem = refused(world, f"/v1/trades{query}", "regulator", 422)

    assert (problem["field"], problem["rule"]) == (field, rule)


def test_totals_by_an_unknown_key_are_refused(world: World) -> None:
    problem = refused(world, "/v1/trades/totals?by=seller", "regulator", 422)

    assert problem["field"] == "by"


# --- dashboards ------------------------------------------------------------------------------


def test_the_export_dashboard_shows_controlled_elements_and_magnets_by_destination_and_month(
    world: World,
) -> None:
    magnets_exported(world)

    dashboard = ok(world, "/v1/dashboards/exports", "analyst")

    assert sorted(dashboard["elements"]) == sorted(["Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y"])
    assert dashboard["elements"]["Dy"] == [
        {"destination_country": "DE", "month": "2026-03", "kg": "10", "lines": 1},
        {"destination_country": "DE", "month": "2026-04", "kg": "27", "lines": 1},
    ]
    assert dashboard["element_kg"]["Dy"] == "37"
    assert dashboard["elements"]["Sm"] == []
    assert dashboard["magnets"] == [
        {"destination_country": "DE", "month": "2026-04", "kg": "900", "lines": 1}
    ]


def test_the_export_dashboard_of_a_period_leaves_other_months_out(world: World) -> None:
    magnets_exported(world)

    dashboard = ok(world, "/v1/dashboards/exports?from=2026-04&to=2026-04", "regulator")

    assert [f["month"] for f in dashboard["elements"]["Dy"]] == ["2026-04"]
    assert dashboard["magnets_kg"] == "900"


def test_an_operator_s_export_dashboard_covers_only_its_own_exports(world: World) -> None:
    magnets_exported(world)

    dashboard = ok(world, "/v1/dashboards/exports", "mine")

    assert [f["month"] for f in dashboard["elements"]["Dy"]] == ["2026-03"]
    assert dashboard["magnets"] == []


def test_top_clients_rank_named_clients_for_a_regulator(world: World) -> None:
    top = ok(world, "/v1/dashboards/top-clients", "regulator")["clients"]

    assert [(c["rank"], c["client"]["code"], c["kg"], c["share"]) for c in top] == [
        (1, "MAGCO", "10000", "0.666667"),
        (2, "AUTOCO", "5000", "0.333333"),
    ]


def test_top_clients_by_an_element_rank_by_its_content(world: World) -> None:
    magnets_exported(world)

    top = ok(world, "/v1/dashboards/top-clients?element=Dy&limit=1", "analyst")["clients"]

    # AUTOCO: 10 kg of Dy in the ore, 27 in the magnets; MAGCO: 20 in the ore. Its
    # pseudonym is its rank by goods mass in the whole ledger: 5,900 kg to MAGCO's 10,000.
    assert [(c["rank"], c["client"], c["element_kg"]) for c in top] == [
        (1, {"pseudonym": "client 2"}, "37")
    ]


# --- the gateway keeps the read model up to date ------------------------------------------------


def test_the_gateway_runs_a_projector_per_read_model_that_follows_the_log_alone(
    world: World,
) -> None:
    runtime = world.client.app.state.runtime
    recorded = world.recorded()
    deadline = time.monotonic() + 10
    # No trade-ledger read was made: only the background thread can have moved it.
    while runtime.views["trades"].position("ledger") < recorded and time.monotonic() < deadline:
        time.sleep(0.05)

    assert sorted(runtime.projectors) == sorted(REGISTRY.names())
    assert runtime.views["trades"].position("ledger") == recorded
