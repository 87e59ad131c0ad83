"""``lodestone kafka up|down|status``: a local single-node Kafka broker that outlives the
command, for development and benchmarks on machines without Docker.

``up`` prints only the bootstrap address on stdout (messages go to stderr), so
``export KAFKA_BOOTSTRAP_SERVERS=$(lodestone kafka up)`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lodestone.bootstrap.settings import Settings
from lodestone.devtools.kafka_local import (
    LocalKafka,
    LocalKafkaError,
    broker_answers,
    read_state,
    stop_detached,
)

kafka_app = typer.Typer(
    help="A local single-node Apache Kafka broker (KRaft) from the official jars.",
    no_args_is_help=True,
)
err = Console(stderr=True)

KafkaDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Broker directory (default: the Lodestone data directory + /kafka)"
    ),
]


def _kafka_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    # Settings fills its fields from LODESTONE_* variables, which mypy cannot see.
    return Settings().data_dir / "kafka"  # type: ignore[call-arg]


@kafka_app.command()
def up(
    data_dir: KafkaDir = None,
    heap: Annotated[str, typer.Option(help="JVM heap, e.g. 512m or 1g")] = "512m",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker")] = 120.0,
) -> None:
    """Start a broker in the background (jars fetched once) and print its address."""
    directory = _kafka_dir(data_dir)
    running = read_state(directory)
    if running is not None:
        err.print(f"Kafka already running in {directory} (pid {running.pid}).")
        typer.echo(running.bootstrap)
        return
    kafka = LocalKafka(heap=heap, start_timeout=timeout)
    try:
        with err.status("Fetching the Kafka broker jars (Maven; the first time only)..."):
            kafka.ensure_jars()
        with err.status(f"Starting Kafka in {directory}..."):
            kafka.start(directory)
        state = kafka.detach()
    except LocalKafkaError as error:
        kafka.close()
        err.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    err.print(
        f"[green]Kafka is up[/] (pid {state.pid}, log {directory / 'broker.log'}); "
        f"stop it with: lodestone kafka down --data-dir {directory}"
    )
    typer.echo(state.bootstrap)


@kafka_app.command()
def down(
    data_dir: KafkaDir = None,
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL")] = 30.0,
) -> None:
    """Stop the broker that `up` started in the directory; its data stays."""
    directory = _kafka_dir(data_dir)
    stopped = stop_detached(directory, timeout)
    if stopped is None:
        err.print(f"No Kafka running in {directory}.")
    else:
        err.print(f"Stopped Kafka (pid {stopped.pid}) at {stopped.bootstrap}.")


@kafka_app.command()
def status(data_dir: KafkaDir = None) -> None:
    """Say whether the broker in the directory runs and answers; exit 1 if not."""
    directory = _kafka_dir(data_dir)
    state = read_state(directory)
    if state is None:
        err.print(f"No Kafka running in {directory}.")
        raise typer.Exit(1)
    if not broker_answers(state.bootstrap):
        err.print(f"[yellow]Kafka (pid {state.pid}) runs but does not answer yet.[/]")
        raise typer.Exit(1)
    err.print(f"Kafka (pid {state.pid}) answers at:")
    typer.echo(state.bootstrap)
