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

ORE = {"Nd": D("0.04"), "Pr": D("0.01"), "Dy": D("0.0005"), "Fe": D("0.2")}
ORE_REO_PER_1000_KG = D("59.31185")  # 1000 * (0.04*1.1664 + 0.01*1.2082 + 0.0005*1.1477)
NDPR_OXIDE = {"Nd": D("0.68"), "Pr": D("0.17")}
SCRAP = {"Nd": D("0.3"), "Dy": D("0.02"), "Fe": D("0.66"), "B": D("0.01")}


@pytest.fixture
def ledger(memory_ledger: Ledger) -> Ledger:
    return memory_ledger


# --- small, explicit set-ups ---------------------------------------------------------------


def extract_ore(ledger, world, lot="ORE-1", kg="1000", at=None):
    ledger.execute(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code=lot,
                mass_kg=D(kg),
                composition=ORE,
                occurred_at=at,
            )
        ],
    )


def sell(ledger, seller, batch, buyer, to_facility, at=None):
    ledger.execute(
        seller,
        [
            c.TransferCustody(
                batch=batch, buyer=buyer, contract="K-1", to_facility=to_facility, occurred_at=at
            )
        ],
    )


def ore_at_separation_plant(ledger, world, lot="ORE-1", at=None):
    """MINECO mines 1000 kg of ore and sells it to SEPCO, delivered to S-SEP."""
    extract_ore(ledger, world, lot, at=at)
    sell(ledger, world.mine, lot, "SEPCO", "S-SEP", at=at)


def separation(ore="MINECO/ORE-1", take="1000", out="OX-1", kg="50", quota="SQ-1", at=None):
    return c.Transform(
        facility="S-SEP",
        process="separation",
        reference=f"SEP-{out}",
        inputs=[(ore, D(take))],
        outputs=[OutputSpec(out, "oxide", D(kg), NDPR_OXIDE)],
        quota=quota,
        occurred_at=at,
    )


def make_oxide(ledger, world, lot="OX-1", kg="50", at=None):
    """SEPCO separates 1000 kg of bought ore into ``kg`` of NdPr oxide at S-SEP."""
    ore = f"ORE-FOR-{lot}"
    ore_at_separation_plant(ledger, world, ore, at=at)
    ledger.execute(world.separator, [separation(f"MINECO/{ore}", out=lot, kg=kg, at=at)])


def beneficiation(outputs, take="1000", lot="ORE-1", **extra):
    return c.Transform(
        facility="M-PIT",
        process="beneficiation",
        reference="BEN-1",
        inputs=[(lot, D(take))],
        outputs=outputs,
        **extra,
    )


def concentrate(kg, nd, lot="CON-1"):
    return OutputSpec(lot, "concentrate", D(kg), {"Nd": D(nd)})


def collect_scrap(ledger, world, lot="SCR-1", kg="100", facility="A-ALLOY"):
    ledger.execute(
        world.alloyer,
        [
            c.CollectScrap(
                facility=facility,
                lot_code=lot,
                mass_kg=D(kg),
                composition=SCRAP,
                source="end-of-life motors",
            )
        ],
    )


def alloying(untraced, outputs=None, facility="A-ALLOY"):
    return c.Transform(
        facility=facility,
        process="alloying",
        reference="ALLOY-1",
        inputs=[("SCR-1", D("100"))],
        outputs=outputs
        or [
            OutputSpec(
                "AL-1",
                "alloy",
                D("300"),
                {"Nd": D("0.1"), "Dy": D("0.006"), "Fe": D("0.88"), "B": D("0.013")},
            )
        ],
        untraced_inputs=untraced,
    )


def year_2026():
    return (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def export_licence(number, max_kg=D("10000"), valid=None):
    """Like EX-1: SEPCO may ship oxide (2846) to AUTO in DE for end user Auto GmbH."""
    return c.IssueLicence(
        number,
        "export_licence",
        "SEPCO",
        max_kg,
        *(valid or year_2026()),
        items=[{"material": "oxide", "customs_code": "2846"}],
        consignee="AUTO",
        end_user="Auto GmbH",
        destination_country="DE",
    )


def export(**overrides):
    fields = {
        "batch": "OX-1",
        "licence": "EX-1",
        "consignee": "AUTO",
        "destination_country": "DE",
        "end_user": "Auto GmbH",
        "customs_code": "2846.90",
    }
    fields.update(overrides)
    return c.ExportShipment(**fields)


def exported_oxide(ledger, world, kg="50"):
    make_oxide(ledger, world, kg=kg)
    ledger.execute(world.separator, [export()])


def remaining(ledger, ref):
    return ledger.batch(ref).remaining_kg


def drawn(ledger, number):
    return ledger.licence_by_number(number).drawn_kg


# --- custody: only the holder acts on a batch -----------------------------------------------


def test_split_by_non_custodian_is_refused(ledger, world, assert_refused):
    ore_at_separation_plant(ledger, world)

    assert_refused(
        world.mine,
        [c.Split(batch="ORE-1", parts=[("ORE-1-A", D("10"))])],
        Forbidden,
        field="batch",
        rule="custody",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_transformation_by_non_custodian_is_refused(ledger, world, assert_refused):
    ore_at_separation_plant(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")])],
        Forbidden,
        field="inputs[0].batch",
        rule="custody",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_merge_by_non_custodian_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, "ORE-1")
    ore_at_separation_plant(ledger, world, "ORE-2")

    assert_refused(
        world.mine,
        [c.Merge(lot_code="ORE-M", inputs=[("ORE-1", D("10")), ("ORE-2", D("10"))])],
        Forbidden,
        field="inputs[1].batch",
        rule="custody",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_transfer_by_non_custodian_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.trader,
        [c.TransferCustody(batch="MINECO/ORE-1", buyer="AUTO", contract="K-9")],
        Forbidden,
        field="batch",
        rule="custody",
    )
    assert ledger.batch("MINECO/ORE-1").custodian_id == ids.actor_id("MINECO")


def test_export_by_non_custodian_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.mine, [export(batch="SEPCO/OX-1")], Forbidden, field="batch", rule="custody"
    )
    assert ledger.batch("SEPCO/OX-1").status is Status.ACTIVE
    assert drawn(ledger, "EX-1") == 0


def test_transfer_hands_custody_and_place_to_the_buyer(ledger, world):
    extract_ore(ledger, world)

    sell(ledger, world.mine, "ORE-1", "SEPCO", "S-SEP")

    batch = ledger.batch("MINECO/ORE-1")
    assert batch.custodian_id == ids.actor_id("SEPCO")
    assert batch.facility_id == ids.facility_id("S-SEP")
    assert batch.remaining_kg == D("1000")


def test_sale_to_the_holder_itself_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [c.TransferCustody(batch="ORE-1", buyer="MINECO", contract="K-9")],
        RuleBroken,
        field="buyer",
        rule="distinct-parties",
    )


