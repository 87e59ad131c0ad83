"""Every invariant of the chain, one behaviour per test, through ``Ledger.execute``. A
refused command must say which field broke which rule and store nothing.

The rules need no database: these tests run on eventsourcing's in-memory store (the
ledger's chained event store and snapshots included). What a database adds, one
transaction per command and writers racing, is proven on SQLite and PostgreSQL in
``test_ledger_execution.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from lodestone.domain import ids
from lodestone.domain.batches import Status
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.domain.refusals import Conflict, Forbidden, InvalidInput, RuleBroken
from lodestone.domain.values import reo_kg
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from tests.unit.builders import (
    NDPR_OXIDE,
    ORE,
    ORE_REO_PER_1000_KG,
    alloying,
    beneficiation,
    concentrate,
    export,
    export_licence,
    extraction,
    merge,
    quota,
    receipt,
    sale,
    separation,
    split,
)


@pytest.fixture
def ledger(memory_ledger: Ledger) -> Ledger:
    return memory_ledger


# --- custody: only the holder acts on a batch -----------------------------------------------


def test_split_by_non_custodian_is_refused(chain, world):
    ore = chain.ore_at_separation_plant()

    refused = chain.refusal(world.mine, split("ORE-1", ("ORE-1-A", "10")))
    assert refused == (Forbidden, "batch", "custody")
    assert chain.remaining(ore) == D("1000")


def test_transformation_by_non_custodian_is_refused(chain, world):
    ore = chain.ore_at_separation_plant()

    refused = chain.refusal(world.mine, beneficiation([concentrate("100", "0.3")]))
    assert refused == (Forbidden, "inputs[0].batch", "custody")
    assert chain.remaining(ore) == D("1000")


def test_merge_by_non_custodian_is_refused(chain, world):
    ore = chain.ore("ORE-1")
    chain.ore_at_separation_plant("ORE-2")

    refused = chain.refusal(world.mine, merge("ORE-M", ("ORE-1", "10"), ("ORE-2", "10")))
    assert refused == (Forbidden, "inputs[1].batch", "custody")
    assert chain.remaining(ore) == D("1000")


def test_transfer_by_non_custodian_is_refused(chain, world):
    ore = chain.ore()

    refused = chain.refusal(world.trader, sale("MINECO/ORE-1", "AUTO"))
    assert refused == (Forbidden, "batch", "custody")
    assert chain.batch(ore).custodian_id == ids.actor_id("MINECO")


def test_export_by_non_custodian_is_refused(chain, world):
    oxide = chain.oxide()

    refused = chain.refusal(world.mine, export(batch="SEPCO/OX-1"))
    assert refused == (Forbidden, "batch", "custody")
    assert chain.status(oxide) is Status.ACTIVE
    assert chain.drawn("EX-1") == 0


def test_transfer_hands_custody_and_place_to_the_buyer(chain, world):
    ore = chain.ore()

    chain.sell(world.mine, "ORE-1", "SEPCO", "S-SEP")

    batch = chain.batch(ore)
    assert batch.custodian_id == ids.actor_id("SEPCO")
    assert batch.facility_id == ids.facility_id("S-SEP")
    assert batch.remaining_kg == D("1000")


def test_sale_to_the_holder_itself_is_refused(chain, world):
    chain.ore()

    refused = chain.refusal(world.mine, sale(buyer="MINECO"))
    assert refused == (RuleBroken, "buyer", "distinct-parties")


def test_sale_into_a_plant_that_is_not_the_buyers_is_refused(chain, world):
    ore = chain.ore()

    refused = chain.refusal(world.mine, sale(buyer="TRADER", to_facility="S-SEP"))
    assert refused == (RuleBroken, "to_facility", "facility-owner")
    assert chain.batch(ore).custodian_id == ids.actor_id("MINECO")


# --- never take more than a batch has -----------------------------------------------------


def test_transformation_taking_more_than_the_batch_has_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([concentrate("100", "0.3")], take="1000.000001")
    assert chain.refusal(world.mine, step) == (RuleBroken, "inputs[0].mass_kg", "mass-available")
    assert chain.remaining(ore) == D("1000")


def test_split_taking_more_than_the_batch_has_is_refused(chain, world):
    ore = chain.ore()

    step = split("ORE-1", ("ORE-1-A", "600"), ("ORE-1-B", "400.000001"))
    assert chain.refusal(world.mine, step) == (RuleBroken, "parts", "mass-available")
    assert chain.remaining(ore) == D("1000")


def test_merge_taking_more_than_a_batch_has_is_refused(chain, world):
    first, second = chain.ore("ORE-1"), chain.ore("ORE-2")

    step = merge("ORE-M", ("ORE-1", "1000"), ("ORE-2", "1000.000001"))
    assert chain.refusal(world.mine, step) == (RuleBroken, "inputs[1].mass_kg", "mass-available")
    assert chain.remaining(first) == D("1000")
    assert chain.remaining(second) == D("1000")


def test_split_taking_everything_leaves_the_parent_consumed(chain, world):
    ore = chain.ore()

    chain.run(world.mine, split("ORE-1", ("ORE-1-A", "600"), ("ORE-1-B", "400")))

    parent = chain.batch(ore)
    assert (parent.remaining_kg, parent.status) == (0, Status.CONSUMED)
    assert chain.remaining("MINECO/ORE-1-A") + chain.remaining("MINECO/ORE-1-B") == 1000


def test_merge_blends_what_it_takes_into_one_batch(chain, world):
    first, second = chain.ore("ORE-1"), chain.ore("ORE-2")

    chain.run(world.mine, merge("ORE-M", ("ORE-1", "300"), ("ORE-2", "1000")))

    merged = chain.batch("MINECO/ORE-M")
    assert (merged.initial_kg, merged.composition) == (D("1300"), ORE)
    assert chain.remaining(first) == D("700")
    assert chain.status(second) is Status.CONSUMED


# --- mass balance ----------------------------------------------------------------------------
# 1000 kg of ore carry 40 kg Nd; the default tolerance of beneficiation is 0.5 %, so its
# outputs may carry up to 40.2 kg Nd and weigh up to 1005 kg in total.


def test_output_element_mass_just_inside_the_tolerance_is_accepted(chain, world):
    ore = chain.ore()

    chain.run(world.mine, beneficiation([concentrate("100", "0.402")]))

    assert chain.remaining(ore) == 0
    assert chain.batch("MINECO/CON-1").composition == {"Nd": D("0.402")}


def test_output_element_mass_just_outside_the_tolerance_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([concentrate("100", "0.402000001")])
    assert chain.refusal(world.mine, step) == (RuleBroken, "outputs.composition.Nd", "mass-balance")
    assert chain.remaining(ore) == D("1000")


def test_output_element_mass_is_summed_over_all_outputs(chain, world):
    chain.ore()

    step = beneficiation([concentrate("50", "0.402"), concentrate("50", "0.40200001", "CON-2")])
    assert chain.refusal(world.mine, step) == (RuleBroken, "outputs.composition.Nd", "mass-balance")


def test_output_element_absent_from_the_inputs_is_refused(chain, world):
    chain.ore()

    terbium = OutputSpec("CON-1", "concentrate", D("100"), {"Nd": D("0.3"), "Tb": D("0.001")})
    refused = chain.refusal(world.mine, beneficiation([terbium]))
    assert refused == (RuleBroken, "outputs.composition.Tb", "mass-balance")


def test_output_total_mass_just_inside_the_tolerance_is_accepted(chain, world):
    chain.ore()

    chain.run(world.mine, beneficiation([concentrate("1005", "0.01")]))

    assert chain.batch("MINECO/CON-1").initial_kg == D("1005")


def test_output_total_mass_just_outside_the_tolerance_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([concentrate("1005.000001", "0.01")])
    assert chain.refusal(world.mine, step) == (RuleBroken, "outputs", "mass-balance")
    assert chain.remaining(ore) == D("1000")


def test_declared_tolerance_of_two_percent_widens_the_allowance(chain, world):
    chain.ore()

    chain.run(world.mine, beneficiation([concentrate("100", "0.408")], tolerance="0.02"))

    assert chain.batch("MINECO/CON-1").composition == {"Nd": D("0.408")}


def test_declared_tolerance_above_two_percent_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([concentrate("100", "0.3")], tolerance="0.020000001")
    assert chain.refusal(world.mine, step) == (InvalidInput, "tolerance", "tolerance-bounded")
    assert chain.remaining(ore) == D("1000")


def test_untraced_input_carrying_rare_earths_is_refused(chain, world):
    scrap = chain.scrap()

    step = alloying([UntracedInput("neodymium", D("10"), {"Nd": D("1")})])
    refused = chain.refusal(world.alloyer, step)
    assert refused == (RuleBroken, "untraced_inputs[0].composition", "rare-earths-traced")
    assert chain.remaining(scrap) == D("100")


def test_untraced_iron_and_boron_are_allowed_in_alloying(chain, world):
    scrap = chain.scrap()

    iron = UntracedInput("iron", D("200"), {"Fe": D("1")})
    chain.run(world.alloyer, alloying([iron, UntracedInput("ferroboron", D("3"), {"B": D("1")})]))

    assert chain.batch("ALLOYCO/AL-1").initial_kg == D("300")
    assert chain.remaining(scrap) == 0


def test_untraced_iron_must_be_declared_to_balance_alloying(chain, world):
    chain.scrap()

    step = alloying([UntracedInput("ferroboron", D("3"), {"B": D("1")})])
    assert chain.refusal(world.alloyer, step) == (RuleBroken, "outputs", "mass-balance")


# --- process rules -------------------------------------------------------------------------


def test_process_given_the_wrong_input_material_is_refused(chain, world):
    scrap = chain.scrap(facility="A-MAG")

    step = c.Transform(
        facility="A-MAG",
        process="magnet_making",
        reference="MAG-1",
        inputs=[("SCR-1", D("100"))],
        outputs=[OutputSpec("MAG-1", "magnet", D("80"), {"Nd": D("0.3")})],
    )
    assert chain.refusal(world.alloyer, step) == (RuleBroken, "inputs[0].batch", "process-input")
    assert chain.remaining(scrap) == D("100")


def test_process_making_the_wrong_output_material_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([OutputSpec("OX-1", "oxide", D("40"), {"Nd": D("0.8")})])
    assert chain.refusal(world.mine, step) == (RuleBroken, "outputs[0].material", "process-output")
    assert chain.remaining(ore) == D("1000")


def test_process_at_the_wrong_kind_of_facility_is_refused(chain, world):
    ore = chain.ore()

    step = c.Transform(
        facility="M-PIT",
        process="separation",
        reference="SEP-1",
        inputs=[("ORE-1", D("1000"))],
        outputs=[OutputSpec("OX-1", "oxide", D("40"), NDPR_OXIDE)],
    )
    assert chain.refusal(world.mine, step) == (RuleBroken, "facility", "facility-kind")
    assert chain.remaining(ore) == D("1000")


def test_ore_extracted_outside_a_mine_is_refused(chain, world):
    step = extraction(kg="1", facility="S-SEP")
    assert chain.refusal(world.separator, step) == (RuleBroken, "facility", "facility-kind")


def test_step_at_another_actors_facility_is_refused(chain, world):
    chain.scrap()

    step = alloying([UntracedInput("iron", D("203"))], facility="S-MET")
    assert chain.refusal(world.alloyer, step) == (Forbidden, "facility", "facility-owner")


def test_unknown_process_is_refused(chain, world):
    chain.ore()

    step = c.Transform(
        facility="M-PIT",
        process="alchemy",
        reference="X-1",
        inputs=[("ORE-1", D("1"))],
        outputs=[concentrate("1", "0.01")],
    )
    assert chain.refusal(world.mine, step) == (InvalidInput, "process", "process")


# --- co-location -----------------------------------------------------------------------------


def test_transformation_input_at_another_facility_is_refused(chain, world):
    scrap = chain.scrap(facility="A-MAG")

    step = alloying([UntracedInput("iron", D("203"), {"Fe": D("1")})])
    assert chain.refusal(world.alloyer, step) == (RuleBroken, "inputs[0].batch", "co-located")
    assert chain.remaining(scrap) == D("100")


def test_merge_of_batches_at_different_facilities_is_refused(chain, world):
    scrap = chain.scrap("SCR-1", facility="A-ALLOY")
    chain.scrap("SCR-2", facility="A-MAG")

    step = merge("SCR-M", ("SCR-1", "100"), ("SCR-2", "100"))
    assert chain.refusal(world.alloyer, step) == (RuleBroken, "inputs[1].batch", "co-located")
    assert chain.remaining(scrap) == D("100")


def test_merge_of_different_materials_is_refused(chain, world):
    oxide = chain.oxide("OX-1")
    chain.ore_at_separation_plant("ORE-2")

    step = merge("MIX-1", ("OX-1", "50"), ("MINECO/ORE-2", "100"))
    assert chain.refusal(world.separator, step) == (RuleBroken, "inputs[1].batch", "same-material")
    assert chain.remaining(oxide) == D("50")


# --- mining quota -----------------------------------------------------------------------------


def test_extraction_draws_its_reo_from_the_mining_quota(chain, world):
    ore = chain.ore()

    assert chain.drawn("MQ-1") == ORE_REO_PER_1000_KG
    assert chain.batch(ore).origin["licence_id"] == ids.licence_id("MQ-1")


def test_extraction_drawing_exactly_the_quota_remaining_is_accepted(chain, world):
    chain.issue(quota("MQ-2", "mining_quota", "MINECO", ORE_REO_PER_1000_KG))

    chain.run(world.mine, extraction(quota="MQ-2"))

    assert chain.licence("MQ-2").remaining_kg == 0


def test_extraction_beyond_the_quota_remaining_is_refused(chain, world):
    chain.issue(quota("MQ-2", "mining_quota", "MINECO", ORE_REO_PER_1000_KG - D("0.000001")))

    refused = chain.refusal(world.mine, extraction(quota="MQ-2"))
    assert refused == (RuleBroken, "quota", "licence-remaining")
    assert chain.drawn("MQ-2") == 0


def test_quota_the_size_of_a_state_groups_annual_quota_can_be_issued(chain, world):
    chain.issue(quota("MQ-BIG", "mining_quota", "MINECO", "184000000"))

    assert chain.licence("MQ-BIG").remaining_kg == D("184000000")


def test_extraction_outside_the_quota_validity_is_refused(chain, world):
    step = extraction(occurred_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert chain.refusal(world.mine, step) == (RuleBroken, "quota", "licence-validity")
    assert chain.drawn("MQ-1") == 0


def test_extraction_under_another_actors_quota_is_refused(chain, world):
    chain.issue(quota("MQ-T", "mining_quota", "TRADER", "1000"))

    step = extraction(kg="1", quota="MQ-T")
    assert chain.refusal(world.mine, step) == (Forbidden, "quota", "licence-holder")
    assert chain.drawn("MQ-T") == 0


def test_extraction_under_a_separation_quota_is_refused(chain, world):
    chain.issue(quota("SQ-M", "separation_quota", "MINECO", "1000"))

    step = extraction(kg="1", quota="SQ-M")
    assert chain.refusal(world.mine, step) == (RuleBroken, "quota", "licence-kind")


def test_ore_without_rare_earth_content_is_refused(chain, world):
    step = extraction(kg="1", composition={"Fe": D("0.5")})
    assert chain.refusal(world.mine, step) == (InvalidInput, "composition", "rare-earth-content")


# --- separation quota ------------------------------------------------------------------------


def test_separation_draws_the_reo_of_its_outputs_from_the_quota(chain, world):
    chain.oxide(kg="50")

    assert chain.drawn("SQ-1") == reo_kg(D("50"), NDPR_OXIDE) == D("49.9273")


def test_separation_without_a_quota_is_refused(chain, world):
    ore = chain.ore_at_separation_plant()

    step = separation(quota=None)
    assert chain.refusal(world.separator, step) == (InvalidInput, "quota", "required")
    assert chain.remaining(ore) == D("1000")


def test_separation_beyond_the_quota_remaining_is_refused(chain, world):
    ore = chain.ore_at_separation_plant()
    chain.issue(quota("SQ-2", "separation_quota", "SEPCO", "49.927299"))

    refused = chain.refusal(world.separator, separation(quota="SQ-2"))
    assert refused == (RuleBroken, "quota", "licence-remaining")
    assert chain.drawn("SQ-2") == 0
    assert chain.remaining(ore) == D("1000")


def test_quota_named_on_a_step_that_draws_none_is_refused(chain, world):
    chain.ore()

    step = beneficiation([concentrate("100", "0.3")], quota="MQ-1")
    assert chain.refusal(world.mine, step) == (InvalidInput, "quota", "quota-not-drawn")
    assert chain.drawn("MQ-1") == ORE_REO_PER_1000_KG


# --- export licence -------------------------------------------------------------------------


def test_export_puts_the_batch_in_transit_and_draws_the_licence(chain, world):
    oxide = chain.oxide(kg="50")

    chain.run(world.separator, export())

    batch = chain.batch(oxide)
    assert batch.status is Status.IN_TRANSIT
    assert batch.export["consignee_id"] == ids.actor_id("AUTO")
    assert chain.drawn("EX-1") == D("50")


def test_export_under_an_expired_licence_is_refused(chain, world):
    until_march = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    chain.issue(export_licence("EX-OLD", valid=until_march))
    oxide = chain.oxide(at=datetime(2026, 2, 1, tzinfo=UTC))

    step = export(licence="EX-OLD", occurred_at=datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))
    assert chain.refusal(world.separator, step) == (RuleBroken, "licence", "licence-validity")
    assert chain.drawn("EX-OLD") == 0
    assert chain.status(oxide) is Status.ACTIVE


def test_export_beyond_the_licence_remaining_is_refused(chain, world):
    chain.issue(export_licence("EX-2", D("49.999999")))
    oxide = chain.oxide(kg="50")

    refused = chain.refusal(world.separator, export(licence="EX-2"))
    assert refused == (RuleBroken, "licence", "licence-remaining")
    assert chain.drawn("EX-2") == 0
    assert chain.status(oxide) is Status.ACTIVE


def test_export_drawing_exactly_the_licence_remaining_is_accepted(chain, world):
    chain.issue(export_licence("EX-2", D("50")))
    chain.oxide(kg="50")

    chain.run(world.separator, export(licence="EX-2"))

    assert chain.licence("EX-2").remaining_kg == 0


def test_export_overdrawing_what_earlier_shipments_left_is_refused(chain, world):
    chain.issue(export_licence("EX-2", D("99.999999")))
    chain.oxide("OX-1", kg="50")
    chain.oxide("OX-2", kg="50")
    chain.run(world.separator, export(batch="OX-1", licence="EX-2"))

    refused = chain.refusal(world.separator, export(batch="OX-2", licence="EX-2"))
    assert refused == (RuleBroken, "licence", "licence-remaining")
    assert chain.drawn("EX-2") == D("50")


def test_export_to_another_destination_is_refused(chain, world):
    chain.oxide()

    step = export(consignee="FRANCO", destination_country="FR", end_user="Franco SA")
    refused = chain.refusal(world.separator, step)
    assert refused == (RuleBroken, "destination_country", "licence-destination")
    assert chain.drawn("EX-1") == 0


def test_export_to_another_consignee_is_refused(chain, world):
    chain.oxide()

    refused = chain.refusal(world.separator, export(consignee="RIVAL"))
    assert refused == (RuleBroken, "consignee", "licence-consignee")
    assert chain.drawn("EX-1") == 0


def test_export_for_another_end_user_is_refused(chain, world):
    chain.oxide()

    refused = chain.refusal(world.separator, export(end_user="Rival AG"))
    assert refused == (RuleBroken, "end_user", "licence-end-user")
    assert chain.drawn("EX-1") == 0


def test_export_end_user_is_matched_ignoring_case_and_spaces(chain, world):
    chain.oxide()

    chain.run(world.separator, export(end_user="  auto gmbh "))

    assert chain.drawn("EX-1") == D("50")


def test_export_under_a_customs_code_not_for_the_material_is_refused(chain, world):
    chain.oxide()

    refused = chain.refusal(world.separator, export(customs_code="8505.11"))
    assert refused == (RuleBroken, "customs_code", "customs-heading")
    assert chain.drawn("EX-1") == 0


def test_export_of_goods_the_licence_does_not_cover_is_refused(chain, world):
    chain.ore_at_separation_plant()

    refused = chain.refusal(world.separator, export(batch="MINECO/ORE-1", customs_code="2530.90"))
    assert refused == (RuleBroken, "customs_code", "licence-item")
    assert chain.drawn("EX-1") == 0


def test_export_to_a_consignee_registered_in_another_country_is_refused(chain, world):
    chain.oxide()

    refused = chain.refusal(world.separator, export(destination_country="FR"))
    assert refused == (RuleBroken, "destination_country", "consignee-country")
    assert chain.drawn("EX-1") == 0


def test_export_under_another_holders_licence_is_refused(chain, world):
    oxide = chain.oxide()
    chain.sell(world.separator, "OX-1", "TRADER", "T-WH")

    refused = chain.refusal(world.trader, export(batch="SEPCO/OX-1"))
    assert refused == (Forbidden, "licence", "licence-holder")
    assert chain.drawn("EX-1") == 0
    assert chain.status(oxide) is Status.ACTIVE


# --- state: nothing moves a consumed, in-transit or quarantined batch ------------------------


def test_consumed_batch_cannot_be_sold(chain, world):
    chain.ore()
    chain.run(world.mine, split("ORE-1", ("ORE-1-A", "1000")))

    refused = chain.refusal(world.mine, sale(buyer="TRADER", to_facility="T-WH"))
    assert refused == (Conflict, "batch", "batch-consumed")


def test_batch_in_transit_cannot_be_split(chain, world):
    oxide = chain.exported_oxide()

    refused = chain.refusal(world.separator, split("OX-1", ("OX-1-A", "10")))
    assert refused == (Conflict, "batch", "batch-in-transit")
    assert chain.remaining(oxide) == D("50")


def test_batch_in_transit_cannot_be_exported_again(chain, world):
    chain.exported_oxide()

    assert chain.refusal(world.separator, export()) == (Conflict, "batch", "batch-in-transit")
    assert chain.drawn("EX-1") == D("50")


def test_quarantined_batch_cannot_be_transformed(chain, world):
    ore = chain.hold(world.mine, chain.ore(), "assay disputed")

    step = beneficiation([concentrate("100", "0.3")])
    assert chain.refusal(world.mine, step) == (Conflict, "inputs[0].batch", "batch-quarantined")
    assert chain.remaining(ore) == D("1000")


def test_quarantined_batch_cannot_be_sold(chain, world, regulator):
    chain.hold(regulator, chain.ore(), "illegal mining?")

    refused = chain.refusal(world.mine, sale(buyer="TRADER", to_facility="T-WH"))
    assert refused == (Conflict, "batch", "batch-quarantined")


def test_consumed_batch_cannot_be_quarantined(chain, world, regulator):
    chain.ore()
    chain.run(world.mine, split("ORE-1", ("ORE-1-A", "1000")))

    refused = chain.refusal(regulator, c.Quarantine(batch="MINECO/ORE-1", reason="check"))
    assert refused == (Conflict, "batch", "batch-consumed")


# --- quarantine and release ---------------------------------------------------------------


def test_regulators_hold_cannot_be_released_by_the_custodian(chain, world, regulator):
    ore = chain.hold(regulator, chain.ore(), "illegal mining?")

    step = c.Release(batch="ORE-1", reason="we say it is fine")
    assert chain.refusal(world.mine, step) == (Forbidden, "batch", "role")
    assert chain.status(ore) is Status.QUARANTINED


def test_regulators_hold_is_released_by_a_regulator(chain, world, regulator):
    ore = chain.hold(regulator, chain.ore(), "illegal mining?")

    chain.run(regulator, c.Release(batch="MINECO/ORE-1", reason="permits in order"))

    assert chain.status(ore) is Status.ACTIVE


def test_regulators_hold_is_released_by_an_admin(chain, world, regulator, admin):
    ore = chain.hold(regulator, chain.ore(), "illegal mining?")

    chain.run(admin, c.Release(batch="MINECO/ORE-1", reason="permits in order"))

    assert chain.status(ore) is Status.ACTIVE


def test_custodians_own_hold_is_released_by_the_custodian(chain, world):
    ore = chain.ore()
    chain.hold(world.mine, "ORE-1", "assay disputed")

    chain.run(world.mine, c.Release(batch="ORE-1", reason="re-assayed"))

    assert chain.status(ore) is Status.ACTIVE


def test_quarantine_by_an_operator_who_does_not_hold_the_batch_is_refused(chain, world):
    chain.ore()

    step = c.Quarantine(batch="MINECO/ORE-1", reason="competitor")
    assert chain.refusal(world.trader, step) == (Forbidden, "batch", "custody")


def test_release_of_a_hold_on_a_shipment_restores_it_in_transit(chain, world, regulator):
    oxide = chain.hold(regulator, chain.exported_oxide(), "customs check")

    chain.run(regulator, c.Release(batch="SEPCO/OX-1", reason="cleared"))

    assert chain.status(oxide) is Status.IN_TRANSIT


# --- receipt ----------------------------------------------------------------------------------


def test_receipt_by_the_consignee_takes_custody_of_what_arrived(chain, world):
    oxide = chain.exported_oxide(kg="50")

    chain.run(world.auto, receipt(received_kg=D("49.5")))

    batch = chain.batch(oxide)
    assert batch.status is Status.ACTIVE
    assert batch.custodian_id == ids.actor_id("AUTO")
    assert batch.facility_id == ids.facility_id("D-PLANT")
    assert batch.remaining_kg == D("49.5")


def test_receipt_by_an_actor_other_than_the_consignee_is_refused(chain, world):
    oxide = chain.exported_oxide()

    assert chain.refusal(world.rival, receipt("R-PLANT")) == (Forbidden, "batch", "consignee")
    assert chain.status(oxide) is Status.IN_TRANSIT


def test_receipt_of_more_than_was_shipped_is_refused(chain, world):
    oxide = chain.exported_oxide(kg="50")

    refused = chain.refusal(world.auto, receipt(received_kg=D("50.000001")))
    assert refused == (RuleBroken, "received_kg", "mass-available")
    assert chain.status(oxide) is Status.IN_TRANSIT


def test_receipt_of_a_batch_not_in_transit_is_refused(chain, world):
    chain.oxide()

    assert chain.refusal(world.auto, receipt()) == (Conflict, "batch", "not-in-transit")


def test_receipt_dated_before_the_shipment_is_refused(chain, world):
    chain.oxide(at=datetime(2026, 2, 1, tzinfo=UTC))
    chain.run(world.separator, export(occurred_at=datetime(2026, 5, 1, tzinfo=UTC)))

    step = receipt(occurred_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert chain.refusal(world.auto, step) == (RuleBroken, "occurred_at", "chronology")


# --- genealogy stays acyclic; lot codes are unique --------------------------------------------


def test_output_named_after_one_of_its_inputs_is_refused(chain, world):
    ore = chain.ore()

    step = beneficiation([concentrate("100", "0.3", lot="ORE-1")])
    assert chain.refusal(world.mine, step) == (Conflict, "outputs[0].lot_code", "unique")
    assert chain.remaining(ore) == D("1000")


def test_merge_named_after_one_of_its_inputs_is_refused(chain, world):
    chain.ore("ORE-1")
    chain.ore("ORE-2")

    step = merge("ORE-2", ("ORE-1", "10"), ("ORE-2", "10"))
    assert chain.refusal(world.mine, step) == (Conflict, "lot_code", "unique")


def test_split_part_named_after_its_parent_is_refused(chain, world):
    chain.ore()

    step = split("ORE-1", ("ORE-1", "10"))
    assert chain.refusal(world.mine, step) == (Conflict, "parts[0].lot_code", "unique")


def test_second_batch_under_the_same_lot_code_is_refused(chain, world):
    ore = chain.ore()

    assert chain.refusal(world.mine, extraction(kg="5")) == (Conflict, "lot_code", "unique")
    assert chain.drawn("MQ-1") == ORE_REO_PER_1000_KG
    assert chain.remaining(ore) == D("1000")


def test_same_lot_code_twice_in_one_bulk_is_refused(chain, world):
    ore = extraction(kg="5")

    refused = chain.refusal(world.mine, ore, ore, bulk=True)
    assert refused == (Conflict, "events[1].lot_code", "unique")
    assert chain.drawn("MQ-1") == 0


def test_second_transformation_under_the_same_reference_is_refused(chain, world):
    ore = chain.ore()
    chain.run(world.mine, beneficiation([concentrate("10", "0.3")], take="100"))

    step = beneficiation([concentrate("10", "0.3", lot="CON-2")], take="100")
    assert chain.refusal(world.mine, step) == (Conflict, "reference", "unique")
    assert chain.remaining(ore) == D("900")


def test_same_lot_code_under_another_actor_is_another_batch(chain, world):
    ore = chain.ore("LOT-7")

    scrap = chain.scrap("LOT-7")

    assert chain.batch(ore).id != chain.batch(scrap).id


# --- chronology ----------------------------------------------------------------------------


def test_step_dated_before_its_input_batch_existed_is_refused(chain, world):
    ore = chain.ore(at=world.now - timedelta(days=10))

    step = split("ORE-1", ("ORE-1-A", "10"), occurred_at=world.now - timedelta(days=10, seconds=1))
    assert chain.refusal(world.mine, step) == (RuleBroken, "occurred_at", "chronology")
    assert chain.remaining(ore) == D("1000")


def test_transformation_dated_before_its_input_existed_is_refused(chain, world):
    chain.ore(at=world.now - timedelta(days=10))

    step = beneficiation([concentrate("100", "0.3")], occurred_at=world.now - timedelta(days=11))
    assert chain.refusal(world.mine, step) == (RuleBroken, "occurred_at", "chronology")


def test_step_dated_in_the_future_is_refused(chain, world):
    step = extraction(occurred_at=world.now + timedelta(minutes=5, microseconds=1))
    assert chain.refusal(world.mine, step) == (InvalidInput, "occurred_at", "not-in-future")
    assert chain.drawn("MQ-1") == 0


def test_step_dated_within_the_allowed_clock_skew_is_accepted(chain, world):
    ore = chain.ore(at=world.now + timedelta(minutes=5))

    assert chain.batch(ore).created_at == world.now + timedelta(minutes=5)


def test_step_dated_without_a_time_zone_is_refused(chain, world):
    step = extraction(occurred_at=datetime(2026, 5, 1))
    assert chain.refusal(world.mine, step) == (InvalidInput, "occurred_at", "timezone")


def test_quarantine_dated_before_the_batch_existed_is_refused(chain, world, regulator):
    ore = chain.ore(at=datetime(2026, 5, 1, tzinfo=UTC))

    step = c.Quarantine(batch=ore, reason="check", occurred_at=datetime(2026, 4, 30, tzinfo=UTC))
    assert chain.refusal(regulator, step) == (RuleBroken, "occurred_at", "chronology")


def test_quarantine_dated_in_the_future_is_refused(chain, world, regulator):
    ore = chain.ore()

    step = c.Quarantine(batch=ore, reason="check", occurred_at=world.now + timedelta(hours=1))
    assert chain.refusal(regulator, step) == (InvalidInput, "occurred_at", "not-in-future")


# --- who may report for whom ------------------------------------------------------------------


def test_operator_acting_for_another_actor_is_refused(chain, world):
    step = extraction(actor="SEPCO")
    assert chain.refusal(world.mine, step) == (Forbidden, "actor", "ownership")


def test_admin_acting_for_an_actor_records_the_step_as_that_actors(chain, world, admin):
    chain.run(admin, extraction(actor="MINECO"))

    batch = chain.batch("MINECO/ORE-1")
    assert batch.custodian_id == batch.reporter_id == ids.actor_id("MINECO")
    created = next(iter(chain.ledger.events.get(batch.id)))
    assert created.reported_by == "admin"
    assert chain.drawn("MQ-1") == ORE_REO_PER_1000_KG


def test_admin_step_naming_no_actor_is_refused(chain, world, admin):
    assert chain.refusal(admin, extraction(kg="1")) == (InvalidInput, "actor", "required")


def test_regulator_cannot_report_a_step_for_an_actor(chain, world, regulator):
    step = extraction(kg="1", actor="MINECO")
    assert chain.refusal(regulator, step) == (Forbidden, "actor", "role")


def test_holder_moves_a_batch_between_its_own_facilities(chain, world):
    oxide = chain.oxide()

    chain.run(world.separator, c.MoveBatch(batch="OX-1", to_facility="S-MET"))

    assert chain.batch(oxide).facility_id == ids.facility_id("S-MET")


def test_move_to_another_actors_plant_is_refused(chain, world):
    oxide = chain.oxide()

    step = c.MoveBatch(batch="OX-1", to_facility="A-ALLOY")
    assert chain.refusal(world.separator, step) == (Forbidden, "to_facility", "facility-owner")
    assert chain.batch(oxide).facility_id == ids.facility_id("S-SEP")


def test_move_of_a_batch_in_transit_is_refused(chain, world):
    chain.exported_oxide()

    step = c.MoveBatch(batch="OX-1", to_facility="S-MET")
    assert chain.refusal(world.separator, step) == (Conflict, "batch", "batch-in-transit")


def test_sale_dated_before_the_sellers_own_purchase_is_refused(chain, world):
    chain.ore(at=world.now - timedelta(days=3))
    chain.sell(world.mine, "ORE-1", "TRADER", "T-WH", at=world.now - timedelta(days=1))

    step = sale("MINECO/ORE-1", "SEPCO", contract="K-2", occurred_at=world.now - timedelta(days=2))
    assert chain.refusal(world.trader, step) == (RuleBroken, "occurred_at", "chronology")


def test_receipt_at_a_facility_outside_the_destination_country_is_refused(chain, world):
    oxide = chain.exported_oxide()
    chain.issue(c.RegisterFacility("D-DEPOT-CN", "AUTO depot in China", "warehouse", "AUTO", "CN"))

    refused = chain.refusal(world.auto, receipt("D-DEPOT-CN"))
    assert refused == (RuleBroken, "facility", "destination-country")
    assert chain.status(oxide) is Status.IN_TRANSIT


def test_sale_at_a_price_above_a_hundred_million_is_recorded(chain, world):
    ore = chain.ore()

    chain.run(world.mine, sale(contract="K-1", price=D("150000000.00"), currency="CNY"))

    assert chain.batch(ore).custodian_id == ids.actor_id("TRADER")


def test_price_with_fractions_of_a_cent_is_refused(chain, world):
    chain.ore()

    step = sale(contract="K-1", price=D("10.001"), currency="USD")
    assert chain.refusal(world.mine, step) == (InvalidInput, "price", "price-precision")
