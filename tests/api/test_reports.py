"""Audit reports through HTTP (and the CLI): the JSON for machines, the HTML and the PDF
for people, and who may read them.

The chain: MINECO mines ORE-1 at MINE-1 under quota MQ-1 (reported 60 days late),
beneficiates it into CON-1, moves that to SEP-1 and separates it under quota SQ-1 into
oxides, NDPR-OX among them. A regulator quarantines NDPR-OX and releases it. MINECO
splits it into NDPR-A, exported under EX-1 to Auto Motors GmbH (Germany), which receives
it, and NDPR-B, sold to Ningbo Magnets."""

from __future__ import annotations

import html
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from lodestone.audit import report as reports
from lodestone.bootstrap.settings import Settings
from lodestone.cli.main import app as cli
from lodestone.gateway import create_app
from tests.api.conftest import (
    ADMIN_KEY,
    World,
    beneficiation,
    export,
    hold,
    ore,
    receipt,
    register_world,
    sale,
    separation,
)

REPORT = "/v1/batches/MINECO/NDPR-OX/report"
SECTIONS = (
    "state",
    "timeline",
    "genealogy",
    "provenance",
    "licences",
    "corrections",
    "anomalies",
    "verification",
)
A4_LANDSCAPE_PT = (841.89, 595.28)


def record_chain(world: World) -> World:
    late = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    world.report("ore-extracted", ore("ORE-1", "10000", occurred_at=late))
    world.report("batch-transformed", beneficiation())
    world.report("batch-moved", {"batch": "CON-1", "to_facility": "SEP-1"})
    world.report("batch-transformed", separation())
    world.report("batch-quarantined", hold("MINECO/NDPR-OX", "assay disputed"), who="regulator")
    world.report("batch-released", hold("MINECO/NDPR-OX", "assay confirmed"), who="regulator")
    parts = [{"lot_code": "NDPR-A", "mass_kg": "200"}, {"lot_code": "NDPR-B", "mass_kg": "240"}]
    world.report("batch-split", {"batch": "NDPR-OX", "parts": parts})
    world.report("shipment-exported", export("NDPR-A", customs_code="2846"))
    world.report("shipment-received", receipt("MINECO/NDPR-A"), who="auto")
    world.report(
        "custody-transferred",
        sale("NDPR-B", price="123456.78", currency="USD", to_facility="MAG-1"),
    )
    return world