def test_sale_into_a_plant_that_is_not_the_buyers_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [c.TransferCustody(batch="ORE-1", buyer="TRADER", contract="K-9", to_facility="S-SEP")],
        RuleBroken,
        field="to_facility",
        rule="facility-owner",
    )
    assert ledger.batch("MINECO/ORE-1").custodian_id == ids.actor_id("MINECO")


# --- never take more than a batch has -----------------------------------------------------


def test_transformation_taking_more_than_the_batch_has_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")], take="1000.000001")],
        RuleBroken,
        field="inputs[0].mass_kg",
        rule="mass-available",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_split_taking_more_than_the_batch_has_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [c.Split(batch="ORE-1", parts=[("ORE-1-A", D("600")), ("ORE-1-B", D("400.000001"))])],
        RuleBroken,
        field="parts",
        rule="mass-available",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_merge_taking_more_than_a_batch_has_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, "ORE-1")
    extract_ore(ledger, world, "ORE-2")

    assert_refused(
        world.mine,
        [c.Merge(lot_code="ORE-M", inputs=[("ORE-1", D("1000")), ("ORE-2", D("1000.000001"))])],
        RuleBroken,
        field="inputs[1].mass_kg",
        rule="mass-available",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")
    assert remaining(ledger, "MINECO/ORE-2") == D("1000")


def test_split_taking_everything_leaves_the_parent_consumed(ledger, world):
    extract_ore(ledger, world)

    ledger.execute(
        world.mine,
        [c.Split(batch="ORE-1", parts=[("ORE-1-A", D("600")), ("ORE-1-B", D("400"))])],
    )

    parent = ledger.batch("MINECO/ORE-1")
    assert (parent.remaining_kg, parent.status) == (0, Status.CONSUMED)
    assert remaining(ledger, "MINECO/ORE-1-A") + remaining(ledger, "MINECO/ORE-1-B") == 1000


def test_merge_blends_what_it_takes_into_one_batch(ledger, world):
    extract_ore(ledger, world, "ORE-1")
    extract_ore(ledger, world, "ORE-2")

    ledger.execute(
        world.mine,
        [c.Merge(lot_code="ORE-M", inputs=[("ORE-1", D("300")), ("ORE-2", D("1000"))])],
    )

    merged = ledger.batch("MINECO/ORE-M")
    assert (merged.initial_kg, merged.composition) == (D("1300"), ORE)
    assert remaining(ledger, "MINECO/ORE-1") == D("700")
    assert ledger.batch("MINECO/ORE-2").status is Status.CONSUMED


# --- mass balance ----------------------------------------------------------------------------
# 1000 kg of ore carry 40 kg Nd; the default tolerance of beneficiation is 0.5 %, so its
# outputs may carry up to 40.2 kg Nd and weigh up to 1005 kg in total.


def test_output_element_mass_just_inside_the_tolerance_is_accepted(ledger, world):
    extract_ore(ledger, world)

    ledger.execute(world.mine, [beneficiation([concentrate("100", "0.402")])])

    assert remaining(ledger, "MINECO/ORE-1") == 0
    assert ledger.batch("MINECO/CON-1").composition == {"Nd": D("0.402")}


def test_output_element_mass_just_outside_the_tolerance_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.402000001")])],
        RuleBroken,
        field="outputs.composition.Nd",
        rule="mass-balance",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_output_element_mass_is_summed_over_all_outputs(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("50", "0.402"), concentrate("50", "0.40200001", "CON-2")])],
        RuleBroken,
        field="outputs.composition.Nd",
        rule="mass-balance",
    )


def test_output_element_absent_from_the_inputs_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [
            beneficiation(
                [OutputSpec("CON-1", "concentrate", D("100"), {"Nd": D("0.3"), "Tb": D("0.001")})]
            )
        ],
        RuleBroken,
        field="outputs.composition.Tb",
        rule="mass-balance",
    )


