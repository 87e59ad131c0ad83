"""The report for people: one self-contained HTML page (Jinja templates in
``templates/``, styles and the drawn genealogy inline) and the same page as PDF. Both
render the JSON report alone, so a report kept as JSON renders again exactly as it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestone.audit.report.formats import format_kg, format_share, format_time
from lodestone.audit.report.graph import draw_genealogy


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lodestone.audit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kg"] = format_kg
    env.filters["share"] = format_share
    env.filters["time"] = format_time
    env.filters["n"] = "{:,}".format
    return env


def html(report: Mapping[str, Any], *, for_print: bool = False) -> str:
    """The report as one self-contained HTML page (styles and the graph inline)."""
    from markupsafe import Markup

    graph = draw_genealogy(report["genealogy"])
    template = _environment().get_template("report.html.j2")
    return str(
        template.render(
            r=report,
            graph_svg=Markup(graph.svg) if graph.svg else None,
            graph_note=graph.note,
            for_print=for_print,
        )
    )


def pdf(report: Mapping[str, Any]) -> bytes:
    """The report as PDF (A4 landscape), laid out by WeasyPrint from the same HTML."""
    return pdf_of(html(report, for_print=True))


def page(template: str, **context: Any) -> str:
    """Another document of the same kind (the monthly declaration): ``template`` from
    ``templates/`` rendered with the report's filters."""
    return str(_environment().get_template(template).render(**context))


def pdf_of(page: str) -> bytes:
    """A self-contained HTML page laid out for print by WeasyPrint."""
    import weasyprint

    document: bytes = weasyprint.HTML(string=page).write_pdf()
    return document