@pytest.fixture
def world(fresh_world: World) -> World:
    """Each test gets its own copy of the registered world with the chain recorded."""
    return record_chain(fresh_world)


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    """The same chain on SQLite alone: for what renders the same JSON on every store."""
    app = create_app(Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield record_chain(register_world(client))


def report_of(world: World, path: str = REPORT, who: str = "auditor") -> dict[str, Any]:
    response = world.get(path, who)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def node(report: dict[str, Any], batch: str) -> dict[str, Any]:
    return next(n for n in report["genealogy"]["nodes"] if n["batch"] == batch)


# --- JSON -------------------------------------------------------------------------------


def test_json_report_has_every_section_for_the_batch(world: World) -> None:
    report = report_of(world)

    assert report["format"] == "lodestone.audit-report.v1"
    assert report["batch"] == "MINECO/NDPR-OX"
    assert set(SECTIONS) <= set(report)
    assert report["state"]["material"] == "oxide"
    assert report["state"]["status"] == "consumed"
    assert report["state"]["custodian"]["code"] == "MINECO"


def test_timeline_lists_the_batch_events_with_both_clocks_and_the_reporter(world: World) -> None:
    timeline = report_of(world)["timeline"]

    assert [e["type"] for e in timeline] == [
        "Batch.Produced",
        "Batch.BatchQuarantined",
        "Batch.BatchReleased",
        "Batch.BatchSplit",
    ]
    assert all(e["occurred_at"] and e["recorded_at"] and e["intact"] for e in timeline)
    assert timeline[1]["reported_by"]["role"] == "regulator"
    assert timeline[0]["reported_by"] | {"principal": None} == {
        "principal": None,
        "role": "operator",
        "label": "mine",
        "actor": "MINECO",
    }


def test_timeline_shows_an_export_and_its_receipt_with_licence_and_consignee(
    world: World,
) -> None:
    timeline = report_of(world, "/v1/batches/MINECO/NDPR-A/report")["timeline"]

    assert [e["type"] for e in timeline] == [
        "Batch.SplitOff",
        "Batch.ShipmentExported",
        "Batch.ShipmentReceived",
    ]
    exported, received = timeline[1]["summary"], timeline[2]["summary"]
    assert "EX-1" in exported and "AUTOCO (Auto Motors GmbH)" in exported and "DE" in exported
    assert received == (
        "Received 200 kg from shipment BL-2026-0001 by AUTOCO (Auto Motors GmbH) at AUTO-1"
    )


def test_timeline_shows_a_sale_with_client_contract_and_price(world: World) -> None:
    sold = report_of(world, "/v1/batches/MINECO/NDPR-B/report")["timeline"][1]

    assert sold["type"] == "Batch.CustodyTransferred"
    assert sold["summary"] == (
        "Sold 240 kg by MINECO (Bayan Mining Co) to MAGCO (Ningbo Magnets) under contract "
        "C-2026-077, price 123456.78 USD; goods to MAG-1"
    )


def test_genealogy_reaches_up_to_the_mine_and_down_to_the_end_clients(world: World) -> None:
    genealogy = report_of(world)["genealogy"]

    sides = {n["batch"]: n["side"] for n in genealogy["nodes"]}
    assert sides == {
        "MINECO/ORE-1": "upstream",
        "MINECO/CON-1": "upstream",
        "MINECO/NDPR-OX": "root",
        "MINECO/NDPR-A": "downstream",
        "MINECO/NDPR-B": "downstream",
    }
    assert genealogy["summary"]["origins"] == [
        {"kind": "mined", "facility": "MINE-1", "country": "CN", "quota": "MQ-1", "batches": 1}
    ]
    assert [h["code"] for h in genealogy["summary"]["end_holders"]] == ["AUTOCO", "MAGCO"]


def test_genealogy_edges_carry_the_mass_taken_and_the_operation(world: World) -> None:
    edges = report_of(world)["genealogy"]["edges"]

    assert {(e["from_batch"], e["to_batch"], e["kg"], e["operation"]) for e in edges} == {
        ("MINECO/ORE-1", "MINECO/CON-1", "10000", "beneficiation"),
        ("MINECO/CON-1", "MINECO/NDPR-OX", "800", "separation"),
        ("MINECO/NDPR-OX", "MINECO/NDPR-A", "200", "split"),
        ("MINECO/NDPR-OX", "MINECO/NDPR-B", "240", "split"),
    }


def test_genealogy_nodes_carry_material_mass_holder_and_trades(world: World) -> None:
    report = report_of(world)

    exported = node(report, "MINECO/NDPR-A")
    assert (exported["material"], exported["initial_kg"], exported["holder"]["code"]) == (
        "oxide",
        "200",
        "AUTOCO",
    )
    assert [(t["kind"], t["kg"]) for t in exported["trades"]] == [
        ("export", "200"),
        ("receipt", "200"),
    ]
    sold = node(report, "MINECO/NDPR-B")["trades"][0]
    assert (sold["to"]["name"], sold["contract"], sold["price"], sold["currency"]) == (
        "Ningbo Magnets",
        "C-2026-077",
        "123456.78",
        "USD",
    )


def test_provenance_attributes_each_element_to_the_mine_its_quota_and_country(
    world: World,
) -> None:
    provenance = report_of(world)["provenance"]

    # 440 kg of oxide at 63.75 % Nd and 21.25 % Pr, all of it from MINE-1.
    assert {e: p["kg"] for e, p in provenance["elements"].items()} == {"Nd": "280.5", "Pr": "93.5"}
    assert provenance["elements"]["Nd"]["origins"] == [
        {
            "kind": "mined",
            "facility": "MINE-1",
            "quota": "MQ-1",
            "country": "CN",
            "share": "1",
            "kg": "280.5",
        }
    ]
    assert provenance["by_country"] == {"Nd": {"CN": "1"}, "Pr": {"CN": "1"}}


def test_licences_show_the_quotas_drawn_by_the_genealogy(world: World) -> None:
    licences = {item["number"]: item for item in report_of(world)["licences"]}

    assert [(n, item["kind"]) for n, item in licences.items()] == [
        ("MQ-1", "mining_quota"),
        ("SQ-1", "separation_quota"),
        ("EX-1", "export_licence"),
    ]
    mining = licences["MQ-1"]
    assert (mining["unit"], mining["max_kg"]) == ("kg REO", "100000")
    assert Decimal(mining["drawn_here_kg"]) == Decimal(mining["drawn_kg"]) > 0
    assert [(d["for"], d["cause"]) for d in mining["draws"]] == [("MINECO/ORE-1", "extraction")]
    assert licences["SQ-1"]["draws"][0]["for"] == "work order SX-2026-14"


def test_licences_show_the_export_licence_with_destination_and_consignee(world: World) -> None:
    licence = next(i for i in report_of(world)["licences"] if i["number"] == "EX-1")

    assert licence["destination_country"] == "DE"
    assert licence["consignee"] == {"code": "AUTOCO", "name": "Auto Motors GmbH", "country": "DE"}
    assert (licence["end_user"], licence["drawn_here_kg"], licence["remaining_kg"]) == (
        "Auto Motors GmbH",
        "200",
        "49800",
    )


def test_corrections_are_empty_when_none_was_recorded(world: World) -> None:
    assert report_of(world)["corrections"] == []


def record_correction(world: World) -> None:
    """The regulator corrects the reason it gave for holding NDPR-OX (version 2)."""
    body = {
        "batch": "MINECO/NDPR-OX",
        "version": 2,
        "reason": "incorrect-data",
        "facts": {"reason": "assay disputed by lab B"},
        "note": "named the wrong laboratory",
    }
    response = world.post("/v1/events/corrections", body, "regulator")
    assert response.status_code == 201, response.text


def test_corrections_show_what_a_correction_corrects_why_and_the_new_facts(
    world: World,
) -> None:
    record_correction(world)

    [correction] = report_of(world)["corrections"]

    assert (correction["aggregate"], correction["type"]) == ("MINECO/NDPR-OX", "Batch.Corrected")
    assert correction["corrects"]["corrects_version"] == 2
    assert correction["corrected_event"]["type"] == "Batch.BatchQuarantined"
    assert (correction["reason"], correction["note"]) == (
        "incorrect-data",
        "named the wrong laboratory",
    )
    assert correction["corrected_facts"] == {"reason": "assay disputed by lab B"}
    assert correction["reported_by"]["role"] == "regulator"


def test_timeline_keeps_the_corrected_event_and_marks_it(world: World) -> None:
    record_correction(world)

    timeline = report_of(world)["timeline"]

    held = next(e for e in timeline if e["type"] == "Batch.BatchQuarantined")
    assert held["facts"]["reason"] == "assay disputed"
    assert held["corrected_by"] == [timeline[-1]["version"]]
    assert timeline[-1]["type"] == "Batch.Corrected"


def test_anomalies_flag_a_step_reported_long_after_it_happened(world: World) -> None:
    late = [a for a in report_of(world)["anomalies"] if a["kind"] == "late-report"]

    assert [(a["subject"], a["type"], a["severity"]) for a in late] == [
        ("MINECO/ORE-1", "Batch.OreExtracted", "warning")
    ]
    assert "recorded 60" in late[0]["detail"]


def test_anomalies_flag_a_quarantine_and_its_release(world: World) -> None:
    [held] = [a for a in report_of(world)["anomalies"] if a["kind"] == "quarantine"]

    assert held["subject"] == "MINECO/NDPR-OX"
    assert held["severity"] == "info"
    assert "assay disputed" in held["detail"] and "assay confirmed" in held["detail"]


def test_verification_names_the_checkpoint_the_bundle_relies_on(world: World) -> None:
    verification = report_of(world)["verification"]

    assert verification["ok"] is True
    assert verification["events"] == 4
    checkpoints = world.get("/v1/audit/checkpoints", "auditor").json()["checkpoints"]
    relied_on = next(c for c in checkpoints if c["seq"] == verification["checkpoint"]["seq"])
    for field in ("root", "hash", "created_at", "last_position"):
        assert verification["checkpoint"][field] == relied_on[field]


def test_a_row_altered_in_the_store_fails_verification_and_is_flagged(
    sqlite_world: World,
) -> None:
    settings = sqlite_world.client.app.state.runtime.settings  # type: ignore[attr-defined]
    with sqlite3.connect(settings.event_store_path) as db:
        rowid, state = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE '%OreExtracted'"
        ).fetchone()
        altered = bytes(state).replace(b'"10000"', b'"10001"', 1)
        assert altered != bytes(state)
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (altered, rowid))

    report = report_of(sqlite_world)

    assert report["verification"]["ok"] is False
    critical = {
        (a["kind"], a["subject"]) for a in report["anomalies"] if a["severity"] == "critical"
    }
    assert critical == {("verification-failed", "MINECO/NDPR-OX"), ("not-intact", "MINECO/ORE-1")}