def test_output_total_mass_just_inside_the_tolerance_is_accepted(ledger, world):
    extract_ore(ledger, world)

    ledger.execute(world.mine, [beneficiation([concentrate("1005", "0.01")])])

    assert ledger.batch("MINECO/CON-1").initial_kg == D("1005")


def test_output_total_mass_just_outside_the_tolerance_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("1005.000001", "0.01")])],
        RuleBroken,
        field="outputs",
        rule="mass-balance",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_declared_tolerance_of_two_percent_widens_the_allowance(ledger, world):
    extract_ore(ledger, world)

    ledger.execute(world.mine, [beneficiation([concentrate("100", "0.408")], tolerance="0.02")])

    assert ledger.batch("MINECO/CON-1").composition == {"Nd": D("0.408")}


def test_declared_tolerance_above_two_percent_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")], tolerance="0.020000001")],
        InvalidInput,
        field="tolerance",
        rule="tolerance-bounded",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_untraced_input_carrying_rare_earths_is_refused(ledger, world, assert_refused):
    collect_scrap(ledger, world)

    assert_refused(
        world.alloyer,
        [alloying([UntracedInput("neodymium", D("10"), {"Nd": D("1")})])],
        RuleBroken,
        field="untraced_inputs[0].composition",
        rule="rare-earths-traced",
    )
    assert remaining(ledger, "ALLOYCO/SCR-1") == D("100")


def test_untraced_iron_and_boron_are_allowed_in_alloying(ledger, world):
    collect_scrap(ledger, world)

    ledger.execute(
        world.alloyer,
        [
            alloying(
                [
                    UntracedInput("iron", D("200"), {"Fe": D("1")}),
                    UntracedInput("ferroboron", D("3"), {"B": D("1")}),
                ]
            )
        ],
    )

    assert ledger.batch("ALLOYCO/AL-1").initial_kg == D("300")
    assert remaining(ledger, "ALLOYCO/SCR-1") == 0


def test_untraced_iron_must_be_declared_to_balance_alloying(ledger, world, assert_refused):
    collect_scrap(ledger, world)

    assert_refused(
        world.alloyer,
        [alloying([UntracedInput("ferroboron", D("3"), {"B": D("1")})])],
        RuleBroken,
        field="outputs",
        rule="mass-balance",
    )


# --- process rules -------------------------------------------------------------------------


def test_process_given_the_wrong_input_material_is_refused(ledger, world, assert_refused):
    collect_scrap(ledger, world, facility="A-MAG")

    assert_refused(
        world.alloyer,
        [
            c.Transform(
                facility="A-MAG",
                process="magnet_making",
                reference="MAG-1",
                inputs=[("SCR-1", D("100"))],
                outputs=[OutputSpec("MAG-1", "magnet", D("80"), {"Nd": D("0.3")})],
            )
        ],
        RuleBroken,
        field="inputs[0].batch",
        rule="process-input",
    )
    assert remaining(ledger, "ALLOYCO/SCR-1") == D("100")


def test_process_making_the_wrong_output_material_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([OutputSpec("OX-1", "oxide", D("40"), {"Nd": D("0.8")})])],
        RuleBroken,
        field="outputs[0].material",
        rule="process-output",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_process_at_the_wrong_kind_of_facility_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [
            c.Transform(
                facility="M-PIT",
                process="separation",
                reference="SEP-1",
                inputs=[("ORE-1", D("1000"))],
                outputs=[OutputSpec("OX-1", "oxide", D("40"), NDPR_OXIDE)],
            )
        ],
        RuleBroken,
        field="facility",
        rule="facility-kind",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_ore_extracted_outside_a_mine_is_refused(world, assert_refused):
    assert_refused(
        world.separator,
        [
            c.ExtractOre(
                facility="S-SEP", quota="MQ-1", lot_code="ORE-1", mass_kg=D(1), composition=ORE
            )
        ],
        RuleBroken,
        field="facility",
        rule="facility-kind",
    )


def test_step_at_another_actors_facility_is_refused(ledger, world, assert_refused):
    collect_scrap(ledger, world)

    assert_refused(
        world.alloyer,
        [alloying([UntracedInput("iron", D("203"))], facility="S-MET")],
        Forbidden,
        field="facility",
        rule="facility-owner",
    )


def test_unknown_process_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [
            c.Transform(
                facility="M-PIT",
                process="alchemy",
                reference="X-1",
                inputs=[("ORE-1", D("1"))],
                outputs=[concentrate("1", "0.01")],
            )
        ],
        InvalidInput,
        field="process",
        rule="process",
    )


# --- co-location -----------------------------------------------------------------------------


def test_transformation_input_at_another_facility_is_refused(ledger, world, assert_refused):
    collect_scrap(ledger, world, facility="A-MAG")

    assert_refused(
        world.alloyer,
        [alloying([UntracedInput("iron", D("203"), {"Fe": D("1")})])],
        RuleBroken,
        field="inputs[0].batch",
        rule="co-located",
    )
    assert remaining(ledger, "ALLOYCO/SCR-1") == D("100")


def test_merge_of_batches_at_different_facilities_is_refused(ledger, world, assert_refused):
    collect_scrap(ledger, world, "SCR-1", facility="A-ALLOY")
    collect_scrap(ledger, world, "SCR-2", facility="A-MAG")

    assert_refused(
        world.alloyer,
        [c.Merge(lot_code="SCR-M", inputs=[("SCR-1", D("100")), ("SCR-2", D("100"))])],
        RuleBroken,
        field="inputs[1].batch",
        rule="co-located",
    )
    assert remaining(ledger, "ALLOYCO/SCR-1") == D("100")


