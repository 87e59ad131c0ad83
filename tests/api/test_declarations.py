"""``/v1/declarations``: the monthly declaration of a reporting actor, its figures
checked by hand on a small chain, each file format opened with its real reader, who
may read which declaration, month refusals, and the overseers' list of actors with no
activity in a month."""

from __future__ import annotations

import csv
import io
from typing import Any

import pypdfium2
import pytest
from openpyxl import load_workbook
from PIL import Image

from tests.api.conftest import (
    PROBLEM,
    World,
    beneficiation,
    export,
    ore,
    receipt,
    sale,
)

#: Rock ore with light rare earths only (La, Ce, Nd, Pr): exported without a licence.
LIGHT_ORE = {"La": "0.02", "Ce": "0.03", "Nd": "0.01", "Pr": "0.003", "Fe": "0.2"}
MARCH = "/v1/declarations/MINECO/2026-03"
FORMATS = ["", ".csv", ".xlsx", ".html", ".pdf"]


def day(month: int, n: int, time: str = "08:00:00") -> str:
    return f"2026-{month:02d}-{n:02d}T{time}Z"


@pytest.fixture
def world(fresh_world: World) -> World:
    """MINECO in March 2026: mines ORE-1 (10,000 kg), ORE-2 (5,000 kg of light ore) and
    ORE-3 (2,000 kg); beneficiates ORE-1 into 800 kg of CON-1 and splits 100 kg of it
    off as CON-1A; sells the other 700 kg of CON-1 to MAGCO for 150,000 USD; exports
    ORE-3 to AUTOCO under licence EX-1 (controlled: it carries Dy and Tb), which AUTOCO
    receives, and ORE-2 without a licence (uncontrolled), still in transit at the
    month's end. On April 1st at 00:00 UTC it mines ORE-4 (1,000 kg)."""
    w = fresh_world
    w.report("ore-extracted", ore("ORE-1", "10000", occurred_at=day(3, 2)))
    w.report("ore-extracted", ore("ORE-2", "5000", composition=LIGHT_ORE, occurred_at=day(3, 3)))
    w.report("ore-extracted", ore("ORE-3", "2000", occurred_at=day(3, 3, "09:00:00")))
    w.report("batch-transformed", beneficiation(occurred_at=day(3, 4)))
    w.report(
        "batch-split",
        {
            "batch": "CON-1",
            "parts": [{"lot_code": "CON-1A", "mass_kg": "100"}],
            "occurred_at": day(3, 5),
        },
    )
    w.report(
        "custody-transferred",
        sale(
            "CON-1",
            "MAGCO",
            to_facility="MAG-1",
            price="150000",
            currency="USD",
            occurred_at=day(3, 10),
        ),
    )
    w.report("shipment-exported", export("ORE-3", shipment="BL-1", occurred_at=day(3, 12)))
    uncontrolled = {k: v for k, v in export("ORE-2", shipment="BL-2").items() if k != "licence"}
    w.report("shipment-exported", uncontrolled | {"occurred_at": day(3, 15)})
    w.report("shipment-received", receipt("MINECO/ORE-3", occurred_at=day(3, 20)), "auto")
    w.report("ore-extracted", ore("ORE-4", "1000", occurred_at=day(4, 1, "00:00:00")))
    return w


def declared(world: World, path: str = MARCH, who: str = "regulator") -> Any:
    response = world.get(path, who)
    assert response.status_code == 200, response.text
    return response.json()


def refused(world: World, path: str, who: str, status: int) -> Any:
    response = world.get(path, who)
    assert (response.status_code, response.headers["content-type"]) == (status, PROBLEM), (
        response.text
    )
    return response.json()


def party(code: str, name: str, country: str) -> dict[str, str]:
    return {"code": code, "name": name, "country": country}


MINECO = party("MINECO", "Bayan Mining Co", "CN")
MAGCO = party("MAGCO", "Ningbo Magnets", "CN")
AUTOCO = party("AUTOCO", "Auto Motors GmbH", "DE")


# --- the figures, by hand -----------------------------------------------------------------


