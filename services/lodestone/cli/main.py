"""``lodestone``: serve the gateway, load the demo chain, trace a batch, rebuild a read
model. Every command reads the same LODESTONE_* settings as the gateway."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from lodestone.bootstrap.settings import Settings
from lodestone.cli import audit, report
from lodestone.cli.kafka import kafka_app

if TYPE_CHECKING:
    from lodestone.ledger import Ledger
    from lodestone.projections.registry import Registered

app = typer.Typer(help="Lodestone: chain of custody for rare-earth magnets.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
for _command in (audit.verify, audit.checkpoint, audit.replay, audit.check, audit.bundle):
    app.command()(_command)
app.command("verify-bundle")(audit.verify_bundle)
app.command()(report.report)
console = Console(soft_wrap=True)  # commands printed for copying must not wrap

DataDir = Annotated[
    Path | None, typer.Option(help="Data directory (default: LODESTONE_DATA_DIR or ./var)")
]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the HTTP gateway (with the genealogy projector on the embedded default)."""
    import uvicorn

    from lodestone.gateway import create_app

    settings = _settings(data_dir, host=host, port=port)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def streams(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve only the live streams (GET /v1/streams/...) from the gateway's settings, in a
    process of their own: the gateway keeps ingesting and projecting, this process
    delivers (give it its own --port or LODESTONE_PORT)."""
    import uvicorn

    from lodestone.gateway.streams_app import create_streams_app

    settings = _settings(data_dir, host=host, port=port)
    uvicorn.run(
        create_streams_app(settings), host=settings.host, port=settings.port, log_level="info"
    )


@app.command()
def demo(
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(help="Same seed, same chain")] = 7,
    size: Annotated[int, typer.Option(help="About how many events to generate")] = 2_000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the gateway afterwards")
    ] = True,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Load a deterministic demo chain (mines to end clients) and start the gateway."""
    from lodestone.bootstrap.stores import build_genealogy_view, build_ledger
    from lodestone.demo.generator import load
    from lodestone.streaming.projector import genealogy_projector

    settings = _settings(data_dir, port=port)
    ledger = build_ledger(settings)
    if ledger.recorder.max_notification_id():
        console.print(
            f"[yellow]{settings.event_store_path} already holds events; not loading the demo again.[/]"
        )
        summary = None
    else:
        with console.status(
            f"Generating and recording a demo chain (seed {seed}, about {size} events)..."
        ):
            summary = load(ledger, seed=seed, size=size)
        stored = ledger.recorder.max_notification_id()
        console.print(
            f"[green]Recorded {summary.commands} reported steps ({stored} stored events), "
            f"{summary.batches} batches; magnet {summary.magnet} has {summary.magnet_ancestors} ancestors.[/]"
        )
    view = build_genealogy_view(settings)
    genealogy_projector(ledger, view).catch_up()
    view.close()
    ledger.close()

    if settings.admin_key:
        admin_key = settings.admin_key.get_secret_value()
        where = "the one in LODESTONE_ADMIN_KEY"
    else:
        key_file = _demo_admin_key(settings.data_dir)
        admin_key = key_file.read_text().strip()
        where = f"in {key_file} (readable by its owner only)"
    os.environ["LODESTONE_ADMIN_KEY"] = admin_key
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"Page:       [bold]{base}/page[/]  (charts, anomalies, traces: sign in with a key)"
    )
    console.print(f"API docs:   [bold]{base}/docs[/]")
    console.print(f"Admin key:  {where}; send it as Authorization: Bearer <key>")
    if summary is not None:
        ref = summary.magnet
        console.print(
            f"Trace a magnet lot to its mines:  [bold]lodestone trace {ref} --data-dir {settings.data_dir}[/]"
        )
        key = (
            "$LODESTONE_ADMIN_KEY"
            if settings.admin_key
            else f"$(cat {settings.data_dir}/admin-key)"
        )
        console.print(
            f'Or over HTTP:  curl -H "Authorization: Bearer {key}" {base}/v1/batches/{ref}/provenance'
        )
    if serve_after:
        serve(settings.data_dir, None, port)


def _demo_admin_key(data_dir: Path) -> Path:
    """The demo's admin key, made once and kept in a file only its owner can read, so it
    is never printed (terminal scroll-back and CI logs keep what is printed)."""
    path = data_dir / "admin-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("demo-" + secrets.token_urlsafe(24) + "\n")
    return path


def _self() -> str:
    """How to call this command again (e.g. .venv/bin/lodestone), for printed hints."""
    script = Path(sys.executable).parent / "lodestone"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script) if script.exists() else "lodestone"


