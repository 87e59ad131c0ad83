"""The anomaly rules over crafted facts, no database: each rule fires on the pattern it
names and stays silent on the same chain without it; thresholds come from one place and
are overridden by name; the evaluation does not depend on the order facts were written."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from uuid import UUID, uuid5

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.projections.anomalies import (
    RULE_IDS,
    RULES,
    Facts,
    RefusedAttempts,
    Thresholds,
    anomaly_id,
    evaluate,
    event_id,
)
from lodestone.projections.anomalies.rows import (
    BatchFact,
    InputFact,
    LicenceFact,
    MovementFact,
    PartyFact,
    StepFact,
)
from lodestone.streaming import codec

NS = UUID("00000000-0000-0000-0000-00000000a0a0")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def id_(name: str) -> UUID:
    return uuid5(NS, name)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def actor(code: str, country: str = "CN") -> PartyFact:
    return PartyFact(id_(code), "actor", code, f"{code} Ltd", country, None, "")


def facility(code: str, owner: str, kind: str = "separation_plant", country: str = "CN"):
    return PartyFact(id_(code), "facility", code, code, country, id_(owner), kind)


PARTIES = [
    actor("MINER"),
    actor("SEP"),
    actor("TRADER"),
    actor("FOREIGN", "MY"),
    actor("CLIENT", "DE"),
    facility("PIT", "MINER", "mine"),
    facility("CLAY", "MINER", "mine"),
    facility("PLANT", "SEP"),
    facility("WH", "TRADER", "warehouse"),
    facility("FOREIGN-WH", "FOREIGN", "warehouse", "MY"),
    facility("CLIENT-WH", "CLIENT", "warehouse", "DE"),
]
OXIDE = {"Nd": D("0.64"), "Pr": D("0.2")}


def mined(lot: str, kg: str, at: datetime, comp: dict[str, D] | None = None) -> BatchFact:
    return BatchFact(
        id_(lot),
        1,
        reference=f"MINER/{lot}",
        actor_id=id_("MINER"),
        material="ore",
        initial_kg=D(kg),
        composition=comp or {"Nd": D("0.002"), "Dy": D("0.0004"), "Si": D("0.3")},
        facility_id=id_("PIT"),
        created_at=at,
        kind="mined",
        origin_country="CN",
        quota_id=id_("QUOTA"),
    )


def sale(lot: str, version: int, seller: str, buyer: str, kg: str, at: datetime, **more):
    return MovementFact(
        id_(lot),
        version,
        kind="sale",
        from_id=id_(seller),
        to_id=id_(buyer),
        kg=D(kg),
        facility_id=more.pop("facility_id", id_("WH")),
        occurred_at=at,
        corrected_by=0,
        **more,
    )


def facts(**tables) -> Facts:
    tables.setdefault("parties", PARTIES)
    return Facts.of(**tables)


def found(facts_: Facts, rule: str, **thresholds) -> list:
    settings = Thresholds(**thresholds)
    return [a for a in evaluate(facts_, settings) if a.rule == rule]


# --- mass-balance stress ---------------------------------------------------------------------


def separation(out_nd: str) -> Facts:
    """SEP separates 1000 kg of concentrate carrying 300 kg Nd into NdPr oxide."""
    concentrate = replace(
        mined("CON", "1000", day(0), {"Nd": D("0.3"), "Pr": D("0.1")}),
        material="concentrate",
        actor_id=id_("SEP"),
    )
    step = StepFact(
        id_("SX-1"),
        id_("SEP"),
        id_("PLANT"),
        "separation",
        "SX-1",
        D("0.005"),
        {"Nd": D(out_nd), "Pr": D("90")},
        D("500"),
        {},
        day(1),
    )
    oxide = BatchFact(
        id_("OX"),
        1,
        reference="SEP/OX",
        actor_id=id_("SEP"),
        material="oxide",
        initial_kg=D("500"),
        composition={"Nd": D(out_nd) / 500, "Pr": D("0.18")},
        facility_id=id_("PLANT"),
        created_at=day(1),
        kind="produced",
        made_by=id_("SX-1"),
    )
    return facts(
        batches=[concentrate, oxide],
        steps=[step],
        inputs=[InputFact(id_("SX-1"), id_("CON"), D("1000"))],
    )


def test_mass_balance_stress_fires_when_outputs_carry_more_than_the_share_flagged() -> None:
    (anomaly,) = found(separation("299.8"), "mass-balance-stress")

    assert anomaly.severity == "warning"
    assert anomaly.elements == ("Nd",)
    assert anomaly.companies == (id_("SEP"),)
    assert anomaly.figures["elements"].value["Nd"]["share"] == D("0.999333")


def test_mass_balance_stress_is_critical_when_more_came_out_than_went_in() -> None:
    (anomaly,) = found(separation("301"), "mass-balance-stress")

    assert anomaly.severity == "critical"


def test_mass_balance_stress_is_silent_on_an_ordinary_recovery() -> None:
    assert found(separation("285"), "mass-balance-stress") == []


def test_mass_balance_stress_follows_its_threshold() -> None:
    assert found(separation("285"), "mass-balance-stress", stress_share=D("0.9")) != []


def test_mass_balance_stress_counts_the_untraced_inputs_as_carried() -> None:
    stressed = separation("299.8")
    step = replace(stressed.steps[id_("SX-1")], untraced_kg={"Nd": D("10")})

    assert found(replace(stressed, steps={step.id: step}), "mass-balance-stress") == []


# --- smuggling cover -----------------------------------------------------------------------


def trader_books(sold: str) -> Facts:
    """TRADER buys 100 kg of oxide from SEP and sells ``sold`` kg of oxide lots to CLIENT."""
    bought = BatchFact(
        id_("OX-A"),
        1,
        actor_id=id_("SEP"),
        material="oxide",
        initial_kg=D("100"),
        composition=OXIDE,
        kind="mined",
        facility_id=id_("PLANT"),
        created_at=day(0),
    )
    resold = replace(bought, id=id_("OX-B"), initial_kg=D(sold))
    return facts(
        batches=[bought, resold],
        movements=[
            sale("OX-A", 2, "SEP", "TRADER", "100", day(1)),
            sale("OX-A", 3, "TRADER", "CLIENT", "100", day(2)),
            sale("OX-B", 2, "SEP", "TRADER", sold, day(3)),
            sale("OX-B", 3, "TRADER", "CLIENT", sold, day(4)),
        ],
    )


def corrected_after_sale(declared: str, corrected: str) -> Facts:
    """MINER mines a lot of ``declared`` kg, sells it whole, then corrects its mass."""
    lot = replace(mined("ORE-1", corrected, day(0)), version=3)
    return facts(
        batches=[lot],
        movements=[sale("ORE-1", 2, "MINER", "TRADER", declared, day(1))],
    )


def test_smuggling_cover_fires_when_an_actor_sold_more_than_it_ever_had() -> None:
    (anomaly,) = found(corrected_after_sale("10000", "6000"), "smuggling-cover")

    assert anomaly.severity == "critical"
    assert anomaly.companies == (id_("MINER"),)
    assert anomaly.figures["excess_kg"].value == D("4000")


def test_smuggling_cover_is_silent_when_every_kilogram_sold_was_bought() -> None:
    assert found(trader_books("50"), "smuggling-cover") == []


def test_smuggling_cover_is_silent_when_the_seller_produced_what_it_sold() -> None:
    assert found(corrected_after_sale("6000", "6000"), "smuggling-cover") == []


def test_smuggling_cover_allows_the_configured_margin() -> None:
    books = corrected_after_sale("10000", "9000")

    assert found(books, "smuggling-cover", smuggling_margin=D("0.2")) == []
    assert found(books, "smuggling-cover") != []


# --- licence mismatch and refused attempts ------------------------------------------------------


def shipment(end_user: str) -> Facts:
    licence = LicenceFact(
        id_("EX-1"), "EX-1", "export_licence", id_("SEP"), id_("CLIENT"), "Client Ltd", "DE"
    )
    oxide = BatchFact(
        id_("OX"),
        1,
        actor_id=id_("SEP"),
        material="oxide",
        initial_kg=D("10"),
        composition={"Dy": D("0.86")},
        facility_id=id_("PLANT"),
        created_at=day(0),
        kind="mined",
    )
    export = MovementFact(
        id_("OX"),
        2,
        kind="export",
        from_id=id_("SEP"),
        to_id=id_("CLIENT"),
        kg=D("10"),
        licence_id=id_("EX-1"),
        destination_country="DE",
        end_user=end_user,
        customs_code="2846.90",
        occurred_at=day(1),
        corrected_by=0,
    )
    return facts(batches=[oxide], movements=[export], licences=[licence])


def test_licence_mismatch_fires_on_an_end_user_spelt_otherwise_than_the_licence() -> None:
    (anomaly,) = found(shipment("CLIENT LTD"), "licence-mismatch")

    assert anomaly.companies == (id_("SEP"), id_("CLIENT"))
    assert anomaly.figures["shipment_end_user"].value == "CLIENT LTD"
    # The names are commercial: shown to the parties (and the authorities) only.
    assert anomaly.figures["shipment_end_user"].parties == {id_("SEP"), id_("CLIENT")}
    assert anomaly.elements == ("Dy",)


def test_licence_mismatch_is_silent_on_a_shipment_as_licensed() -> None:
    assert found(shipment("Client Ltd"), "licence-mismatch") == []


def refused(count: int, rule: str = "licence-remaining") -> list[RefusedAttempts]:
    return [RefusedAttempts(rule, count, licence_id=id_("EX-1"), actor_id=id_("SEP"))]


def test_licence_refusals_fire_at_the_configured_count() -> None:
    (anomaly,) = evaluate(shipment("Client Ltd"), refused=refused(3))

    assert anomaly.rule == "licence-refusals"
    assert anomaly.figures["total"].value == 3
    assert anomaly.licences == (id_("EX-1"),)


def test_licence_refusals_are_silent_below_the_count_and_for_other_rules() -> None:
    assert evaluate(shipment("Client Ltd"), refused=refused(2)) == []
    assert evaluate(shipment("Client Ltd"), refused=refused(9, "mass-balance")) == []


# --- content from outside any quota --------------------------------------------------------------


def alloy_from(scrap_kg: str) -> Facts:
    """An alloy made from 100 kg of Dy metal (mined under a quota) and ``scrap_kg`` of
    collected scrap, both 10 % Dy."""
    metal = BatchFact(
        id_("DY"),
        1,
        actor_id=id_("SEP"),
        material="metal",
        initial_kg=D("100"),
        composition={"Dy": D("0.1")},
        kind="mined",
        created_at=day(0),
    )
    scrap = replace(
        metal, id=id_("SCRAP"), material="scrap", kind="recycled", initial_kg=D(scrap_kg)
    )
    out = (D(100) + D(scrap_kg)) * D("0.098")  # 98 % recovered
    step = StepFact(
        id_("ALLOY-1"),
        id_("SEP"),
        id_("PLANT"),
        "alloying",
        "AL-1",
        D("0.005"),
        {"Dy": out},
        D(100) + D(scrap_kg),
        {},
        day(1),
    )
    alloy = BatchFact(
        id_("ALLOY"),
        1,
        reference="SEP/ALLOY",
        actor_id=id_("SEP"),
        material="alloy",
        initial_kg=D(100) + D(scrap_kg),
        composition={"Dy": D("0.1")},
        facility_id=id_("PLANT"),
        created_at=day(1),
        kind="produced",
        made_by=id_("ALLOY-1"),
    )
    part = replace(
        alloy,
        id=id_("PART"),
        kind="split",
        made_by=id_("ALLOY"),
        initial_kg=D("50"),
        created_at=day(2),
    )
    return facts(
        batches=[metal, scrap, alloy, part],
        steps=[step],
        inputs=[
            InputFact(id_("ALLOY-1"), id_("DY"), D("100")),
            InputFact(id_("ALLOY-1"), id_("SCRAP"), D(scrap_kg)),
        ],
    )


def test_untraced_content_fires_where_scrap_brings_most_of_an_element() -> None:
    (anomaly,) = found(alloy_from("300"), "untraced-content")

    # The alloy where the scrap entered, not the part split from it.
    assert anomaly.batches[0] == id_("ALLOY")
    assert anomaly.figures["elements"].value["Dy"]["recycled_share"] == D("0.75")


def test_untraced_content_is_silent_when_most_was_mined_under_a_quota() -> None:
    assert found(alloy_from("50"), "untraced-content") == []


def test_untraced_content_judges_no_batch_whose_making_is_not_known_yet() -> None:
    whole = alloy_from("300")
    # The alloying record has not arrived (another Kafka partition): nothing to trace.
    assert found(replace(whole, steps={}), "untraced-content") == []


def test_untraced_content_counts_what_no_input_carried() -> None:
    surplus = alloy_from("1")
    step = surplus.steps[id_("ALLOY-1")]
    carried = D("101") * D("0.1")
    # Outputs claiming twice the Dy the inputs carried (far past what the write side's
    # tolerance lets through; the share is what the rule measures).
    grown = replace(step, output_kg={"Dy": carried * 2})

    (anomaly,) = found(replace(surplus, steps={step.id: grown}), "untraced-content")

    assert anomaly.figures["elements"].value["Dy"]["no_input_share"] == D("0.5")


# --- extraction surge ------------------------------------------------------------------------------


def extractions(last_kg: str) -> Facts:
    """MINER mines 1000 kg every 10 days for 100 days, then ``last_kg`` on day 100."""
    lots = [mined(f"ORE-{n}", "1000", day(10 * n)) for n in range(10)]
    lots.append(mined("ORE-X", last_kg, day(100)))
    return facts(batches=[replace(lot, facility_id=id_("CLAY")) for lot in lots])


def test_extraction_surge_fires_when_a_mine_outpaces_its_history() -> None:
    (anomaly,) = found(extractions("20000"), "extraction-surge")

    assert anomaly.companies == (id_("MINER"),)
    assert anomaly.countries == ("CN",)
    assert anomaly.figures["ratio"].value > 3


def test_extraction_surge_is_silent_at_the_mines_usual_rate() -> None:
    assert found(extractions("1000"), "extraction-surge") == []


def test_extraction_surge_needs_the_configured_history() -> None:
    assert found(extractions("20000"), "extraction-surge", extraction_history_days=200) == []


# --- under-invoicing -------------------------------------------------------------------------------


def oxide_sales(*prices: str, month_of_last: int = 3) -> Facts:
    batches, movements = [], []
    for n, price in enumerate(prices):
        lot = f"OX-{n}"
        batches.append(
            BatchFact(
                id_(lot),
                1,
                actor_id=id_("SEP"),
                material="oxide",
                initial_kg=D("100"),
                composition=OXIDE,
                kind="mined",
                created_at=day(0),
            )
        )
        at = datetime(2026, month_of_last if n == len(prices) - 1 else 3, 10, tzinfo=UTC)
        movements.append(sale(lot, 2, "SEP", "TRADER", "100", at, price=D(price), currency="CNY"))
    return facts(batches=batches, movements=movements)


def test_under_invoicing_fires_on_a_price_far_below_the_months_median() -> None:
    (anomaly,) = found(oxide_sales("55000", "56000", "54000", "11000"), "under-invoicing")

    assert anomaly.batches == (id_("OX-3"),)
    assert anomaly.elements == ("Nd",)
    assert anomaly.figures["price"].parties == {id_("SEP"), id_("TRADER")}


def test_under_invoicing_is_silent_on_prices_near_the_median() -> None:
    assert found(oxide_sales("55000", "56000", "54000", "50000"), "under-invoicing") == []


def test_under_invoicing_compares_within_a_month_only() -> None:
    # The cheap sale is alone in April: no group to compare it with.
    assert (
        found(oxide_sales("55000", "56000", "54000", "11000", month_of_last=4), "under-invoicing")
        == []
    )


# --- round trips -----------------------------------------------------------------------------


def trip(back_to: str) -> Facts:
    """TRADER exports oxide from its warehouse in CN to FOREIGN in MY, which exports it
    on to ``back_to``."""
    oxide = BatchFact(
        id_("OX"),
        1,
        reference="SEP/OX",
        actor_id=id_("SEP"),
        material="oxide",
        initial_kg=D("100"),
        composition=OXIDE,
        facility_id=id_("PLANT"),
        created_at=day(0),
        kind="mined",
    )

    def export(version: int, exporter: str, to: str, country: str, at: datetime):
        return MovementFact(
            id_("OX"),
            version,
            kind="export",
            from_id=id_(exporter),
            to_id=id_(to),
            kg=D("100"),
            destination_country=country,
            occurred_at=at,
            corrected_by=0,
        )

    receipt = MovementFact(
        id_("OX"),
        4,
        kind="receipt",
        to_id=id_("FOREIGN"),
        kg=D("100"),
        facility_id=id_("FOREIGN-WH"),
        occurred_at=day(20),
        corrected_by=0,
    )
    to = "TRADER" if back_to == "CN" else "CLIENT"
    return facts(
        batches=[oxide],
        movements=[
            sale("OX", 2, "SEP", "TRADER", "100", day(1)),
            export(3, "TRADER", "FOREIGN", "MY", day(5)),
            receipt,
            export(5, "FOREIGN", to, back_to, day(22)),
        ],
    )


def test_round_trip_fires_when_goods_come_back_to_the_country_they_left() -> None:
    (anomaly,) = found(trip("CN"), "round-trip")

    assert anomaly.figures["left"].value == "CN"
    assert anomaly.figures["came_back_from"].value == "MY"
    assert anomaly.figures["days"].value == 17


def test_round_trip_is_silent_when_goods_go_on_elsewhere() -> None:
    assert found(trip("DE"), "round-trip") == []


def test_round_trip_looks_no_further_than_the_configured_days() -> None:
    assert found(trip("CN"), "round-trip", round_trip_days=10) == []


# --- what every rule shares ---------------------------------------------------------------------


def everything() -> Facts:
    parts = [separation("301"), corrected_after_sale("10000", "6000"), shipment("CLIENT LTD")]
    parts += [alloy_from("300"), extractions("20000"), trip("CN")]
    parts += [oxide_sales("55000", "56000", "54000", "11000")]
    batches, steps, inputs, movements, licences = {}, {}, [], [], {}
    for part in parts:
        batches |= part.batches
        steps |= part.steps
        inputs += [i for found in part.inputs.values() for i in found]
        movements += part.movements
        licences |= part.licences
    return facts(
        batches=list(batches.values()),
        steps=list(steps.values()),
        inputs=inputs,
        movements=movements,
        licences=list(licences.values()),
    )


def test_a_clean_chain_has_no_anomaly() -> None:
    clean = [separation("285"), trader_books("50"), shipment("Client Ltd"), alloy_from("50")]
    clean += [extractions("1000"), trip("DE"), oxide_sales("55000", "56000", "54000")]
    assert [a for part in clean for a in evaluate(part)] == []


def test_the_evaluation_does_not_depend_on_the_order_facts_were_written() -> None:
    whole = everything()
    rows = {
        "batches": list(whole.batches.values()),
        "steps": list(whole.steps.values()),
        "inputs": [i for found in whole.inputs.values() for i in found],
        "movements": list(whole.movements),
    }
    rng = random.Random(5)
    for table in rows.values():
        rng.shuffle(table)

    shuffled = facts(**rows, licences=list(whole.licences.values()))

    assert evaluate(shuffled) == evaluate(whole)
    assert {a.rule for a in evaluate(whole)} == set(RULE_IDS) - {"licence-refusals"}


def test_an_anomaly_keeps_its_id_from_one_evaluation_to_the_next() -> None:
    first = [a.id for a in evaluate(everything())]

    assert first == [a.id for a in evaluate(everything())]
    assert anomaly_id("round-trip", "x") == anomaly_id("round-trip", "x")
    assert anomaly_id("round-trip", "x") != anomaly_id("under-invoicing", "x")


def test_evidence_events_carry_the_id_their_kafka_record_carries() -> None:
    aggregate = id_("OX")

    assert event_id(aggregate, 3) == codec.event_id(aggregate, 3)


def test_every_rule_documents_the_thresholds_it_reads() -> None:
    defaults = Thresholds().as_text()
    for rule in RULES:
        assert rule.definition and rule.title
        for name in rule.thresholds:
            assert name in defaults
            assert f"`{name}`" in rule.definition


def test_thresholds_are_overridden_by_name_from_the_settings() -> None:
    settings = Settings(anomaly_thresholds={"stress_share": "0.99", "refusal_count": 5})

    thresholds = Thresholds.with_overrides(settings.anomaly_thresholds)

    assert (thresholds.stress_share, thresholds.refusal_count) == (D("0.99"), 5)
    assert thresholds.price_share == Thresholds().price_share


@pytest.mark.parametrize(
    "overrides",
    [
        {"stress_sahre": "0.9"},
        {"stress_share": "many"},
        {"refusal_count": "-1"},
        {"price_share": 0.5},
    ],
)
def test_a_threshold_that_is_unknown_or_malformed_is_refused(overrides: dict) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Thresholds.with_overrides(overrides)
