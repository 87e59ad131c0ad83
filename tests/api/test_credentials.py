"""API keys expire and rotate (issue 12): a new key for a principal, the old one valid
for a grace period, then refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import World, bearer


def _issue(world: World, **extra: object) -> dict:
    body = {"role": "analyst", "label": "dashboards"} | extra
    return world.register("/v1/credentials", body)


def _me(world: World, key: str) -> int:
    return world.client.get("/v1/me", headers=bearer(key)).status_code


def test_a_key_issued_to_expire_works_until_then(world: World) -> None:
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    issued = _issue(world, expires_at=until)

    assert issued["expires_at"] == until
    assert _me(world, issued["key"]) == 200


def test_a_key_cannot_be_issued_already_expired(world: World) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    response = world.refused("/v1/credentials", {"role": "analyst", "expires_at": past}, "admin")

    assert (response.json()["field"], response.json()["rule"]) == ("expires_at", "in-future")


def test_a_rotated_key_gives_a_new_key_for_the_same_principal(world: World) -> None:
    old = _issue(world)

    rotated = world.register(f"/v1/credentials/{old['credential_id']}/rotate", {})

    assert rotated["replaces"] == old["credential_id"]
    assert rotated["role"] == "analyst"
    me = world.client.get("/v1/me", headers=bearer(rotated["key"])).json()
    assert (me["role"], me["id"]) == ("analyst", rotated["credential_id"])


def test_the_old_key_stays_valid_during_its_grace_period(world: World) -> None:
    old = _issue(world)

    world.register(f"/v1/credentials/{old['credential_id']}/rotate", {"grace_seconds": 3600})

    assert _me(world, old["key"]) == 200


def test_the_old_key_is_refused_once_its_grace_period_is_over(world: World) -> None:
    old = _issue(world)

    rotated = world.register(f"/v1/credentials/{old['credential_id']}/rotate", {"grace_seconds": 0})

    assert (_me(world, old["key"]), _me(world, rotated["key"])) == (401, 200)


def test_a_key_is_rotated_once(world: World) -> None:
    old = _issue(world)
    world.register(f"/v1/credentials/{old['credential_id']}/rotate", {})

    response = world.refused(f"/v1/credentials/{old['credential_id']}/rotate", {}, "admin")

    assert (response.status_code, response.json()["rule"]) == (409, "not-rotated")


def test_a_principal_rotates_its_own_key(world: World) -> None:
    me = world.get("/v1/me", "analyst").json()

    rotated = world.register(f"/v1/credentials/{me['id']}/rotate", {}, "analyst")

    assert _me(world, rotated["key"]) == 200


def test_an_operator_may_not_rotate_another_principals_key(world: World) -> None:
    other = world.get("/v1/me", "analyst").json()

    response = world.refused(f"/v1/credentials/{other['id']}/rotate", {}, "mine")

    assert (response.status_code, response.json()["rule"]) == (403, "ownership")


def test_a_grace_period_longer_than_thirty_days_is_refused(world: World) -> None:
    old = _issue(world)

    response = world.refused(
        f"/v1/credentials/{old['credential_id']}/rotate", {"grace_seconds": 31 * 86_400}, "admin"
    )

    assert (response.json()["field"], response.json()["rule"]) == (
        "grace_seconds",
        "less-than-equal",
    )


def test_a_rotated_key_never_outlives_the_expiry_of_the_key_it_replaces(world: World) -> None:
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    old = _issue(world, expires_at=until)

    rotated = world.register(
        f"/v1/credentials/{old['credential_id']}/rotate", {"grace_seconds": 86_400}
    )

    assert datetime.fromisoformat(rotated["replaced_expires_at"]) == datetime.fromisoformat(until)
