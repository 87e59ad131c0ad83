"""PostgreSQL for the tests: one server per session, a fresh database per test.

The server is, in order of preference: the one named by LODESTONE_POSTGRES_URL (its
role needs CREATEDB); a throwaway cluster started from the local PostgreSQL binaries
(Debian's ``postgresql`` package); a container, where Docker answers and testcontainers
is installed. With none of them the postgres tests fail, never silently skip.

Register these fixtures once, from the root conftest:
``pytest_plugins = ["tests.integration.postgres_fixture"]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from lodestone.devtools.postgres_local import LocalPostgres, PostgresNotFound, find_binaries

URL_VARIABLE = "LODESTONE_POSTGRES_URL"
CONTAINER_IMAGE = "postgres:15"  # the major version Debian 12 ships


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Where the session's PostgreSQL server is; the tests make their own databases."""
    if url := os.environ.get(URL_VARIABLE):
        yield url
        return
    try:
        bin_dir = find_binaries()
    except PostgresNotFound as missing:
        if not _docker_answers():
            pytest.fail(f"{missing}; and no Docker for a container either")
        yield from _container_url()
        return
    # The shared server is never killed (crash tests start their own): without fsync it
    # still survives any process crash, and cloning a database per test is cheap.
    server = LocalPostgres(bin_dir=bin_dir, settings={"fsync": "off", "full_page_writes": "off"})
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def make_postgres_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases on the session's server, each dropped (with
    whatever connections are left on it) when the test ends. Returns their URLs."""
    created: list[str] = []

    def make() -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return with_database(postgres_url, name)

    yield make
    if created:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for name in created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture
def local_postgres() -> Iterator[Callable[[], LocalPostgres]]:
    """A factory of private, started servers a test may kill and restart. Needs the
    local binaries: a server we did not start is not ours to kill."""
    try:
        bin_dir = find_binaries()
    except PostgresNotFound as missing:
        if os.environ.get(URL_VARIABLE):
            pytest.skip(f"crash tests need a local server: {missing}")
        pytest.fail(str(missing))
    servers: list[LocalPostgres] = []

    def make() -> LocalPostgres:
        server = LocalPostgres(bin_dir=bin_dir)  # durable defaults: these get killed
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _container_url() -> Iterator[str]:
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        pytest.fail(
            "no local PostgreSQL binaries and testcontainers is not installed: "
            "apt-get install -y postgresql, or pip install testcontainers[postgres]"
        )
    with PostgresContainer(
        CONTAINER_IMAGE, username="lodestone", password="lodestone", dbname="lodestone"
    ) as container:
        url = container.get_connection_url(driver=None)
        deadline = time.monotonic() + 60
        while True:  # the port opens before the server takes logins
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
