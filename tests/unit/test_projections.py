"""The projection framework without a database: routing by event class, the registry,
consumer groups, and the genealogy's tables described from its row types."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.domain.access import Credential
from lodestone.domain.batches import Batch
from lodestone.projections.anomalies import AnomaliesProjection
from lodestone.projections.base import Dispatching, handles
from lodestone.projections.genealogy import GenealogyProjection
from lodestone.projections.genealogy.schema import BATCHES, EDGES, LAYOUT, NAMES, TRADES
from lodestone.projections.registry import REGISTRY, Registered, Registry
from lodestone.projections.tables import POSTGRES, SQLITE
from lodestone.projector.main import consumer_group


class Base:
    pass


class Middle(Base):
    pass


class Leaf(Middle):
    pass


class Recording(Dispatching):
    @handles(Base)
    def _base(self, event: Any, writer: list[str]) -> None:
        writer.append("base")

    @handles(Leaf, int)
    def _leaf(self, event: Any, writer: list[str]) -> None:
        writer.append("leaf")


def routed(event: object) -> list[str]:
    seen: list[str] = []
    Recording().process_event(event, seen)
    return seen


def test_an_event_goes_to_the_handler_of_its_own_class() -> None:
    assert routed(Leaf()) == ["leaf"]
    assert routed(3) == ["leaf"]


def test_an_event_without_a_handler_of_its_own_goes_to_its_nearest_base_class() -> None:
    assert routed(Middle()) == ["base"]


def test_an_event_no_handler_claims_changes_nothing() -> None:
    assert routed("text") == []


def test_a_subclass_mark_overrides_its_base_class_mark() -> None:
    class Overriding(Recording):
        @handles(Leaf)
        def _own(self, event: Any, writer: list[str]) -> None:
            writer.append("own")

    seen: list[str] = []
    Overriding().process_event(Leaf(), seen)

    assert seen == ["own"]
    assert Recording.handled() == {Base, Leaf, int}


def test_the_genealogy_projection_routes_every_batch_event_but_no_credential_event() -> None:
    routes = GenealogyProjection.handler

    assert routes(Batch.OreExtracted) is not routes(Batch.Created)
    assert routes(Batch.Consumed) is routes(Batch.BatchSplit)
    assert routes(Credential.Issued) is None
    assert routes(Credential.Revoked) is None


def test_the_registry_lists_the_genealogy() -> None:
    assert REGISTRY.names() == ["genealogy", "trades", "inventory", "licences", "anomalies"]
    assert [e.name for e in REGISTRY.select()] == REGISTRY.names()
    assert [e.name for e in REGISTRY.select(["genealogy", "genealogy"])] == ["genealogy"]
    assert REGISTRY["genealogy"].projection is GenealogyProjection
    assert REGISTRY["genealogy"].version == 2


def test_the_registry_lists_the_anomalies() -> None:
    assert "anomalies" in REGISTRY.names()
    assert REGISTRY["anomalies"].projection is AnomaliesProjection
    assert REGISTRY["anomalies"].version == 1


def test_an_unknown_projection_is_refused_with_the_known_names() -> None:
    with pytest.raises(KeyError, match="no projection 'nothing'; there are: genealogy, trades"):
        REGISTRY.select(["nothing"])


def test_each_projection_consumes_in_a_group_named_after_it_and_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LODESTONE_PROJECTOR_GROUP", raising=False)

    assert consumer_group(Settings(), REGISTRY["genealogy"]) == "lodestone.genealogy.v2"
    assert consumer_group(Settings(projector_group="g"), REGISTRY["genealogy"]) == "g"


def test_projections_that_would_share_a_table_are_refused() -> None:
    genealogy = REGISTRY["genealogy"]
    layout = replace(genealogy.layout, projection="twin")
    twin = Registered(Twin, layout, genealogy.sqlite, genealogy.postgres)

    with pytest.raises(ValueError, match="share a table"):
        Registry(genealogy, twin)


def test_a_projection_registered_with_another_s_tables_is_refused() -> None:
    genealogy = REGISTRY["genealogy"]

    with pytest.raises(ValueError, match="with the tables of genealogy"):
        Registered(OtherName, genealogy.layout, genealogy.sqlite, genealogy.postgres)


class Twin(GenealogyProjection):
    """The genealogy under a second name (its layout renamed to match)."""

    name = "twin"


class OtherName(GenealogyProjection):
    name = "other"


@pytest.mark.parametrize("table", [BATCHES, EDGES, TRADES, NAMES], ids=lambda t: t.name)
def test_a_genealogy_table_has_its_row_type_s_fields_as_columns(table: Any) -> None:
    assert table.column_names == [f.name for f in fields(table.row)]


def test_one_description_makes_each_database_s_ddl() -> None:
    assert EDGES.create(SQLITE) == (
        "CREATE TABLE IF NOT EXISTS edges (parent_id TEXT NOT NULL, child_id TEXT NOT NULL, "
        "kg TEXT NOT NULL, operation TEXT NOT NULL, operation_id TEXT NOT NULL, "
        "PRIMARY KEY (parent_id, child_id))"
    )
    assert EDGES.create(POSTGRES) == (
        "CREATE TABLE IF NOT EXISTS edges (parent_id UUID NOT NULL, child_id UUID NOT NULL, "
        "kg NUMERIC NOT NULL, operation TEXT NOT NULL, operation_id UUID NOT NULL, "
        "PRIMARY KEY (parent_id, child_id))"
    )
    assert EDGES.create_indexes() == [
        "CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child_id)"
    ]


def test_a_batch_upsert_keeps_stored_values_and_ignores_older_versions() -> None:
    upsert = LAYOUT.writes[0].render(SQLITE)

    assert upsert.startswith("INSERT INTO batches (id, version, reference, ")
    assert "ON CONFLICT (id) DO UPDATE SET version = COALESCE(excluded.version" in upsert
    assert upsert.endswith("WHERE excluded.version > batches.version")