# --- HTML -------------------------------------------------------------------------------


def test_html_report_has_every_section_and_the_genealogy_as_inline_svg(world: World) -> None:
    response = world.get(f"{REPORT}.html", "auditor")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for section in ("summary", "verification", "timeline", "genealogy", "provenance"):
        assert f'<section id="{section}">' in page
    for section in ("licences", "corrections", "anomalies"):
        assert f'<section id="{section}">' in page
    # Graphviz writes some characters as entities (a hyphen as &#45;).
    svg = html.unescape(page[page.index("<svg") : page.index("</svg>")])
    for drawn in ("MINECO/ORE-1", "MINECO/NDPR-OX", "MINECO/NDPR-A", "AUTOCO", "MAGCO"):
        assert drawn in svg
    assert "10,000 kg" in svg


def test_html_report_escapes_what_reporters_wrote(sqlite_world: World) -> None:
    reason = "<script>x()</script>"
    sqlite_world.report("batch-quarantined", hold("MINECO/NDPR-A", reason), "regulator")

    page = sqlite_world.get("/v1/batches/MINECO/NDPR-A/report.html", "auditor").text

    assert "<script>" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page


def test_drawn_genealogy_groups_batches_beyond_the_cap() -> None:
    nodes = [
        {
            "id": f"ore-{n}",
            "batch": f"MINE{n % 2}/ORE-{n}",
            "side": "upstream",
            "material": "ore",
            "status": "consumed",
            "initial_kg": "100",
            "remaining_kg": "0",
            "holder": {"code": f"MINE{n % 2}", "name": "Mine", "country": "CN"},
            "origin": {"kind": "mined", "facility": f"PIT-{n % 2}", "country": "CN", "quota": "Q"},
            "end": False,
            "trades": [],
        }
        for n in range(reports.MAX_DRAWN_NODES * 2)
    ]
    root = nodes[0] | {"id": "root", "batch": "REF/CON-1", "side": "root", "origin": None}
    root |= {"material": "concentrate", "end": True}
    edges = [
        {"from": n["id"], "to": "root", "kg": "100", "operation": "beneficiation"} for n in nodes
    ]

    graph = reports.draw_genealogy({"nodes": [*nodes, root], "edges": edges})

    assert graph.svg is not None
    assert graph.note is not None and "121 batches: drawn as 3 boxes" in graph.note
    assert "60 ore batches" in graph.svg and "6,000 kg" in graph.svg


