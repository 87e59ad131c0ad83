"""Quick proof the fixtures work; the per-event suites build on them."""

from tests.api.conftest import World


def test_operator_records_ore_under_its_quota(world: World) -> None:
    answer = world.extract("ORE-1", "1000")

    assert answer["batch"] == "MINECO/ORE-1"
    assert world.get("/v1/batches/MINECO/ORE-1").json()["remaining_kg"] == "1000"