def test_merge_of_different_materials_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world, "OX-1")
    ore_at_separation_plant(ledger, world, "ORE-2")

    assert_refused(
        world.separator,
        [c.Merge(lot_code="MIX-1", inputs=[("OX-1", D("50")), ("MINECO/ORE-2", D("100"))])],
        RuleBroken,
        field="inputs[1].batch",
        rule="same-material",
    )
    assert remaining(ledger, "SEPCO/OX-1") == D("50")


# --- mining quota -----------------------------------------------------------------------------


def test_extraction_draws_its_reo_from_the_mining_quota(ledger, world):
    extract_ore(ledger, world)

    assert drawn(ledger, "MQ-1") == ORE_REO_PER_1000_KG
    assert ledger.batch("MINECO/ORE-1").origin["licence_id"] == ids.licence_id("MQ-1")


def test_extraction_drawing_exactly_the_quota_remaining_is_accepted(ledger, world, admin):
    ledger.execute(
        admin,
        [c.IssueLicence("MQ-2", "mining_quota", "MINECO", ORE_REO_PER_1000_KG, *year_2026())],
    )

    ledger.execute(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT", quota="MQ-2", lot_code="ORE-1", mass_kg=D(1000), composition=ORE
            )
        ],
    )

    assert ledger.licence_by_number("MQ-2").remaining_kg == 0


def test_extraction_beyond_the_quota_remaining_is_refused(ledger, world, admin, assert_refused):
    ledger.execute(
        admin,
        [
            c.IssueLicence(
                "MQ-2", "mining_quota", "MINECO", ORE_REO_PER_1000_KG - D("0.000001"), *year_2026()
            )
        ],
    )

    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT", quota="MQ-2", lot_code="ORE-1", mass_kg=D(1000), composition=ORE
            )
        ],
        RuleBroken,
        field="quota",
        rule="licence-remaining",
    )
    assert drawn(ledger, "MQ-2") == 0


def test_quota_the_size_of_a_state_groups_annual_quota_can_be_issued(ledger, world, admin):
    ledger.execute(
        admin,
        [c.IssueLicence("MQ-BIG", "mining_quota", "MINECO", D("184000000"), *year_2026())],
    )

    assert ledger.licence_by_number("MQ-BIG").remaining_kg == D("184000000")


def test_extraction_outside_the_quota_validity_is_refused(ledger, world, assert_refused):
    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1000),
                composition=ORE,
                occurred_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
            )
        ],
        RuleBroken,
        field="quota",
        rule="licence-validity",
    )
    assert drawn(ledger, "MQ-1") == 0


def test_extraction_under_another_actors_quota_is_refused(ledger, world, admin, assert_refused):
    ledger.execute(
        admin, [c.IssueLicence("MQ-T", "mining_quota", "TRADER", D("1000"), *year_2026())]
    )

    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT", quota="MQ-T", lot_code="ORE-1", mass_kg=D(1), composition=ORE
            )
        ],
        Forbidden,
        field="quota",
        rule="licence-holder",
    )
    assert drawn(ledger, "MQ-T") == 0


def test_extraction_under_a_separation_quota_is_refused(ledger, world, admin, assert_refused):
    ledger.execute(
        admin, [c.IssueLicence("SQ-M", "separation_quota", "MINECO", D("1000"), *year_2026())]
    )

    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT", quota="SQ-M", lot_code="ORE-1", mass_kg=D(1), composition=ORE
            )
        ],
        RuleBroken,
        field="quota",
        rule="licence-kind",
    )


def test_ore_without_rare_earth_content_is_refused(world, assert_refused):
    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1),
                composition={"Fe": D("0.5")},
            )
        ],
        InvalidInput,
        field="composition",
        rule="rare-earth-content",
    )


# --- separation quota ------------------------------------------------------------------------


def test_separation_draws_the_reo_of_its_outputs_from_the_quota(ledger, world):
    make_oxide(ledger, world, kg="50")

    assert drawn(ledger, "SQ-1") == reo_kg(D("50"), NDPR_OXIDE) == D("49.9273")


def test_separation_without_a_quota_is_refused(ledger, world, assert_refused):
    ore_at_separation_plant(ledger, world)

    assert_refused(
        world.separator,
        [separation(quota=None)],
        InvalidInput,
        field="quota",
        rule="required",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_separation_beyond_the_quota_remaining_is_refused(ledger, world, admin, assert_refused):
    ore_at_separation_plant(ledger, world)
    ledger.execute(
        admin,
        [c.IssueLicence("SQ-2", "separation_quota", "SEPCO", D("49.927299"), *year_2026())],
    )

    assert_refused(
        world.separator,
        [separation(quota="SQ-2")],
        RuleBroken,
        field="quota",
        rule="licence-remaining",
    )
    assert drawn(ledger, "SQ-2") == 0
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_quota_named_on_a_step_that_draws_none_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")], quota="MQ-1")],
        InvalidInput,
        field="quota",
        rule="quota-not-drawn",
    )
    assert drawn(ledger, "MQ-1") == ORE_REO_PER_1000_KG


# --- export licence -------------------------------------------------------------------------