def test_drawn_genealogy_draws_the_smallest_clients_as_one_beyond_the_cap() -> None:
    clients = reports.MAX_DRAWN_CLIENTS + 5
    root = {
        "id": "root",
        "batch": "MAGCO/MAG-1",
        "side": "root",
        "material": "magnet",
        "status": "consumed",
        "initial_kg": "1000",
        "remaining_kg": "0",
        "holder": {"code": "MAGCO", "name": "Magnets", "country": "CN"},
        "origin": None,
        "end": False,
        "trades": [
            {
                "kind": "sale",
                "kg": str(100 + n),
                "to": {"code": f"CLIENT-{n:02d}", "name": "Client", "country": "DE"},
                "destination_country": None,
            }
            for n in range(clients)
        ],
    }

    graph = reports.draw_genealogy({"nodes": [root], "edges": []})

    assert graph.svg is not None
    drawn = html.unescape(graph.svg)
    # The five smallest buyers (100 to 104 kg) share one ellipse.
    assert "5 more clients" in drawn and "510 kg" in drawn
    assert "CLIENT-05" in drawn and "CLIENT-04" not in drawn


# --- PDF --------------------------------------------------------------------------------


def test_pdf_report_first_page_is_a_drawn_a4_landscape_page(
    sqlite_world: World, tmp_path: Path
) -> None:
    response = sqlite_world.get(f"{REPORT}.pdf", "auditor")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(response.content)
    page = document[0]
    width, height = page.get_size()
    assert (round(width, 1), round(height, 1)) == (841.9, 595.3)
    picture = tmp_path / "page-1.png"
    page.render(scale=1).to_pil().save(picture)
    with Image.open(picture) as image:
        gray = image.convert("L")
        inked = sum(gray.histogram()[:200])  # pixels darker than light grey
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert inked / (gray.width * gray.height) > 0.02, "page 1 is (nearly) blank"
    assert len(colours) > 16, "page 1 has hardly any colours: not a drawn report"