@app.command()
def trace(
    batch: Annotated[str, typer.Argument(help="ACTOR/LOT")],
    data_dir: DataDir = None,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Trace to the end clients instead")
    ] = False,
) -> None:
    """Print a batch's genealogy as a tree and its provenance shares per element."""
    from lodestone.bootstrap.stores import build_genealogy_view, build_ledger
    from lodestone.projections import genealogy
    from lodestone.streaming.projector import genealogy_projector

    settings = _settings(data_dir)
    ledger = build_ledger(settings)
    view = build_genealogy_view(settings)
    genealogy_projector(ledger, view).catch_up()
    root_id = ledger.batch(batch).id
    lineage = (
        genealogy.downstream(view, root_id) if downstream else genealogy.upstream(view, root_id)
    )
    links: dict[UUID, list[genealogy.Edge]] = {}
    for edge in lineage.edges:
        links.setdefault(edge.parent_id if downstream else edge.child_id, []).append(edge)

    def label(batch_id: UUID, kg: object = None) -> str:
        row = lineage.batches.get(batch_id)
        if row is None:
            return str(batch_id)
        origin = (
            f" [green]<- {row.origin_kind} {lineage.names[row.origin_facility_id].code}, {row.origin_country}[/]"
            if row.origin_kind and row.origin_facility_id in lineage.names
            else ""
        )
        taken = f" [dim](took {kg} kg)[/]" if kg is not None else ""
        return f"[bold]{row.reference}[/] {row.material} {row.initial_kg} kg {row.status}{taken}{origin}"

    tree = Tree(label(root_id))
    shown: set[UUID] = set()

    def grow(node: Tree, batch_id: UUID, depth: int) -> None:
        for edge in links.get(batch_id, ()):
            nxt = edge.child_id if downstream else edge.parent_id
            branch = node.add(label(nxt, edge.kg))
            if nxt in shown or depth > 12:
                branch.add("[dim]...[/]") if links.get(nxt) else None
                continue
            shown.add(nxt)
            grow(branch, nxt, depth + 1)

    grow(tree, root_id, 0)
    console.print(tree)
    if not downstream:
        table = Table(
            "element", "origin", "country", "quota", "share", "kg", title=f"Provenance of {batch}"
        )
        for element, shares in genealogy.provenance(lineage).items():
            for share in shares:
                table.add_row(
                    element,
                    lineage.names[share.facility_id].code
                    if share.facility_id in lineage.names
                    else share.kind,
                    share.country or "",
                    lineage.names[share.licence_id].code
                    if share.licence_id in lineage.names
                    else "",
                    f"{share.share * 100:.2f} %",
                    str(share.kg),
                )
        console.print(table)
    view.close()
    ledger.close()


@app.command()
def relay(data_dir: DataDir = None) -> None:
    """Publish every recorded event to Kafka (LODESTONE_KAFKA_BOOTSTRAP_SERVERS)."""

    from lodestone.relay.main import main as relay_main

    if data_dir is not None:
        os.environ["LODESTONE_DATA_DIR"] = str(data_dir)
    relay_main()


Projections = Annotated[
    list[str] | None,
    typer.Option(
        "--projection", metavar="NAME", help="A projection to run (repeatable; default: all)"
    ),
]


def _chosen(projections: list[str] | None) -> list[str] | None:
    from lodestone.projections.registry import REGISTRY

    try:
        return [entry.name for entry in REGISTRY.select(projections)] if projections else None
    except KeyError as error:
        raise typer.BadParameter(error.args[0], param_hint="--projection") from None


@app.command()
def project(data_dir: DataDir = None, projection: Projections = None) -> None:
    """Keep the read models up to date from Kafka, one consumer group per projection."""
    from lodestone.projector.main import main as projector_main

    chosen = _chosen(projection)
    if data_dir is not None:
        os.environ["LODESTONE_DATA_DIR"] = str(data_dir)
    projector_main([arg for name in chosen or () for arg in ("--projection", name)])


@app.command()
def rebuild(
    data_dir: DataDir = None,
    from_kafka: Annotated[
        bool,
        typer.Option(
            "--from-kafka", help="Read the Kafka topic from offset 0 instead of the event store"
        ),
    ] = False,
    projection: Projections = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="With --from-kafka: processes the topic's partitions are spread over "
            "(default LODESTONE_REBUILD_WORKERS; 0: one per core)",
        ),
    ] = None,
) -> None:
    """Rebuild read models from position 0 beside the live ones (each alone: the others
    keep their rows and positions) and switch each in when caught up, so readers never
    see an empty or half-built model. Also how a projection is upgraded to a new
    version: run this with the new release before restarting the gateways on it."""
    from lodestone.bootstrap.stores import build_ledger
    from lodestone.projections.registry import REGISTRY

    settings = _settings(data_dir, rebuild_workers=workers)
    ledger = None if from_kafka else build_ledger(settings)
    try:
        for entry in REGISTRY.select(_chosen(projection)):
            _rebuild(settings, entry, ledger)
    finally:
        if ledger is not None:
            ledger.close()


def _rebuild(settings: Settings, entry: Registered, ledger: Ledger | None) -> None:
    """One projection: from the event store (``ledger``), else from Kafka."""
    from lodestone.bootstrap.stores import open_shadow
    from lodestone.projector.main import rebuild_beside as rebuild_from_kafka
    from lodestone.streaming.feeds import NotificationLogFeed
    from lodestone.streaming.rebuild import rebuild_beside

    columns = (f"rebuilding {entry.name}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("events", total=None)
        if ledger is None:
            rebuilt = rebuild_from_kafka(
                settings,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                projection=entry.name,
            )
        else:
            shadow, target = open_shadow(settings, entry)
            bar.update(task, total=ledger.recorder.max_notification_id() or 0)
            rebuilt = rebuild_beside(
                entry.projection(),
                shadow,
                target,
                NotificationLogFeed(ledger.recorder, ledger.mapper),
                progress=lambda n: bar.advance(task, n),
            )
    switched = rebuilt.switched
    if switched.previous_version not in (None, entry.version):
        compared = f"upgraded from version {switched.previous_version} to {entry.version}"
    elif rebuilt.same_as_before is None:
        compared = f"live model was at {switched.positions_before or 'nothing'}"
    else:
        compared = f"same state as before: {rebuilt.same_as_before}"
    console.print(
        f"{entry.name} rebuilt beside the live model from {rebuilt.events} events and "
        f"switched in; fingerprint {rebuilt.fingerprint[:16]}; {compared}"
    )


if __name__ == "__main__":
    app()
