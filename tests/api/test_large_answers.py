"""Traces, histories and as-of states are written by orjson, not by the response model:
the bytes are those the response model would write, and the provenance in them comes
from the shares the genealogy keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from lodestone.reads.types import AsOfAnswer, History, Provenance, Trace
from tests.api.conftest import World, concentrate_at_separation_plant, sale, separation

CHAIN = "/v1/batches/MINECO"


@pytest.fixture
def separated(world: World) -> World:
    concentrate_at_separation_plant(world)
    world.report("batch-transformed", separation())
    world.report("custody-transferred", sale("NDPR-OX"))
    return world


def as_the_response_model_writes(shape: Any, body: bytes) -> bytes:
    adapter = TypeAdapter(shape)
    return adapter.dump_json(adapter.validate_python(json.loads(body)))


TRACES = [("/NDPR-OX/upstream", Trace), ("/ORE-1/downstream", Trace)]
AUDITS = [("/NDPR-OX/history?lineage=upstream", History), ("/NDPR-OX/as-of?version=1", AsOfAnswer)]


@pytest.mark.parametrize(
    ("path", "shape", "who"),
    # Traces for a party, a party to none of it and a role that sees no client names;
    # history and as-of for the roles that may read them.
    [(path, shape, who) for path, shape in TRACES for who in ("mine", "other", "analyst")]
    + [(path, shape, who) for path, shape in AUDITS for who in ("auditor", "regulator")],
)
def test_a_large_answer_is_the_json_its_response_model_would_write(
    separated: World, path: str, shape: Any, who: str
) -> None:
    response = separated.get(CHAIN + path, who)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == as_the_response_model_writes(shape, response.content)


def test_the_provenance_of_an_as_of_answer_is_the_batch_s_provenance(separated: World) -> None:
    provenance = separated.get(f"{CHAIN}/NDPR-OX/provenance", "auditor")
    as_of = separated.get(f"{CHAIN}/NDPR-OX/as-of?version=2", "auditor").json()

    assert provenance.content == as_the_response_model_writes(Provenance, provenance.content)
    assert as_of["provenance"] == provenance.json()
    assert {o["mine"] for o in as_of["provenance"]["elements"]["Nd"]["origins"]} == {"MINE-1"}