def test_export_puts_the_batch_in_transit_and_draws_the_licence(ledger, world):
    make_oxide(ledger, world, kg="50")

    ledger.execute(world.separator, [export()])

    batch = ledger.batch("SEPCO/OX-1")
    assert batch.status is Status.IN_TRANSIT
    assert batch.export["consignee_id"] == ids.actor_id("AUTO")
    assert drawn(ledger, "EX-1") == D("50")


def test_export_under_an_expired_licence_is_refused(ledger, world, admin, assert_refused):
    ledger.execute(
        admin,
        [
            export_licence(
                "EX-OLD",
                valid=(datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
            )
        ],
    )
    make_oxide(ledger, world, at=datetime(2026, 2, 1, tzinfo=UTC))

    assert_refused(
        world.separator,
        [export(licence="EX-OLD", occurred_at=datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))],
        RuleBroken,
        field="licence",
        rule="licence-validity",
    )
    assert drawn(ledger, "EX-OLD") == 0
    assert ledger.batch("SEPCO/OX-1").status is Status.ACTIVE


def test_export_beyond_the_licence_remaining_is_refused(ledger, world, admin, assert_refused):
    ledger.execute(admin, [export_licence("EX-2", D("49.999999"))])
    make_oxide(ledger, world, kg="50")

    assert_refused(
        world.separator,
        [export(licence="EX-2")],
        RuleBroken,
        field="licence",
        rule="licence-remaining",
    )
    assert drawn(ledger, "EX-2") == 0
    assert ledger.batch("SEPCO/OX-1").status is Status.ACTIVE


def test_export_drawing_exactly_the_licence_remaining_is_accepted(ledger, world, admin):
    ledger.execute(admin, [export_licence("EX-2", D("50"))])
    make_oxide(ledger, world, kg="50")

    ledger.execute(world.separator, [export(licence="EX-2")])

    assert ledger.licence_by_number("EX-2").remaining_kg == 0


def test_export_overdrawing_what_earlier_shipments_left_is_refused(
    ledger, world, admin, assert_refused
):
    ledger.execute(admin, [export_licence("EX-2", D("99.999999"))])
    make_oxide(ledger, world, "OX-1", kg="50")
    make_oxide(ledger, world, "OX-2", kg="50")
    ledger.execute(world.separator, [export(batch="OX-1", licence="EX-2")])

    assert_refused(
        world.separator,
        [export(batch="OX-2", licence="EX-2")],
        RuleBroken,
        field="licence",
        rule="licence-remaining",
    )
    assert drawn(ledger, "EX-2") == D("50")


def test_export_to_another_destination_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [export(consignee="FRANCO", destination_country="FR", end_user="Franco SA")],
        RuleBroken,
        field="destination_country",
        rule="licence-destination",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_to_another_consignee_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [export(consignee="RIVAL")],
        RuleBroken,
        field="consignee",
        rule="licence-consignee",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_for_another_end_user_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [export(end_user="Rival AG")],
        RuleBroken,
        field="end_user",
        rule="licence-end-user",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_end_user_is_matched_ignoring_case_and_spaces(ledger, world):
    make_oxide(ledger, world)

    ledger.execute(world.separator, [export(end_user="  auto gmbh ")])

    assert drawn(ledger, "EX-1") == D("50")


def test_export_under_a_customs_code_not_for_the_material_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [export(customs_code="8505.11")],
        RuleBroken,
        field="customs_code",
        rule="customs-heading",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_of_goods_the_licence_does_not_cover_is_refused(ledger, world, assert_refused):
    ore_at_separation_plant(ledger, world)

    assert_refused(
        world.separator,
        [export(batch="MINECO/ORE-1", customs_code="2530.90")],
        RuleBroken,
        field="customs_code",
        rule="licence-item",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_to_a_consignee_registered_in_another_country_is_refused(
    ledger, world, assert_refused
):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [export(destination_country="FR")],
        RuleBroken,
        field="destination_country",
        rule="consignee-country",
    )
    assert drawn(ledger, "EX-1") == 0


def test_export_under_another_holders_licence_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)
    sell(ledger, world.separator, "OX-1", "TRADER", "T-WH")

    assert_refused(
        world.trader,
        [export(batch="SEPCO/OX-1")],
        Forbidden,
        field="licence",
        rule="licence-holder",
    )
    assert drawn(ledger, "EX-1") == 0
    assert ledger.batch("SEPCO/OX-1").status is Status.ACTIVE


# --- state: nothing moves a consumed, in-transit or quarantined batch ------------------------


def test_consumed_batch_cannot_be_sold(ledger, world, assert_refused):
    extract_ore(ledger, world)
    ledger.execute(world.mine, [c.Split(batch="ORE-1", parts=[("ORE-1-A", D("1000"))])])

    assert_refused(
        world.mine,
        [c.TransferCustody(batch="ORE-1", buyer="TRADER", contract="K-9", to_facility="T-WH")],
        Conflict,
        field="batch",
        rule="batch-consumed",
    )


def test_batch_in_transit_cannot_be_split(ledger, world, assert_refused):
    exported_oxide(ledger, world)

    assert_refused(
        world.separator,
        [c.Split(batch="OX-1", parts=[("OX-1-A", D("10"))])],
        Conflict,
        field="batch",
        rule="batch-in-transit",
    )
    assert remaining(ledger, "SEPCO/OX-1") == D("50")


