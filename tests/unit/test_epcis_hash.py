"""The CBV 2.0 event hash: the reference generator's vectors, and one hash per event
whatever its spelling."""

from __future__ import annotations

import json
from typing import Any

from lodestone.epcis.hashing import event_hash, namespaces_of, prehash, utc_millis

# Vectors: RalphTro/epcis-event-hash-generator @ 5d2f1c389a1599af40fe1b530b62e0ca59ab818f,
# tests/examples/TimeStampRoundOff.jsonld with its .hashes and .prehashes (events below
# copied from the .jsonld; the expected hashes from the .hashes, line for line).
ROUND_OFF_EVENTS: list[dict[str, Any]] = [
    {
        "type": "ObjectEvent",
        "eventTime": "2023-02-02T11:04:03.1415Z",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["https://id.gs1.de/00/040123451111111110"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "https://id.gs1.de/414/4012345000115"},
    },
    {
        "type": "ObjectEvent",
        "eventTime": "2023-02-02T11:04:03.1414Z",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["https://id.gs1.de/00/040123451111111110"],
        "action": "OBSERVE",
        "bizStep": "transporting",
        "readPoint": {"id": "geo:50.947573340894124,6.922120147375441"},
    },
    {
        "type": "ObjectEvent",
        "eventTime": "2023-02-12T11:04:03.1415Z",
        "eventTimeZoneOffset": "+01:00",
        "certificationInfo": "https://accreditation-council.example.org/certificate/ABC12345",
        "epcList": ["https://id.gs1.de/01/04012345999990/21/XYZ-1234"],
        "action": "OBSERVE",
        "bizStep": "receiving",
        "disposition": "in_progress",
        "readPoint": {"id": "https://id.gs1.de/414/4012345000115"},
        "sensorElementList": [
            {
                "sensorMetadata": {
                    "time": "2023-02-12T11:04:03.1007Z",
                    "bizRules": "https://id.example.com/253/4012345000054987",
                },
                "sensorReport": [
                    {
                        "type": "Dimensionless",
                        "exception": "ALARM_CONDITION",
                        "coordinateReferenceSystem": "http://www.opengis.net/def/crs/EPSG/0/27700",
                    }
                ],
            }
        ],
    },
]
ROUND_OFF_HASHES = [
    "ni:///sha-256;af7658e711574363633f20b3dadc7bc4c13c6f612cf96d95e03c421c0e58f3c6?ver=CBV2.0",
    "ni:///sha-256;0550df44527332c1fe417c5837fe61b9e71eaa93307b88519dac549bf2d4dcf9?ver=CBV2.0",
    "ni:///sha-256;589e6268daac257cff0a64ae0f525abcc3ff90bc7832171270fd9260e9c481c8?ver=CBV2.0",
]
ROUND_OFF_FIRST_PREHASH = (
    "eventType=ObjectEventeventTime=2023-02-02T11:04:03.142ZeventTimeZoneOffset=+01:00"
    "epcListepc=https://id.gs1.org/00/040123451111111110action=OBSERVE"
    "bizStep=https://ref.gs1.org/cbv/BizStep-shipping"
    "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
    "readPointid=https://id.gs1.org/414/4012345000115"
)

# Same repository and commit: tests/examples/epcisDocHavingEventWithIgnoreFields.jsonld,
# its second event (eventID and recordTime present, and left out of the hash) and the
# second line of its .hashes: the hash the event carries as its own eventID.
IGNORED_FIELDS_EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2019-10-21T14:45:00Z",
    "recordTime": "2023-06-02T07:03:16.073Z",
    "eventTimeZoneOffset": "+01:00",
    "eventID": "ni:///sha-256;b3d481c5590757ab8361a6cb0e924820feb3b61eb568e7d7703f21a96f76f51d?ver=CBV2.0",
    "epcList": ["https://id.gs1.org/00/040123451111111127"],
    "action": "OBSERVE",
    "bizStep": "inspecting",
    "disposition": "in_progress",
    "readPoint": {"id": "https://id.gs1.org/414/4012345000245/254/1"},
}

RE = {"re": "urn:lodestone:epcis:re:"}
LODESTONE_EVENT: dict[str, Any] = {
    "type": "TransformationEvent",
    "eventTime": "2026-03-01T10:00:00.000+08:00",
    "eventTimeZoneOffset": "+08:00",
    "inputQuantityList": [
        {"epcClass": "urn:lodestone:lot:mine:ORE-2", "quantity": 500.25, "uom": "KGM"},
        {"epcClass": "urn:lodestone:lot:mine:ORE-1", "quantity": 1000, "uom": "KGM"},
    ],
    "outputQuantityList": [
        {"epcClass": "urn:lodestone:lot:plant:OX-1", "quantity": 80.5, "uom": "KGM"}
    ],
    "bizStep": "commissioning",
    "readPoint": {"id": "urn:lodestone:facility:plant:SEP-1"},
    "bizTransactionList": [
        {"type": "po", "bizTransaction": "urn:lodestone:contract:C-1"},
        {"bizTransaction": "urn:lodestone:contract:C-0", "type": "inv"},
    ],
    "ilmd": {"re:composition": {"re:Nd": 0.36, "re:Pr": "0.120"}},
    "re:untracedInputs": "none",
}