def test_pdf_report_carries_every_section_and_the_graph_as_text(sqlite_world: World) -> None:
    document = pypdfium2.PdfDocument(sqlite_world.get(f"{REPORT}.pdf", "auditor").content)

    text = "\n".join(page.get_textpage().get_text_bounded() for page in document)

    for heading in ("Custody timeline", "Genealogy", "Provenance", "Licences and quotas"):
        assert heading in text
    for heading in ("Corrections", "Anomalies", "Verification", "Verified."):
        assert heading in text
    assert "MINECO/ORE-1" in text and "AUTOCO" in text


# --- CLI --------------------------------------------------------------------------------


def test_cli_writes_the_json_report_from_the_data_directory(
    sqlite_world: World, tmp_path: Path
) -> None:
    settings = sqlite_world.client.app.state.runtime.settings  # type: ignore[attr-defined]
    target = tmp_path / "report.json"

    result = CliRunner().invoke(
        cli,
        [
            "report",
            "MINECO/NDPR-OX",
            "--format",
            "json",
            "--output",
            str(target),
            "--data-dir",
            str(settings.data_dir),
        ],
    )

    assert result.exit_code == 0, result.output
    written = json.loads(target.read_text())
    assert written["batch"] == "MINECO/NDPR-OX"
    assert written["verification"]["ok"] is True


# --- roles ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["auditor", "regulator", "admin"])
def test_auditors_regulators_and_admins_may_read_a_report(world: World, who: str) -> None:
    assert world.get(REPORT, who).status_code == 200


@pytest.mark.parametrize("suffix", ["", ".html", ".pdf"])
@pytest.mark.parametrize("who", ["mine", "analyst"])
def test_operators_and_analysts_may_not_read_a_report(
    fresh_world: World, who: str, suffix: str
) -> None:
    # Refused on the role alone, before the batch is looked up.
    response = fresh_world.get(f"{REPORT}{suffix}", who)

    assert response.status_code == 403