def test_batch_in_transit_cannot_be_exported_again(ledger, world, assert_refused):
    exported_oxide(ledger, world)

    assert_refused(world.separator, [export()], Conflict, field="batch", rule="batch-in-transit")
    assert drawn(ledger, "EX-1") == D("50")


def test_quarantined_batch_cannot_be_transformed(ledger, world, assert_refused):
    extract_ore(ledger, world)
    ledger.execute(world.mine, [c.Quarantine(batch="ORE-1", reason="assay disputed")])

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")])],
        Conflict,
        field="inputs[0].batch",
        rule="batch-quarantined",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_quarantined_batch_cannot_be_sold(ledger, world, regulator, assert_refused):
    extract_ore(ledger, world)
    ledger.execute(regulator, [c.Quarantine(batch="MINECO/ORE-1", reason="illegal mining?")])

    assert_refused(
        world.mine,
        [c.TransferCustody(batch="ORE-1", buyer="TRADER", contract="K-9", to_facility="T-WH")],
        Conflict,
        field="batch",
        rule="batch-quarantined",
    )


def test_consumed_batch_cannot_be_quarantined(ledger, world, regulator, assert_refused):
    extract_ore(ledger, world)
    ledger.execute(world.mine, [c.Split(batch="ORE-1", parts=[("ORE-1-A", D("1000"))])])

    assert_refused(
        regulator,
        [c.Quarantine(batch="MINECO/ORE-1", reason="check")],
        Conflict,
        field="batch",
        rule="batch-consumed",
    )


# --- quarantine and release ---------------------------------------------------------------


def test_regulators_hold_cannot_be_released_by_the_custodian(
    ledger, world, regulator, assert_refused
):
    extract_ore(ledger, world)
    ledger.execute(regulator, [c.Quarantine(batch="MINECO/ORE-1", reason="illegal mining?")])

    assert_refused(
        world.mine,
        [c.Release(batch="ORE-1", reason="we say it is fine")],
        Forbidden,
        field="batch",
        rule="role",
    )
    assert ledger.batch("MINECO/ORE-1").status is Status.QUARANTINED


def test_regulators_hold_is_released_by_a_regulator(ledger, world, regulator):
    extract_ore(ledger, world)
    ledger.execute(regulator, [c.Quarantine(batch="MINECO/ORE-1", reason="illegal mining?")])

    ledger.execute(regulator, [c.Release(batch="MINECO/ORE-1", reason="permits in order")])

    assert ledger.batch("MINECO/ORE-1").status is Status.ACTIVE


def test_regulators_hold_is_released_by_an_admin(ledger, world, regulator, admin):
    extract_ore(ledger, world)
    ledger.execute(regulator, [c.Quarantine(batch="MINECO/ORE-1", reason="illegal mining?")])

    ledger.execute(admin, [c.Release(batch="MINECO/ORE-1", reason="permits in order")])

    assert ledger.batch("MINECO/ORE-1").status is Status.ACTIVE


def test_custodians_own_hold_is_released_by_the_custodian(ledger, world):
    extract_ore(ledger, world)
    ledger.execute(world.mine, [c.Quarantine(batch="ORE-1", reason="assay disputed")])

    ledger.execute(world.mine, [c.Release(batch="ORE-1", reason="re-assayed")])

    assert ledger.batch("MINECO/ORE-1").status is Status.ACTIVE


def test_quarantine_by_an_operator_who_does_not_hold_the_batch_is_refused(
    ledger, world, assert_refused
):
    extract_ore(ledger, world)

    assert_refused(
        world.trader,
        [c.Quarantine(batch="MINECO/ORE-1", reason="competitor")],
        Forbidden,
        field="batch",
        rule="custody",
    )


def test_release_of_a_hold_on_a_shipment_restores_it_in_transit(ledger, world, regulator):
    exported_oxide(ledger, world)
    ledger.execute(regulator, [c.Quarantine(batch="SEPCO/OX-1", reason="customs check")])

    ledger.execute(regulator, [c.Release(batch="SEPCO/OX-1", reason="cleared")])

    assert ledger.batch("SEPCO/OX-1").status is Status.IN_TRANSIT


# --- receipt ----------------------------------------------------------------------------------


def test_receipt_by_the_consignee_takes_custody_of_what_arrived(ledger, world):
    exported_oxide(ledger, world, kg="50")

    ledger.execute(
        world.auto,
        [c.ReceiveShipment(batch="SEPCO/OX-1", facility="D-PLANT", received_kg=D("49.5"))],
    )

    batch = ledger.batch("SEPCO/OX-1")
    assert batch.status is Status.ACTIVE
    assert batch.custodian_id == ids.actor_id("AUTO")
    assert batch.facility_id == ids.facility_id("D-PLANT")
    assert batch.remaining_kg == D("49.5")


def test_receipt_by_an_actor_other_than_the_consignee_is_refused(ledger, world, assert_refused):
    exported_oxide(ledger, world)

    assert_refused(
        world.rival,
        [c.ReceiveShipment(batch="SEPCO/OX-1", facility="R-PLANT")],
        Forbidden,
        field="batch",
        rule="consignee",
    )
    assert ledger.batch("SEPCO/OX-1").status is Status.IN_TRANSIT


