"""The monthly declaration (``lodestone.reads.declarations``) as files: CSV and XLSX for
the regulator's tools, HTML and PDF for people (the audit reports' renderer, with a
template of its own). Each renders the JSON declaration alone, so a declaration kept
as JSON renders again exactly as it was.

Every format shows the same sections, each a table (:func:`sections`): production,
purchases, sales, controlled exports, uncontrolled exports, stock at the month's end
and quota drawn, after a one-row ``declaration`` section (who, which month, when due,
totals). A section's element columns are the elements its rows carry (``kg_Nd``...).

- CSV: one file, one header; every row starts with its ``section``, and the header is
  the union of the sections' columns (a column a section does not have is empty).
  Decimals are exact text, as in the JSON.
- XLSX: one sheet per section. A decimal is a number when a spreadsheet number (a
  binary double, 15 significant digits) holds it exactly, else its exact text, with a
  note on the cell saying so: nothing is rounded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lodestone.audit.report.render import page, pdf_of

#: Significant digits a spreadsheet number keeps exactly (IEEE 754 double, as Excel shows).
SPREADSHEET_DIGITS = 15
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEXT_NOTE = "Exact decimal kept as text: a spreadsheet number would lose digits."
#: Each section's sheet (a sheet title has at most 31 characters).
SHEETS = {
    "declaration": "Declaration",
    "production": "Production",
    "purchases": "Purchases",
    "sales": "Sales",
    "exports_controlled": "Exports controlled",
    "exports_uncontrolled": "Exports uncontrolled",
    "stock": "Stock at month end",
    "quota": "Quota drawn",
}


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header and the JSON field it comes from
    header: str  # for people: the XLSX and HTML headers
    kind: str = "text"  # text | decimal | int | bool


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]  # column key -> text, int, bool or None (decimals as text)


def _party(prefix: str, header: str) -> tuple[Column, ...]:
    return (
        Column(f"{prefix}_code", f"{header} code"),
        Column(f"{prefix}_name", f"{header} name"),
        Column(f"{prefix}_country", f"{header} country"),
    )


def _party_values(prefix: str, party: Mapping[str, Any] | None) -> dict[str, Any]:
    party = party or {}
    return {f"{prefix}_{k}": party.get(k) for k in ("code", "name", "country")}


def _elements(rows: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    found = sorted({element for row in rows for element in row["elements"]})
    return tuple(Column(f"kg_{e}", f"{e} kg", "decimal") for e in found)


def _element_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {f"kg_{e}": kg for e, kg in row["elements"].items()}


def sections(declaration: Mapping[str, Any]) -> list[Section]:
    """The declaration as tables, in the order every format shows them."""
    d = declaration
    totals = d["totals"]
    exports = d["exports"]
    head = Section(
        "declaration",
        "Declaration",
        (
            *_party("actor", "Actor"),
            Column("month", "Month"),
            Column("starts_at", "From (UTC)"),
            Column("ends_before", "Until (UTC, excluded)"),
            Column("due_by", "Due by"),
            Column("provisional", "Provisional", "bool"),
            Column("reported", "Activity reported", "bool"),
            Column("produced_kg", "Produced kg", "decimal"),
            Column("purchased_kg", "Purchased kg", "decimal"),
            Column("sold_kg", "Sold kg", "decimal"),
            Column("exported_controlled_kg", "Exported kg (controlled)", "decimal"),
            Column("exported_uncontrolled_kg", "Exported kg (uncontrolled)", "decimal"),
            Column("stock_kg", "Stock kg at month end", "decimal"),
        ),
        [
            {
                **_party_values("actor", d["actor"]),
                "month": d["month"],
                "starts_at": d["period"]["starts_at"],
                "ends_before": d["period"]["ends_before"],
                "due_by": d["due_by"],
                "provisional": d["provisional"],
                "reported": d["reported"],
                "produced_kg": totals["produced_kg"],
                "purchased_kg": totals["purchased_kg"],
                "sold_kg": totals["sold_kg"],
                "exported_controlled_kg": exports["controlled_kg"],
                "exported_uncontrolled_kg": exports["uncontrolled_kg"],
                "stock_kg": totals["stock_kg"],
            }
        ],
    )
    production = Section(
        "production",
        "Production by material and element",
        (
            Column("process", "Process"),
            Column("material", "Material"),
            Column("kg", "kg", "decimal"),
            Column("batches", "Batches", "int"),
            *_elements(d["production"]),
        ),
        [
            {
                "process": r["process"],
                "material": r["material"],
                "kg": r["kg"],
                "batches": r["batches"],
                **_element_values(r),
            }
            for r in d["production"]
        ],
    )
    traded = (
        Column("material", "Material"),
        Column("kg", "kg", "decimal"),
        Column("lines", "Lines", "int"),
        Column("currency", "Currency"),
        Column("value", "Value", "decimal"),
    )

    def trade_rows(prefix: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                **_party_values(prefix, r["counterparty"]),
                "kind": r["kind"],
                **{c.key: r[c.key] for c in traded},
                **_element_values(r),
            }
            for r in rows
        ]

    purchases = Section(
        "purchases",
        "Purchases by supplier",
        (
            *_party("supplier", "Supplier"),
            Column("kind", "Kind"),
            *traded,
            *_elements(d["purchases"]),
        ),
        trade_rows("supplier", d["purchases"]),
    )
    sales = Section(
        "sales",
        "Sales by client",
        (*_party("client", "Client"), Column("kind", "Kind"), *traded, *_elements(d["sales"])),
        trade_rows("client", d["sales"]),
    )
    shipped = [
        Section(
            f"exports_{which}",
            f"Exports by destination and licence ({which} goods)",
            (
                Column("destination_country", "Destination"),
                Column("licence", "Licence"),
                *_party("consignee", "Consignee"),
                Column("end_user", "End user"),
                Column("material", "Material"),
                Column("customs_code", "Customs code"),
                Column("kg", "kg", "decimal"),
                Column("lines", "Lines", "int"),
                Column("shipments", "Shipments"),
                *_elements(exports[which]),
            ),
            [
                {
                    "destination_country": r["destination_country"],
                    "licence": r["licence"],
                    **_party_values("consignee", r["consignee"]),
                    "end_user": r["end_user"],
                    "material": r["material"],
                    "customs_code": r["customs_code"],
                    "kg": r["kg"],
                    "lines": r["lines"],
                    "shipments": "; ".join(r["shipments"]),
                    **_element_values(r),
                }
                for r in exports[which]
            ],
        )
        for which in ("controlled", "uncontrolled")
    ]
    held = Section(
        "stock",
        "Stock at the month's end",
        (
            *_party("facility", "Facility"),
            Column("in_transit", "In transit", "bool"),
            Column("material", "Material"),
            Column("kg", "kg", "decimal"),
            Column("batches", "Batches", "int"),
            *_elements(d["stock"]),
        ),
        [
            {
                **_party_values("facility", r["facility"]),
                "in_transit": r["in_transit"],
                "material": r["material"],
                "kg": r["kg"],
                "batches": r["batches"],
                **_element_values(r),
            }
            for r in d["stock"]
        ],
    )
    quota_columns = (
        Column("licence", "Licence"),
        Column("kind", "Kind"),
        Column("unit", "Unit"),
        Column("max_kg", "Maximum", "decimal"),
        Column("drawn_kg", "Drawn in the month", "decimal"),
        Column("draws", "Draws", "int"),
        Column("drawn_to_date_kg", "Drawn to date", "decimal"),
        Column("remaining_kg", "Remaining", "decimal"),
        Column("valid_from", "Valid from"),
        Column("valid_until", "Valid until"),
    )
    quota = Section(
        "quota",
        "Quota and licences drawn",
        quota_columns,
        [{c.key: r[c.key] for c in quota_columns} for r in d["quota"]],
    )
    return [head, production, purchases, sales, *shipped, held, quota]


# --- CSV ----------------------------------------------------------------------------------


def to_csv(declaration: Mapping[str, Any]) -> str:
    """Every section in one CSV: a ``section`` column, then the union of the sections'
    columns (in the order they first appear)."""
    tables = sections(declaration)
    header: dict[str, None] = {"section": None}
    for table in tables:
        header.update(dict.fromkeys(c.key for c in table.columns))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header), lineterminator="\r\n")
    writer.writeheader()
    for table in tables:
        for row in table.rows:
            writer.writerow({"section": table.name, **{k: _csv(v) for k, v in row.items()}})
    return out.getvalue()


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# --- XLSX ---------------------------------------------------------------------------------


def to_xlsx(declaration: Mapping[str, Any]) -> bytes:
    """One sheet per section, headers in bold and frozen."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for table in sections(declaration):
        sheet = book.create_sheet(SHEETS[table.name])
        sheet.append([c.header for c in table.columns])
        for cell in sheet[1]:
            cell.font = bold
        sheet.freeze_panes = "A2"
        for row in table.rows:
            sheet.append([_xlsx(row.get(c.key), c.kind) for c in table.columns])
            for cell, column in zip(sheet[sheet.max_row], table.columns, strict=True):
                if column.kind == "decimal" and isinstance(cell.value, str):
                    cell.comment = Comment(TEXT_NOTE, "Lodestone")
        for i, column in enumerate(table.columns, 1):
            width = max(
                [len(column.header), *(len(str(r.get(column.key) or "")) for r in table.rows)]
            )
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(width + 2, 60)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx(value: Any, kind: str) -> Any:
    if kind != "decimal" or value is None:
        return value
    return number_or_text(str(value))


def number_or_text(text: str) -> float | str:
    """A decimal as a spreadsheet number when a double holds it exactly, else its text."""
    exact = Decimal(text)
    digits = exact.normalize().as_tuple().digits
    if len(digits) <= SPREADSHEET_DIGITS and Decimal(repr(float(exact))) == exact:
        return float(exact)
    return text


# --- HTML and PDF -------------------------------------------------------------------------


def html(declaration: Mapping[str, Any], *, for_print: bool = False) -> str:
    """The declaration as one self-contained HTML page (styles inline)."""
    return page(
        "declaration.html.j2",
        d=declaration,
        sections=sections(declaration)[1:],
        for_print=for_print,
    )


def pdf(declaration: Mapping[str, Any]) -> bytes:
    """The declaration as PDF (A4 landscape), laid out by WeasyPrint from the same HTML."""
    return pdf_of(html(declaration, for_print=True))