def test_production_is_what_the_actor_mined_and_made_by_material_and_element(
    world: World,
) -> None:
    production = declared(world)["production"]

    # 800 kg of concentrate at 36 % Nd, 12 % Pr, 2.4 % Dy, 0.6 % Tb, 5 % Fe. The 100 kg
    # split off CON-1 is not production: it was already counted in those 800 kg.
    assert production[0] == {
        "process": "beneficiation",
        "material": "concentrate",
        "kg": "800",
        "batches": 1,
        "elements": {"Dy": "19.2", "Fe": "40", "Nd": "288", "Pr": "96", "Tb": "4.8"},
    }
    # 12,000 kg of ORE (3 % Nd, 1 % Pr, 0.2 % Dy, 0.05 % Tb, 20 % Fe) and 5,000 kg of
    # light ore (2 % La, 3 % Ce, 1 % Nd, 0.3 % Pr, 20 % Fe); ORE-4 is April's.
    assert production[1] == {
        "process": "mined",
        "material": "ore",
        "kg": "17000",
        "batches": 3,
        "elements": {
            "Ce": "150",
            "Dy": "24",
            "Fe": "3400",
            "La": "100",
            "Nd": "410",
            "Pr": "135",
            "Tb": "6",
        },
    }
    assert len(production) == 2


def test_sales_name_each_client_with_volume_element_content_and_value(world: World) -> None:
    sales = declared(world)["sales"]

    # The 700 kg of CON-1 left after the split.
    assert sales == [
        {
            "counterparty": MAGCO,
            "kind": "sale",
            "material": "concentrate",
            "kg": "700",
            "lines": 1,
            "elements": {"Dy": "16.8", "Fe": "35", "Nd": "252", "Pr": "84", "Tb": "4.2"},
            "currency": "USD",
            "value": "150000",
        }
    ]


def test_purchases_name_each_supplier(world: World) -> None:
    bought = declared(world, "/v1/declarations/MAGCO/2026-03")["purchases"]

    assert [(p["counterparty"], p["kind"], p["material"], p["kg"], p["value"]) for p in bought] == [
        (MINECO, "sale", "concentrate", "700", "150000")
    ]


def test_an_import_received_is_a_purchase_from_the_exporter(world: World) -> None:
    bought = declared(world, "/v1/declarations/AUTOCO/2026-03")["purchases"]

    assert [(p["counterparty"], p["kind"], p["material"], p["kg"], p["value"]) for p in bought] == [
        (MINECO, "receipt", "ore", "2000", None)
    ]


def test_controlled_exports_are_declared_by_destination_and_licence(world: World) -> None:
    exports = declared(world)["exports"]

    assert exports["controlled"] == [
        {
            "destination_country": "DE",
            "licence": "EX-1",
            "consignee": AUTOCO,
            "end_user": "Auto Motors GmbH",
            "material": "ore",
            "customs_code": "2530.90",
            "kg": "2000",
            "lines": 1,
            "shipments": ["BL-1"],
            "elements": {"Dy": "4", "Fe": "400", "Nd": "60", "Pr": "20", "Tb": "1"},
        }
    ]
    assert exports["controlled_kg"] == "2000"


def test_uncontrolled_exports_are_declared_apart_without_a_licence(world: World) -> None:
    exports = declared(world)["exports"]

    [shipped] = exports["uncontrolled"]
    assert (shipped["destination_country"], shipped["licence"], shipped["consignee"]) == (
        "DE",
        None,
        AUTOCO,
    )
    assert (shipped["kg"], shipped["shipments"], exports["uncontrolled_kg"]) == (
        "5000",
        ["BL-2"],
        "5000",
    )


def test_stock_is_what_the_actor_held_at_the_months_end(world: World) -> None:
    stock = declared(world)["stock"]

    # ORE-1 went into CON-1, CON-1 was sold, ORE-3 was received abroad: left are the
    # 100 kg of CON-1A at the mine and ORE-2 in transit. ORE-4 came on April 1st.
    assert [
        (s["facility"], s["in_transit"], s["material"], s["kg"], s["batches"]) for s in stock
    ] == [
        (party("MINE-1", "MINE-1", "CN"), False, "concentrate", "100", 1),
        (None, True, "ore", "5000", 1),
    ]
    assert stock[0]["elements"] == {"Dy": "2.4", "Fe": "5", "Nd": "36", "Pr": "12", "Tb": "0.6"}