def test_receipt_of_more_than_was_shipped_is_refused(ledger, world, assert_refused):
    exported_oxide(ledger, world, kg="50")

    assert_refused(
        world.auto,
        [c.ReceiveShipment(batch="SEPCO/OX-1", facility="D-PLANT", received_kg=D("50.000001"))],
        RuleBroken,
        field="received_kg",
        rule="mass-available",
    )
    assert ledger.batch("SEPCO/OX-1").status is Status.IN_TRANSIT


def test_receipt_of_a_batch_not_in_transit_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.auto,
        [c.ReceiveShipment(batch="SEPCO/OX-1", facility="D-PLANT")],
        Conflict,
        field="batch",
        rule="not-in-transit",
    )


def test_receipt_dated_before_the_shipment_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world, at=datetime(2026, 2, 1, tzinfo=UTC))
    ledger.execute(world.separator, [export(occurred_at=datetime(2026, 5, 1, tzinfo=UTC))])

    assert_refused(
        world.auto,
        [
            c.ReceiveShipment(
                batch="SEPCO/OX-1",
                facility="D-PLANT",
                occurred_at=datetime(2026, 4, 1, tzinfo=UTC),
            )
        ],
        RuleBroken,
        field="occurred_at",
        rule="chronology",
    )


# --- genealogy stays acyclic; lot codes are unique --------------------------------------------


def test_output_named_after_one_of_its_inputs_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [beneficiation([OutputSpec("ORE-1", "concentrate", D("100"), {"Nd": D("0.3")})])],
        Conflict,
        field="outputs[0].lot_code",
        rule="unique",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_merge_named_after_one_of_its_inputs_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, "ORE-1")
    extract_ore(ledger, world, "ORE-2")

    assert_refused(
        world.mine,
        [c.Merge(lot_code="ORE-2", inputs=[("ORE-1", D("10")), ("ORE-2", D("10"))])],
        Conflict,
        field="lot_code",
        rule="unique",
    )


def test_split_part_named_after_its_parent_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [c.Split(batch="ORE-1", parts=[("ORE-1", D("10"))])],
        Conflict,
        field="parts[0].lot_code",
        rule="unique",
    )


def test_second_batch_under_the_same_lot_code_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT", quota="MQ-1", lot_code="ORE-1", mass_kg=D(5), composition=ORE
            )
        ],
        Conflict,
        field="lot_code",
        rule="unique",
    )
    assert drawn(ledger, "MQ-1") == ORE_REO_PER_1000_KG
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_same_lot_code_twice_in_one_bulk_is_refused(ledger, world, assert_refused):
    ore = c.ExtractOre(
        facility="M-PIT", quota="MQ-1", lot_code="ORE-1", mass_kg=D(5), composition=ORE
    )

    assert_refused(
        world.mine, [ore, ore], Conflict, field="events[1].lot_code", rule="unique", bulk=True
    )
    assert drawn(ledger, "MQ-1") == 0


def test_second_transformation_under_the_same_reference_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)
    ledger.execute(world.mine, [beneficiation([concentrate("10", "0.3")], take="100")])

    assert_refused(
        world.mine,
        [beneficiation([concentrate("10", "0.3", lot="CON-2")], take="100")],
        Conflict,
        field="reference",
        rule="unique",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("900")


def test_same_lot_code_under_another_actor_is_another_batch(ledger, world):
    extract_ore(ledger, world, "LOT-7")

    collect_scrap(ledger, world, "LOT-7")

    assert ledger.batch("MINECO/LOT-7").id != ledger.batch("ALLOYCO/LOT-7").id


# --- chronology ----------------------------------------------------------------------------


def test_step_dated_before_its_input_batch_existed_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, at=world.now - timedelta(days=10))

    assert_refused(
        world.mine,
        [
            c.Split(
                batch="ORE-1",
                parts=[("ORE-1-A", D("10"))],
                occurred_at=world.now - timedelta(days=10, seconds=1),
            )
        ],
        RuleBroken,
        field="occurred_at",
        rule="chronology",
    )
    assert remaining(ledger, "MINECO/ORE-1") == D("1000")


def test_transformation_dated_before_its_input_existed_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, at=world.now - timedelta(days=10))

    assert_refused(
        world.mine,
        [beneficiation([concentrate("100", "0.3")], occurred_at=world.now - timedelta(days=11))],
        RuleBroken,
        field="occurred_at",
        rule="chronology",
    )


def test_step_dated_in_the_future_is_refused(ledger, world, assert_refused):
    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1000),
                composition=ORE,
                occurred_at=world.now + timedelta(minutes=5, microseconds=1),
            )
        ],
        InvalidInput,
        field="occurred_at",
        rule="not-in-future",
    )
    assert drawn(ledger, "MQ-1") == 0


def test_step_dated_within_the_allowed_clock_skew_is_accepted(ledger, world):
    extract_ore(ledger, world, at=world.now + timedelta(minutes=5))

    assert ledger.batch("MINECO/ORE-1").created_at == world.now + timedelta(minutes=5)


def test_step_dated_without_a_time_zone_is_refused(world, assert_refused):
    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1000),
                composition=ORE,
                occurred_at=datetime(2026, 5, 1),
            )
        ],
        InvalidInput,
        field="occurred_at",
        rule="timezone",
    )


def test_quarantine_dated_before_the_batch_existed_is_refused(
    ledger, world, regulator, assert_refused
):
    extract_ore(ledger, world, at=datetime(2026, 5, 1, tzinfo=UTC))

    assert_refused(
        regulator,
        [
            c.Quarantine(
                batch="MINECO/ORE-1",
                reason="check",
                occurred_at=datetime(2026, 4, 30, tzinfo=UTC),
            )
        ],
        RuleBroken,
        field="occurred_at",
        rule="chronology",
    )


