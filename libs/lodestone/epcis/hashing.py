"""The CBV 2.0 event hash: an EPCIS event's identity, ``ni:///sha-256;<hex>?ver=CBV2.0``.

The same event, however it is spelt (key order, whitespace, time zone of its times,
``urn:epcglobal:cbv:`` or web-vocabulary words, bare CBV words, trailing zeros in a
quantity), gives the same hash: the SHA-256 of its *pre-hash string*, built as CBV 2.0
(section 8.9, "Event hash ID") lays it down:

- ``eventType=<type>`` first, then the standard fields in the canonical order
  (``CANONICAL``), each as ``name=value`` with nothing between pieces; a list as its
  name followed by its entries, the entries sorted (``epcList`` then ``epc=..epc=..``);
- excluded: ``eventID``, ``recordTime``, ``errorDeclaration`` (a correction must not
  change the identity of what it corrects), comments and the JSON-LD ``@context``;
- times in UTC at millisecond precision (``2023-02-02T11:04:03.142Z``, half-even);
- values normalised: CBV URNs and bare CBV words to web vocabulary
  (``https://ref.gs1.org/cbv/BizStep-shipping``), numbers without leading ``+`` or
  trailing zeros, GS1 Digital Link URIs on any host to ``https://id.gs1.org``;
- user extensions (``prefix:name`` keys) spelt ``{namespace IRI}name``, their values'
  prefixes expanded, sorted, after the standard fields of the element that holds them.

The business transaction, source and destination lists, ``ilmd`` and top-level
extensions come after the ordered fields, sorted as strings: that is the order the
public reference generator (RalphTro/epcis-event-hash-generator) produces and its test
vectors fix, which every interoperable repository follows; we match the vectors.

Not built: EPC URN to Digital Link conversion (``urn:epc:id:sgtin:..``), since
Lodestone identifies lots and facilities by ``urn:lodestone:`` URNs; an EPC URN is
hashed as written. Standard library only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

#: Left out of the pre-hash string wherever they appear at the top of an event.
EXCLUDED = frozenset(
    {"eventID", "recordTime", "errorDeclaration", "type", "@context", "comment", "rdfs:comment"}
)

EPC_LISTS = ("epcList", "inputEPCList", "childEPCs", "outputEPCList")
QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
PARTY_LISTS = {"bizTransactionList": "bizTransaction", "sourceList": "source"}
PARTY_LISTS["destinationList"] = "destination"

#: The fields hashed in this order, before the sorted rest.
CANONICAL = (
    "eventTime",
    "eventTimeZoneOffset",
    "certificationInfo",
    "parentID",
    "epcList",
    "inputEPCList",
    "childEPCs",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "action",
    "transformationID",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "sensorElementList",
)

SENSOR_METADATA = (
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
SENSOR_REPORT = (
    "type",
    "exception",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "time",
    "microorganism",
    "chemicalSubstance",
    "value",
    "component",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
    "uom",
    "coordinateReferenceSystem",
)

CBV = "https://ref.gs1.org/cbv/"
VOC = "https://gs1.org/voc/"
_OLD_CBV = {
    "urn:epcglobal:cbv:bizstep:": CBV + "BizStep-",
    "urn:epcglobal:cbv:disp:": CBV + "Disp-",
    "urn:epcglobal:cbv:btt:": CBV + "BTT-",
    "urn:epcglobal:cbv:sdt:": CBV + "SDT-",
    "urn:epcglobal:cbv:er:": CBV + "ER-",
}
#: Where a bare word (``"shipping"``) is a CBV term: the vocabulary it expands into.
_BARE = {
    "bizStep": CBV + "BizStep-",
    "disposition": CBV + "Disp-",
    "set": CBV + "Disp-",
    "unset": CBV + "Disp-",
    "bizTransactionList": CBV + "BTT-",
    "sourceList": CBV + "SDT-",
    "destinationList": CBV + "SDT-",
    "sensorReport.type": VOC,
    "sensorReport.exception": VOC,
    "sensorMetadata.exception": VOC,
}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A Digital Link URI: a GS1 primary key application identifier first in its path.
_DIGITAL_LINK = re.compile(
    r"https?://[^/]+/(00|01|253|255|401|402|414|417|8003|8004|8006|8010|8017|8018)/(.+)"
)
_MS = Decimal("0.001")


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The event's CBV 2.0 hash id. ``namespaces``: the document's ``@context`` prefixes
    (``{"re": "urn:lodestone:epcis:re:"}``), which give extensions their IRIs."""
    digest = hashlib.sha256(prehash(event, namespaces).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


def namespaces_of(context: Any) -> dict[str, str]:
    """The prefix -> IRI entries of a JSON-LD ``@context`` (URLs and terms mapping to
    objects are not prefixes)."""
    found: dict[str, str] = {}
    for part in context if isinstance(context, list) else [context]:
        if isinstance(part, Mapping):
            found.update({k: v for k, v in part.items() if isinstance(v, str)})
    return found


def prehash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The canonical pre-hash string of one event (what ``event_hash`` digests)."""
    h = _Hasher(namespaces or {})
    ordered = "".join(h.field(name, event[name]) for name in CANONICAL if name in event)
    rest = sorted(
        h.generic(name, value)
        for name, value in event.items()
        if name not in EXCLUDED and name not in CANONICAL
    )
    return f"eventType={event['type']}{ordered}{''.join(rest)}"


class _Hasher:
    def __init__(self, namespaces: Mapping[str, str]) -> None:
        self.namespaces = namespaces

    # --- the standard fields --------------------------------------------------------

    def field(self, name: str, value: Any) -> str:
        if name in EPC_LISTS:
            return name + "".join(sorted(f"epc={self.value(v)}" for v in value))
        if name in QUANTITY_LISTS:
            return name + "".join(sorted(self.quantity(q) for q in value))
        if name == "persistentDisposition":
            parts = [
                f"{key}={self.value(v, _BARE[key])}"
                for key in ("set", "unset")
                for v in sorted(value.get(key, []))
            ]
            return name + "".join(parts) if parts else ""
        if name in ("readPoint", "bizLocation"):
            return name + self.element(value, ("id",))
        if name == "sensorElementList":
            return name + "".join(sorted(self.sensor_element(e) for e in value))
        if name == "eventTimeZoneOffset":
            return f"{name}={value}"
        if name == "eventTime":
            return f"{name}={utc_millis(value)}"
        return "".join(self.scalars(name, value, _BARE.get(name)))

    def scalars(self, name: str, value: Any, bare: str | None = None) -> list[str]:
        values = value if isinstance(value, list) else [value]
        return sorted(f"{name}={self.value(v, bare)}" for v in values)

    def quantity(self, q: Mapping[str, Any]) -> str:
        return "quantityElement" + self.element(q, ("epcClass", "quantity", "uom"))

    def element(self, data: Mapping[str, Any], order: Sequence[str], context: str = "") -> str:
        """An element's known children in ``order``, then its extensions sorted."""
        known = []
        for key in order:
            if key in data:
                bare = _BARE.get(f"{context}.{key}")
                if key.lower().endswith("time"):
                    known.append(f"{key}={utc_millis(data[key])}")
                else:
                    known.extend(self.scalars(key, data[key], bare))
        extra = sorted(self.generic(k, v) for k, v in data.items() if k not in order)
        return "".join(known) + "".join(extra)

    def sensor_element(self, e: Mapping[str, Any]) -> str:
        parts = []
        if "sensorMetadata" in e:
            meta = self.element(e["sensorMetadata"], SENSOR_METADATA, "sensorMetadata")
            parts.append("sensorMetadata" + meta)
        reports = e.get("sensorReport", [])
        parts.extend(
            sorted("sensorReport" + self.element(r, SENSOR_REPORT, "sensorReport") for r in reports)
        )
        rest = sorted(
            self.generic(k, v) for k, v in e.items() if k not in ("sensorMetadata", "sensorReport")
        )
        return "sensorElement" + "".join(parts) + "".join(rest)

    def party_list(self, name: str, entries: Sequence[Mapping[str, Any]]) -> str:
        """type first, then the identifier: whatever order the keys came in."""
        key = PARTY_LISTS[name]
        spelt = []
        for entry in entries:
            kind = f"type={self.value(entry['type'], _BARE[name])}" if "type" in entry else ""
            value = f"{key}={self.value(entry[key])}" if key in entry else ""
            spelt.append(kind + value)
        return name + "".join(sorted(spelt))

    # --- everything else: ilmd, extensions --------------------------------------------

    def generic(self, name: str, value: Any) -> str:
        if name in PARTY_LISTS and isinstance(value, list):
            return self.party_list(name, value)
        key = self.key(name)
        if isinstance(value, list):
            # A repeated element: each occurrence is one child of the same name.
            return "".join(sorted(self.generic(name, v) for v in value))
        if isinstance(value, Mapping):
            text = f"={self.value(value['#text'])}" if "#text" in value else ""
            children = sorted(
                self.generic(k, v)
                for k, v in value.items()
                if k not in ("#text", "comment", "rdfs:comment")
            )
            return key + text + "".join(children)
        if key.lower().endswith("time") and isinstance(value, str) and "offset" not in key.lower():
            return f"{key}={utc_millis(value)}"
        return f"{key}={self.value(value)}"

    def key(self, name: str) -> str:
        prefix, sep, local = name.partition(":")
        if sep and prefix in self.namespaces:
            return "{" + self.namespaces[prefix] + "}" + local
        return name

    def value(self, value: Any, bare: str | None = None) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"  # the XML binding's spelling
        text = str(value).strip()
        if bare and _BARE_WORD.fullmatch(text):
            return bare + text
        for old, new in _OLD_CBV.items():
            if text.startswith(old):
                return new + text[len(old) :]
        if _NUMBER.fullmatch(text):
            return number(text)
        link = _DIGITAL_LINK.fullmatch(text)
        if link:
            return f"https://id.gs1.org/{link.group(1)}/{link.group(2)}"
        prefix, sep, local = text.partition(":")
        if sep and prefix in self.namespaces and not local.startswith("//"):
            return self.namespaces[prefix] + local
        return text


def number(text: str) -> str:
    """A number without sign, exponent or trailing zeros: ``+012.50`` -> ``12.5``."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        return text
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def utc_millis(value: str | datetime) -> str:
    """An ISO 8601 time in UTC at millisecond precision (half-even), ``Z``-suffixed."""
    moment = value if isinstance(value, datetime) else _parse(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    millis = (Decimal(moment.microsecond) / 1_000_000).quantize(_MS, ROUND_HALF_EVEN)
    whole = moment.replace(microsecond=0) + timedelta(milliseconds=int(millis * 1000))
    return whole.strftime("%Y-%m-%dT%H:%M:%S.") + f"{whole.microsecond // 1000:03d}Z"


def _parse(text: str) -> datetime:
    # fromisoformat before 3.11 takes neither "Z" nor other than 3 or 6 fraction digits.
    text = text.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
    if match:
        fraction = (match.group(2) or ".0")[1:]
        # Microseconds carry every digit that can round the millisecond.
        micros = Decimal("0." + fraction).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
        text = f"{match.group(1)}.{int(micros * 1_000_000):06d}{match.group(3)}"
    return datetime.fromisoformat(text)