def test_an_event_at_the_next_months_first_instant_counts_in_the_next_month(
    world: World,
) -> None:
    april = declared(world, "/v1/declarations/MINECO/2026-04")

    assert [(p["process"], p["kg"]) for p in april["production"]] == [("mined", "1000")]
    assert declared(world)["totals"]["stock_kg"] == "5100"
    assert april["totals"]["stock_kg"] == "6100"


def test_a_batch_made_in_another_time_zone_counts_in_its_utc_month(world: World) -> None:
    # April 1st 05:00 in Baotou (+08:00) is March 31st 21:00 UTC; March 1st 02:00 there
    # is still February in UTC.
    world.report("ore-extracted", ore("ORE-TZ1", "30", occurred_at="2026-04-01T05:00:00+08:00"))
    world.report("ore-extracted", ore("ORE-TZ2", "40", occurred_at="2026-03-01T02:00:00+08:00"))

    march = declared(world)["production"]
    february = declared(world, "/v1/declarations/MINECO/2026-02")["production"]

    assert [(p["process"], p["kg"], p["batches"]) for p in march] == [
        ("beneficiation", "800", 1),
        ("mined", "17030", 4),
    ]
    assert [(p["process"], p["kg"]) for p in february] == [("mined", "40")]


def test_quota_drawn_in_the_month_to_date_and_remaining(world: World) -> None:
    quota = {q["licence"]: q for q in declared(world)["quota"]}

    # kg REO = kg of each element x its oxide factor (Nd 1.1664, Pr 1.2082, Dy 1.1477,
    # Tb 1.1762, La 1.1728, Ce 1.2284): ORE-1 499.575, ORE-2 377.983, ORE-3 99.915.
    mined = quota["MQ-1"]
    assert (mined["unit"], mined["drawn_kg"], mined["draws"]) == ("kg REO", "977.473", 3)
    assert (mined["drawn_to_date_kg"], mined["remaining_kg"]) == ("977.473", "99022.527")
    # The controlled shipment drew its 2,000 kg of goods; the uncontrolled one nothing.
    shipped = quota["EX-1"]
    assert (shipped["unit"], shipped["drawn_kg"], shipped["remaining_kg"]) == (
        "kg",
        "2000",
        "48000",
    )
    assert (quota["SQ-1"]["drawn_kg"], quota["SQ-1"]["draws"]) == ("0", 0)


def test_quota_drawn_to_date_adds_the_months_before(world: World) -> None:
    [mined] = [
        q
        for q in declared(world, "/v1/declarations/MINECO/2026-04")["quota"]
        if q["licence"] == "MQ-1"
    ]

    # ORE-4: 1,000 kg of ORE is 49.9575 kg REO.
    assert (mined["drawn_kg"], mined["draws"]) == ("49.9575", 1)
    assert mined["drawn_to_date_kg"] == "1027.4305"


def test_the_declaration_says_when_it_is_due_and_sums_each_section(world: World) -> None:
    answer = declared(world)

    assert (answer["month"], answer["due_by"], answer["provisional"]) == (
        "2026-03",
        "2026-04-10",
        False,
    )
    assert answer["period"] == {
        "starts_at": "2026-03-01T00:00:00+00:00",
        "ends_before": "2026-04-01T00:00:00+00:00",
    }
    assert answer["totals"] == {
        "produced_kg": "17800",
        "purchased_kg": "0",
        "sold_kg": "700",
        "exported_kg": "7000",
        "stock_kg": "5100",
    }
    assert (answer["actor"], answer["reported"]) == (MINECO, True)


def test_a_month_without_activity_is_an_empty_declaration(world: World) -> None:
    answer = declared(world, "/v1/declarations/OTHER/2026-03")

    assert answer["reported"] is False
    assert (answer["production"], answer["sales"], answer["purchases"], answer["stock"]) == (
        [],
        [],
        [],
        [],
    )


# --- formats, each opened with its real reader --------------------------------------------


