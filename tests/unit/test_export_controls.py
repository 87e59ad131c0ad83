"""Which goods need an export licence (MOFCOM 2025), decided from material and
composition."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from lodestone.domain.values import ExportControls, Material

RULE = ExportControls()


@pytest.mark.parametrize(
    ("material", "composition", "carried"),
    [
        (Material.MAGNET, {"Nd": D("0.29"), "Fe": D("0.7")}, []),  # plain NdFeB
        (Material.MAGNET, {"Nd": D("0.27"), "Dy": D("0.03"), "Fe": D("0.69")}, ["Dy"]),
        (Material.MAGNET, {"Nd": D("0.28"), "Tb": D("0.01"), "Fe": D("0.7")}, ["Tb"]),
        (Material.MAGNET, {"Sm": D("0.25"), "Co": D("0.5")}, ["Sm"]),  # SmCo
        (Material.MAGNET, {"Nd": D("0.28"), "Gd": D("0.01"), "Fe": D("0.7")}, []),
        (Material.OXIDE, {"La": D("0.85")}, []),
        (Material.OXIDE, {"Ce": D("0.8")}, []),
        (Material.OXIDE, {"Y": D("0.78")}, ["Y"]),
        (Material.METAL, {"Dy": D("0.999")}, ["Dy"]),
        (Material.ALLOY, {"Nd": D("0.3"), "Gd": D("0.01"), "Fe": D("0.69")}, ["Gd"]),
        (Material.ORE, {"La": D("0.02"), "Ce": D("0.03")}, []),
    ],
)
def test_goods_are_controlled_by_the_controlled_elements_they_carry(
    material: Material, composition: dict[str, D], carried: list[str]
) -> None:
    assert RULE.carried(material, composition) == carried


def test_a_trace_below_the_threshold_does_not_make_goods_controlled() -> None:
    assert RULE.carried(Material.OXIDE, {"La": D("0.85"), "Dy": D("0.00005")}) == []


def test_the_threshold_is_configurable() -> None:
    strict = ExportControls(threshold=D("0"))

    assert strict.carried(Material.OXIDE, {"La": D("0.85"), "Dy": D("0.00005")}) == ["Dy"]