def test_reference_vectors_of_the_round_off_example_match() -> None:
    assert [event_hash(e) for e in ROUND_OFF_EVENTS] == ROUND_OFF_HASHES


def test_reference_pre_hash_string_is_reproduced() -> None:
    assert prehash(ROUND_OFF_EVENTS[0]) == ROUND_OFF_FIRST_PREHASH


def test_event_id_and_record_time_are_left_out_of_the_hash() -> None:
    assert event_hash(IGNORED_FIELDS_EVENT) == IGNORED_FIELDS_EVENT["eventID"]


def test_error_declaration_does_not_change_the_hash() -> None:
    declared = {
        **IGNORED_FIELDS_EVENT,
        "errorDeclaration": {"declarationTime": "2024-01-01T00:00:00Z", "reason": "incorrect_data"},
    }
    assert event_hash(declared) == event_hash(IGNORED_FIELDS_EVENT)


def test_hash_is_deterministic() -> None:
    assert event_hash(LODESTONE_EVENT, RE) == event_hash(
        json.loads(json.dumps(LODESTONE_EVENT)), RE
    )


def test_key_order_does_not_change_the_hash() -> None:
    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(v) for v in reversed(value)]
        return value

    assert event_hash(reversed_keys(LODESTONE_EVENT), RE) == event_hash(LODESTONE_EVENT, RE)


def test_whitespace_does_not_change_the_hash() -> None:
    spaced = json.loads(json.dumps(LODESTONE_EVENT, indent=4))
    spaced["readPoint"] = {"id": "  urn:lodestone:facility:plant:SEP-1\n"}
    assert event_hash(spaced, RE) == event_hash(LODESTONE_EVENT, RE)


def test_the_same_moment_in_another_zone_gives_the_same_hash() -> None:
    utc = {**LODESTONE_EVENT, "eventTime": "2026-03-01T02:00:00Z"}
    assert event_hash(utc, RE) == event_hash(LODESTONE_EVENT, RE)


def test_equivalent_quantities_give_the_same_hash() -> None:
    spelt = json.loads(json.dumps(LODESTONE_EVENT))
    spelt["inputQuantityList"][0]["quantity"] = "500.250"
    spelt["inputQuantityList"][1]["quantity"] = "1000.0"
    assert event_hash(spelt, RE) == event_hash(LODESTONE_EVENT, RE)


def test_a_different_quantity_gives_a_different_hash() -> None:
    changed = json.loads(json.dumps(LODESTONE_EVENT))
    changed["outputQuantityList"][0]["quantity"] = 80.6
    assert event_hash(changed, RE) != event_hash(LODESTONE_EVENT, RE)


def test_extensions_are_spelt_with_their_namespace_iri() -> None:
    text = prehash(LODESTONE_EVENT, RE)
    assert "{urn:lodestone:epcis:re:}untracedInputs=none" in text
    assert "ilmd{urn:lodestone:epcis:re:}composition{urn:lodestone:epcis:re:}Nd=0.36" in text


def test_times_are_utc_milliseconds_rounded_half_even() -> None:
    assert utc_millis("2023-02-02T12:04:03.1415+01:00") == "2023-02-02T11:04:03.142Z"
    assert utc_millis("2023-02-02T11:04:03Z") == "2023-02-02T11:04:03.000Z"
    assert utc_millis("2023-02-02T11:04:59.9996Z") == "2023-02-02T11:05:00.000Z"


# Same repository and commit: tests/examples/epcisDocWithSensorComponent.jsonld (its one
# event and its @context prefixes) and its .hashes: CURIE values expanded by the
# document's prefixes, sensor reports sorted, Digital Link hosts normalised.
SENSOR_NAMESPACES = {"cbv": "https://ref.gs1.org/cbv/", "gs1": "https://gs1.org/voc/"}
SENSOR_EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2022-04-07T10:00:00.000Z",
    "eventTimeZoneOffset": "+01:00",
    "epcList": ["https://id.example.com/8003/040123450007718765"],
    "action": "OBSERVE",
    "bizStep": "sensor_reporting",
    "readPoint": {"id": "https://id.example.com/414/4012345000054"},
    "sensorElementList": [
        {
            "sensorReport": [
                {
                    "type": "gs1:Angle",
                    "value": 42.698334,
                    "component": "cbv:Comp-latitude",
                    "uom": "DD",
                    "coordinateReferenceSystem": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                },
                {
                    "type": "gs1:Angle",
                    "value": 23.319941,
                    "component": "cbv:Comp-longitude",
                    "uom": "DD",
                    "coordinateReferenceSystem": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                },
            ]
        }
    ],
}
SENSOR_HASH = (
    "ni:///sha-256;bb12b0e4a573819c15796579560efbe6bd5e337f5c8c5cdf81f983a39947f629?ver=CBV2.0"
)


def test_reference_vector_of_the_sensor_component_example_matches() -> None:
    assert event_hash(SENSOR_EVENT, SENSOR_NAMESPACES) == SENSOR_HASH


def test_the_namespaces_of_a_context_are_its_prefixes() -> None:
    context = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", RE]

    assert namespaces_of(context) == RE
