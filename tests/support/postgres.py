"""A throwaway PostgreSQL cluster (Debian's server binaries; `.ci/run` installs them), and the
ledger databases the suites make on it."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support.ledger import migrate
from tests.support.processes import free_port, port_open, start_process, stop_process


def postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    template: str | None = field(default=None, repr=False)
    """A database migrated to the newest revision once, that `create_migrated_database` copies."""

    def create_database(self, template: str | None = None) -> str:
        """A fresh database, empty (or a copy of `template`); returns its URL, written as a
        platform engineer would (`postgresql://user@host:port/db`, no driver named)."""
        name = f"signoff_{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(statement)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def create_migrated_database(self) -> str:
        """A fresh database with the ledger's schema at the newest migration: a copy of one
        migrated once for the session, so a stack does not run every migration again (the
        session's shared stack, and the suites that migrate, still do)."""
        if self.template is None:
            url = self.create_database()
            migrate(url)
            self.template = url.rsplit("/", 1)[1]
        return self.create_database(template=self.template)


def accepting(port: int, user: str) -> Callable[[], bool]:
    """Ready once the server takes a session: its port opens while it still answers "the
    database system is starting up"."""
    is_open = port_open("127.0.0.1", port)

    def probe() -> bool:
        if not is_open():
            return False
        try:
            psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres").close()
        except psycopg.OperationalError:
            return False
        return True

    return probe


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster on a free loopback port, without fsync; stop and delete it after. As
    root, the server runs as the `postgres` system user, since PostgreSQL refuses root."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found; `apt-get install postgresql`.")
    root = Path(tempfile.mkdtemp(prefix="signoff-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o755)
    data = root / "data"
    user = "signoff"
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    cmd = [
        *run_as,
        str(bindir / "postgres"),
        "-D", str(data),
        "-p", str(port),
        "-k", str(root),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "fsync=off",
        "-c", "max_connections=300",
    ]  # fmt: skip
    proc = start_process(
        cmd, log_path=Path(tempfile.mkdtemp()) / "postgres.log",
        ready=accepting(port, user), timeout=60,
    )  # fmt: skip
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=user)
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)