def test_the_csv_has_one_row_per_line_of_each_section_under_one_header(world: World) -> None:
    response = world.get(f"{MARCH}.csv", "regulator")

    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    sections = [row["section"] for row in rows]
    assert sections == [
        "declaration",
        "production",
        "production",
        "sales",
        "exports_controlled",
        "exports_uncontrolled",
        "stock",
        "stock",
        "quota",
        "quota",
        "quota",
    ]
    [sold] = [row for row in rows if row["section"] == "sales"]
    assert (sold["client_code"], sold["kg"], sold["kg_Dy"], sold["value"]) == (
        "MAGCO",
        "700",
        "16.8",
        "150000",
    )
    [uncontrolled] = [row for row in rows if row["section"] == "exports_uncontrolled"]
    assert (uncontrolled["licence"], uncontrolled["shipments"]) == ("", "BL-2")


def test_the_xlsx_has_a_sheet_per_section_with_numbers_as_numbers(world: World) -> None:
    response = world.get(f"{MARCH}.xlsx", "regulator")

    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [
        "Declaration",
        "Production",
        "Purchases",
        "Sales",
        "Exports controlled",
        "Exports uncontrolled",
        "Stock at month end",
        "Quota drawn",
    ]
    sales = list(book["Sales"].iter_rows(values_only=True))
    header, row = sales
    sold = dict(zip(header, row, strict=True))
    assert (sold["Client code"], sold["kg"], sold["Dy kg"], sold["Value"]) == (
        "MAGCO",
        700,
        16.8,
        150000,
    )
    quota = {r[0]: r for r in book["Quota drawn"].iter_rows(min_row=2, values_only=True)}
    assert quota["MQ-1"][4] == 977.473


def test_the_xlsx_keeps_a_decimal_a_spreadsheet_number_would_round_as_exact_text(
    world: World,
) -> None:
    precise = {"Dy": "0.123456789", "Fe": "0.5"}
    world.report(
        "ore-extracted",
        ore("ORE-P", "12345.678912", composition=precise, occurred_at=day(3, 25)),
    )

    book = load_workbook(io.BytesIO(world.get(f"{MARCH}.xlsx", "regulator").content))

    sheet = book["Production"]
    header = [cell.value for cell in sheet[1]]
    cells = {r[1].value: r for r in sheet.iter_rows(min_row=2)}
    dy = cells["ore"][header.index("Dy kg")]
    # 12,345.678912 x 0.123456789 + 24 kg from ORE-1 and ORE-3: 19 significant digits.
    assert dy.value == "1548.157876500533568"
    assert dy.comment is not None and "Exact decimal kept as text" in dy.comment.text
    assert cells["ore"][header.index("Batches")].value == 4


def test_the_html_page_shows_every_section(world: World) -> None:
    response = world.get(f"{MARCH}.html", "regulator")

    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for heading in (
        "Production by material and element",
        "Purchases by supplier",
        "Sales by client",
        "Exports by destination and licence (controlled goods)",
        "Exports by destination and licence (uncontrolled goods)",
        "Stock at the month&#39;s end",
        "Quota and licences drawn",
    ):
        assert heading in page
    assert "Ningbo Magnets" in page and "977.473" in page and "BL-2" in page


def test_the_pdf_first_page_is_a_drawn_a4_landscape_page(world: World, tmp_path: Any) -> None:
    response = world.get(f"{MARCH}.pdf", "regulator")

    assert response.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(response.content)
    page = document[0]
    width, height = page.get_size()
    assert (round(width, 1), round(height, 1)) == (841.9, 595.3)
    picture = tmp_path / "page-1.png"
    page.render(scale=1).to_pil().save(picture)
    with Image.open(picture) as image:
        gray = image.convert("L")
        inked = sum(gray.histogram()[:200])
    assert inked / (gray.width * gray.height) > 0.02, "page 1 is (nearly) blank"
    text = page.get_textpage().get_text_bounded()
    assert "Monthly declaration" in text and "MINECO" in text and "MAGCO" in text


# --- who may read which declaration -------------------------------------------------------


@pytest.mark.parametrize("who", ["regulator", "auditor", "admin"])
@pytest.mark.parametrize("suffix", FORMATS)
def test_overseers_read_every_actors_declaration(world: World, who: str, suffix: str) -> None:
    assert world.get(f"{MARCH}{suffix}", who).status_code == 200


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_operator_reads_its_own_declaration(world: World, suffix: str) -> None:
    assert world.get(f"{MARCH}{suffix}", "mine").status_code == 200


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_operator_reading_another_actors_declaration_is_refused_naming_actor(
    world: World, suffix: str
) -> None:
    problem = refused(world, f"{MARCH}{suffix}", "magnets", 403)

    assert (problem["field"], problem["rule"]) == ("actor", "ownership")
    assert "MINECO" not in problem["detail"]


