"""Value rules: exact kilograms, mass fractions, compositions, REO and blends."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from lodestone.domain.refusals import InvalidInput
from lodestone.domain.values import (
    MAX_BATCH_KG,
    OXIDE_FACTOR,
    blend,
    composition,
    element_masses,
    fraction,
    mass,
    rare_earth_fraction,
    reo_kg,
)


def refusal_of(call, *args, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value


# --- exact masses -----------------------------------------------------------------------


def test_mass_given_as_float_is_refused():
    refusal = refusal_of(mass, 0.1, "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "exact-decimal")


def test_mass_given_as_decimal_string_is_kept_exactly():
    assert mass("0.1", "mass_kg") == D("0.1")
    assert mass("0.1", "mass_kg") + mass("0.2", "mass_kg") == D("0.3")


def test_mass_given_as_integer_is_accepted():
    assert mass(1200, "mass_kg") == D(1200)


def test_mass_at_milligram_precision_is_accepted():
    assert mass("0.000001", "mass_kg") == D("0.000001")


def test_mass_finer_than_a_milligram_is_refused():
    refusal = refusal_of(mass, "0.0000001", "parts[0].mass_kg")
    assert (refusal.field, refusal.rule) == ("parts[0].mass_kg", "mass-precision")


def test_zero_mass_is_refused():
    refusal = refusal_of(mass, D(0), "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "mass-positive")


def test_zero_is_allowed_where_asked_for():
    assert mass("0", "price", allow_zero=True) == D(0)


def test_negative_mass_is_refused():
    refusal = refusal_of(mass, "-1", "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "mass-positive")


def test_mass_at_the_upper_bound_is_accepted():
    assert mass(MAX_BATCH_KG, "mass_kg") == D("100000000")


def test_mass_above_the_upper_bound_is_refused():
    refusal = refusal_of(mass, "100000000.000001", "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "mass-bounded")


@pytest.mark.parametrize("value", ["abc", "", "1,5", None, True])
def test_mass_that_is_not_a_number_is_refused(value):
    refusal = refusal_of(mass, value, "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "decimal")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", D("sNaN")])
def test_mass_that_is_not_finite_is_refused(value):
    refusal = refusal_of(mass, value, "mass_kg")
    assert (refusal.field, refusal.rule) == ("mass_kg", "decimal")


# --- fractions and compositions ---------------------------------------------------------


def test_fraction_given_as_float_is_refused():
    refusal = refusal_of(fraction, 0.5, "tolerance")
    assert (refusal.field, refusal.rule) == ("tolerance", "exact-decimal")


@pytest.mark.parametrize("value", ["0", "1", "0.000000001"])
def test_fraction_within_range_and_precision_is_accepted(value):
    assert fraction(value, "share") == D(value)


@pytest.mark.parametrize("value", ["-0.000000001", "1.000000001", "2"])
def test_fraction_out_of_range_is_refused(value):
    refusal = refusal_of(fraction, value, "share")
    assert (refusal.field, refusal.rule) == ("share", "fraction-range")


def test_fraction_finer_than_nine_places_is_refused():
    refusal = refusal_of(fraction, "0.0000000001", "share")
    assert (refusal.field, refusal.rule) == ("share", "fraction-precision")


def test_composition_keeps_exact_shares_and_drops_zero_ones():
    shares = composition({"Nd": "0.3", "Dy": D("0.02"), "Tb": "0"}, "composition")
    assert shares == {"Nd": D("0.3"), "Dy": D("0.02")}


def test_composition_may_sum_to_less_than_one():
    assert composition({"Nd": "0.04"}, "composition") == {"Nd": D("0.04")}


def test_composition_summing_to_exactly_one_is_accepted():
    assert sum(composition({"Nd": "0.7", "O": "0.3"}, "composition").values()) == 1


def test_composition_with_unknown_element_is_refused():
    refusal = refusal_of(composition, {"Nd": "0.3", "Xx": "0.1"}, "outputs[0].composition")
    assert (refusal.field, refusal.rule) == ("outputs[0].composition.Xx", "element-symbol")


def test_composition_element_symbols_are_case_sensitive():
    refusal = refusal_of(composition, {"ND": "0.3"}, "composition")
    assert (refusal.field, refusal.rule) == ("composition.ND", "element-symbol")


def test_composition_summing_to_more_than_one_is_refused():
    refusal = refusal_of(composition, {"Nd": "0.6", "Fe": "0.400000001"}, "composition")
    assert (refusal.field, refusal.rule) == ("composition", "composition-sum")


@pytest.mark.parametrize("share", ["-0.1", "1.1"])
def test_composition_share_out_of_range_is_refused(share):
    refusal = refusal_of(composition, {"Dy": share}, "composition")
    assert (refusal.field, refusal.rule) == ("composition.Dy", "fraction-range")


def test_composition_share_given_as_float_is_refused():
    refusal = refusal_of(composition, {"Dy": 0.02}, "composition")
    assert (refusal.field, refusal.rule) == ("composition.Dy", "exact-decimal")


@pytest.mark.parametrize("value", [{}, {"Nd": "0"}])
def test_composition_naming_nothing_above_zero_is_refused(value):
    refusal = refusal_of(composition, value, "composition")
    assert (refusal.field, refusal.rule) == ("composition", "composition-required")


def test_element_masses_are_exact_products():
    masses = element_masses(D("1234.567891"), {"Nd": D("0.123456789"), "Fe": D("0.6")})
    assert masses == {"Nd": D("152.415787625361999"), "Fe": D("740.7407346")}


def test_rare_earth_fraction_counts_only_rare_earths():
    assert rare_earth_fraction({"Nd": D("0.29"), "Dy": D("0.02"), "Fe": D("0.68")}) == D("0.31")


# --- REO ----------------------------------------------------------------------------------


def test_reo_converts_each_rare_earth_by_its_oxide_factor():
    assert reo_kg(D("1000"), {"Nd": D("0.5")}) == D("583.200000")
    assert reo_kg(D("1000"), {"Dy": D("0.1"), "Tb": D("0.1")}) == D("232.390000")


def test_reo_ignores_elements_that_are_not_rare_earths():
    assert reo_kg(D("1000"), {"Nd": D("0.04"), "Fe": D("0.5"), "O": D("0.1")}) == D("46.656")


def test_reo_of_material_without_rare_earths_is_zero():
    assert reo_kg(D("1000"), {"Fe": D("0.9")}) == 0


def test_reo_is_rounded_to_milligrams_half_even():
    # 0.000001 kg Nd * 1.1664 = 0.0000011664 kg REO -> 0.000001
    assert reo_kg(D("0.000001"), {"Nd": D("1")}) == D("0.000001")
    # 0.0000025 rounds half to even -> 0.000002
    assert reo_kg(D("0.000005"), {"Ce": D("0.407")}) == D("0.000002")


def test_every_rare_earth_has_an_oxide_factor_above_one():
    assert all(factor > 1 for factor in OXIDE_FACTOR.values())
    assert len(OXIDE_FACTOR) == 17


# --- blends -------------------------------------------------------------------------------


def test_blend_is_the_mass_weighted_composition():
    merged = blend([(D("100"), {"Nd": D("0.3")}), (D("300"), {"Nd": D("0.1"), "Dy": D("0.04")})])
    assert merged == {"Dy": D("0.03"), "Nd": D("0.15")}


def test_blend_rounds_shares_down_never_up():
    # 1 kg at 0.1 Nd + 2 kg at 0.2 Nd = 0.5 kg Nd in 3 kg: 0.1666... -> 0.166666666
    merged = blend([(D("1"), {"Nd": D("0.1")}), (D("2"), {"Nd": D("0.2")})])
    assert merged == {"Nd": D("0.166666666")}


def test_blend_never_claims_more_of_an_element_than_its_parts_held():
    parts = [
        (D("0.000007"), {"Dy": D("0.999999999")}),
        (D("3.000001"), {"Dy": D("0.333333334"), "Nd": D("0.2")}),
        (D("11"), {"Nd": D("0.7"), "Tb": D("0.000000001")}),
    ]
    merged = blend(parts)
    total = sum(kg for kg, _ in parts)
    for element, share in merged.items():
        held = sum(kg * comp.get(element, 0) for kg, comp in parts)
        assert total * share <= held
