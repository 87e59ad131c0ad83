"""Read-your-writes on request: every write answers ``Lodestone-Position``; a read sent
with ``wait_for`` (or ``If-Position``) answers once the read models have that position,
or 503 with Retry-After when they do not within the bounded wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lodestone.gateway import deps
from lodestone.gateway.runtime import Runtime
from tests.api.conftest import ORE, PROBLEM, World

UPSTREAM = "/v1/batches/MINECO/{lot}/upstream"


def extract(world: World, lot: str, **headers: str) -> tuple[int, object]:
    body = {"facility": "MINE-1", "quota": "MQ-1", "lot_code": lot, "mass_kg": "10"}
    response = world.event("ore-extracted", body | {"composition": ORE}, **headers)
    assert response.status_code == 201, response.text
    return int(response.headers["Lodestone-Position"]), response.json()


def runtime(world: World) -> Runtime:
    found: Runtime = world.client.app.state.runtime  # type: ignore[attr-defined]
    return found


@pytest.fixture
def genealogy_held(world: World) -> Iterator[None]:
    """The genealogy projector kept from applying anything (its own lock held), so its
    read model stays where it is."""
    lock = runtime(world).projectors["genealogy"]._lock
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def test_a_write_answer_names_the_store_position_that_holds_it(world: World) -> None:
    position, _ = extract(world, "POS-1")

    assert position == world.recorded()


def test_a_replayed_write_names_a_position_covering_its_first_answer(world: World) -> None:
    first, answer = extract(world, "POS-2", **{"Idempotency-Key": "pos-2"})
    extract(world, "POS-3")

    again, replayed = extract(world, "POS-2", **{"Idempotency-Key": "pos-2"})

    assert replayed == answer
    assert again >= first


def test_a_read_waiting_for_a_write_answers_once_every_read_model_has_it(world: World) -> None:
    position, _ = extract(world, "WAIT-1")

    response = world.get(UPSTREAM.format(lot="WAIT-1") + f"?wait_for={position}")

    assert response.status_code == 200, response.text
    assert all(p.position() >= position for p in runtime(world).projectors.values())


def test_the_position_may_come_as_an_if_position_header(world: World) -> None:
    position, _ = extract(world, "WAIT-2")

    response = world.client.get(
        UPSTREAM.format(lot="WAIT-2"),
        headers={**world.headers("mine"), "If-Position": str(position)},
    )

    assert response.status_code == 200, response.text


def test_a_read_waiting_for_a_position_no_write_reached_is_refused_naming_the_field(
    world: World,
) -> None:
    response = world.get(f"/v1/inventory?wait_for={world.recorded() + 1000}")

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert (response.json()["field"], response.json()["rule"]) == ("wait_for", "position-recorded")


def test_a_read_whose_read_model_stays_behind_answers_503_with_retry_after(
    world: World, genealogy_held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "READ_WAIT_SECONDS", 0.3)
    position, _ = extract(world, "BEHIND-1")

    response = world.get(UPSTREAM.format(lot="BEHIND-1") + f"?wait_for={position}")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["rule"] == "position-not-reached"
    assert response.headers["Retry-After"] == "1"