def test_an_operator_naming_an_unregistered_actor_learns_nothing_of_it(world: World) -> None:
    problem = refused(world, "/v1/declarations/NOSUCHCO/2026-03", "magnets", 403)

    assert (problem["field"], problem["rule"]) == ("actor", "ownership")


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_analyst_reads_no_declaration(world: World, suffix: str) -> None:
    problem = refused(world, f"{MARCH}{suffix}", "analyst", 403)

    assert problem["rule"] == "role"


def test_an_unregistered_actor_has_no_declaration(world: World) -> None:
    problem = refused(world, "/v1/declarations/NOSUCHCO/2026-03", "regulator", 404)

    assert problem["rule"] == "exists" and "NOSUCHCO" in problem["detail"]


# --- months -------------------------------------------------------------------------------


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "26-03", "2026-03-01", "March", "0000-01"])
@pytest.mark.parametrize("suffix", ["", ".csv", ".pdf"])
def test_a_month_that_is_not_yyyy_mm_is_refused_naming_it(
    world: World, month: str, suffix: str
) -> None:
    problem = refused(world, f"/v1/declarations/MINECO/{month}{suffix}", "regulator", 422)

    assert (problem["field"], problem["rule"]) == ("month", "month")


def test_a_month_that_has_not_begun_is_refused(world: World) -> None:
    problem = refused(world, "/v1/declarations/MINECO/2999-01", "regulator", 422)

    assert (problem["field"], problem["rule"]) == ("month", "not-in-future")


# --- who has not declared -----------------------------------------------------------------


def test_missing_lists_the_actors_with_no_activity_in_the_month(world: World) -> None:
    answer = declared(world, "/v1/declarations?month=2026-03&missing=true")

    # MINECO mined, sold and exported; MAGCO bought; AUTOCO received an import.
    assert [(a["actor"]["code"], a["reported"]) for a in answer["actors"]] == [("OTHER", False)]
    assert (answer["month"], answer["due_by"], answer["overdue"], answer["missing"]) == (
        "2026-03",
        "2026-04-10",
        True,
        True,
    )
    assert answer["actors"][0]["roles"] == ["separator"]


def test_the_list_of_a_month_tells_each_actor_whether_it_had_activity(world: World) -> None:
    answer = declared(world, "/v1/declarations?month=2026-04")

    assert [(a["actor"]["code"], a["reported"]) for a in answer["actors"]] == [
        ("AUTOCO", False),
        ("MAGCO", False),
        ("MINECO", True),
        ("OTHER", False),
    ]


def test_the_list_agrees_with_each_declarations_activity(world: World) -> None:
    listed = declared(world, "/v1/declarations?month=2026-03")["actors"]

    for entry in listed:
        code = entry["actor"]["code"]
        assert declared(world, f"/v1/declarations/{code}/2026-03")["reported"] is entry["reported"]


@pytest.mark.parametrize("who", ["mine", "analyst"])
def test_only_overseers_list_who_has_not_declared(world: World, who: str) -> None:
    problem = refused(world, "/v1/declarations?month=2026-03&missing=true", who, 403)

    assert problem["rule"] == "role"


def test_the_list_refuses_a_month_that_is_not_yyyy_mm(world: World) -> None:
    problem = refused(world, "/v1/declarations?month=2026-3", "regulator", 422)

    assert (problem["field"], problem["rule"]) == ("month", "month")


def test_a_split_is_activity_though_not_production(fresh_world: World) -> None:
    fresh_world.report("ore-extracted", ore("ORE-1", "1000", occurred_at=day(5, 30)))
    split = {"batch": "ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "100"}]}
    fresh_world.report("batch-split", split | {"occurred_at": day(6, 2)})

    june = declared(fresh_world, "/v1/declarations/MINECO/2026-06")

    assert (june["reported"], june["production"]) == (True, [])