def test_quarantine_dated_in_the_future_is_refused(ledger, world, regulator, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        regulator,
        [
            c.Quarantine(
                batch="MINECO/ORE-1", reason="check", occurred_at=world.now + timedelta(hours=1)
            )
        ],
        InvalidInput,
        field="occurred_at",
        rule="not-in-future",
    )


# --- who may report for whom ------------------------------------------------------------------


def test_operator_acting_for_another_actor_is_refused(world, assert_refused):
    assert_refused(
        world.mine,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1000),
                composition=ORE,
                actor="SEPCO",
            )
        ],
        Forbidden,
        field="actor",
        rule="ownership",
    )


def test_admin_acting_for_an_actor_records_the_step_as_that_actors(ledger, world, admin):
    ledger.execute(
        admin,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1000),
                composition=ORE,
                actor="MINECO",
            )
        ],
    )

    batch = ledger.batch("MINECO/ORE-1")
    assert batch.custodian_id == batch.reporter_id == ids.actor_id("MINECO")
    created = next(iter(ledger.events.get(batch.id)))
    assert created.reported_by == "admin"
    assert drawn(ledger, "MQ-1") == ORE_REO_PER_1000_KG


def test_admin_step_naming_no_actor_is_refused(world, admin, assert_refused):
    assert_refused(
        admin,
        [
            c.ExtractOre(
                facility="M-PIT", quota="MQ-1", lot_code="ORE-1", mass_kg=D(1), composition=ORE
            )
        ],
        InvalidInput,
        field="actor",
        rule="required",
    )


def test_regulator_cannot_report_a_step_for_an_actor(world, regulator, assert_refused):
    assert_refused(
        regulator,
        [
            c.ExtractOre(
                facility="M-PIT",
                quota="MQ-1",
                lot_code="ORE-1",
                mass_kg=D(1),
                composition=ORE,
                actor="MINECO",
            )
        ],
        Forbidden,
        field="actor",
        rule="role",
    )


def test_holder_moves_a_batch_between_its_own_facilities(ledger, world):
    make_oxide(ledger, world)

    ledger.execute(world.separator, [c.MoveBatch(batch="OX-1", to_facility="S-MET")])

    assert ledger.batch("SEPCO/OX-1").facility_id == ids.facility_id("S-MET")


def test_move_to_another_actors_plant_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)

    assert_refused(
        world.separator,
        [c.MoveBatch(batch="OX-1", to_facility="A-ALLOY")],
        Forbidden,
        field="to_facility",
        rule="facility-owner",
    )
    assert ledger.batch("SEPCO/OX-1").facility_id == ids.facility_id("S-SEP")


def test_move_of_a_batch_in_transit_is_refused(ledger, world, assert_refused):
    make_oxide(ledger, world)
    ledger.execute(world.separator, [export(batch="OX-1")])

    assert_refused(
        world.separator,
        [c.MoveBatch(batch="OX-1", to_facility="S-MET")],
        Conflict,
        field="batch",
        rule="batch-in-transit",
    )


def test_sale_dated_before_the_sellers_own_purchase_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world, at=world.now - timedelta(days=3))
    ledger.execute(
        world.mine,
        [
            c.TransferCustody(
                batch="ORE-1",
                buyer="TRADER",
                contract="K-1",
                to_facility="T-WH",
                occurred_at=world.now - timedelta(days=1),
            )
        ],
    )

    assert_refused(
        world.trader,
        [
            c.TransferCustody(
                batch="MINECO/ORE-1",
                buyer="SEPCO",
                contract="K-2",
                occurred_at=world.now - timedelta(days=2),
            )
        ],
        RuleBroken,
        field="occurred_at",
        rule="chronology",
    )


def test_receipt_at_a_facility_outside_the_destination_country_is_refused(
    ledger, world, admin, assert_refused
):
    exported_oxide(ledger, world)
    ledger.execute(
        admin, [c.RegisterFacility("D-DEPOT-CN", "AUTO depot in China", "warehouse", "AUTO", "CN")]
    )

    assert_refused(
        world.auto,
        [c.ReceiveShipment(batch="SEPCO/OX-1", facility="D-DEPOT-CN")],
        RuleBroken,
        field="facility",
        rule="destination-country",
    )
    assert ledger.batch("SEPCO/OX-1").status is Status.IN_TRANSIT


def test_sale_at_a_price_above_a_hundred_million_is_recorded(ledger, world):
    extract_ore(ledger, world)

    ledger.execute(
        world.mine,
        [
            c.TransferCustody(
                batch="ORE-1",
                buyer="TRADER",
                contract="K-1",
                price=D("150000000.00"),
                currency="CNY",
            )
        ],
    )

    assert ledger.batch("MINECO/ORE-1").custodian_id == ids.actor_id("TRADER")


def test_price_with_fractions_of_a_cent_is_refused(ledger, world, assert_refused):
    extract_ore(ledger, world)

    assert_refused(
        world.mine,
        [
            c.TransferCustody(
                batch="ORE-1", buyer="TRADER", contract="K-1", price=D("10.001"), currency="USD"
            )
        ],
        InvalidInput,
        field="price",
        rule="price-precision",
    )
