"""A PostgreSQL server of our own: the project-local warehouse (``make warehouse``) and the
throwaway servers of the tests.

    python -m lakehouse_dagster.serving.local_server start [--dir .warehouse]   # prints the URL
    python -m lakehouse_dagster.serving.local_server stop  [--dir .warehouse]
    python -m lakehouse_dagster.serving.local_server status

The cluster lives in ``<dir>/data``, listens on 127.0.0.1 only (no Unix socket), on a free port
(55432 if free), trusts local connections of user ``lakehouse`` and holds database
``lakehouse``. Its URL is written to ``<dir>/url``, where the local deployment finds it.

PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user (or
``nobody``), which then owns the data folder.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "lakehouse"
DATABASE = "lakehouse"
PREFERRED_PORT = 55432
_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor in "
    "/usr/lib/postgresql/*/bin. Install PostgreSQL 15 or newer: `apt-get install postgresql` "
    "(Debian, Ubuntu), `dnf install postgresql-server` (Fedora), `brew install postgresql@16` "
    "(macOS); or put the folder of its binaries on PATH."
)


class PostgresNotInstalledError(RuntimeError):
    pass


class PostgresServerError(RuntimeError):
    pass


def find_binaries() -> Path:
    """The folder of initdb, pg_ctl and postgres: on PATH, else Debian's newest version."""
    on_path = [shutil.which(name) for name in _BINARIES]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name.split(".")[0])
    )
    for folder in reversed(candidates):
        if all((Path(folder) / name).is_file() for name in _BINARIES):
            return Path(folder)
    raise PostgresNotInstalledError(INSTALL_HINT)


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise PostgresServerError("no free port on 127.0.0.1")


@dataclass(frozen=True)
class _RunAs:
    """Who runs the server: ourselves, or (as root) an unprivileged user."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None

    @classmethod
    def choose(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid, name)
        raise PostgresServerError("running as root, and neither user 'postgres' nor 'nobody' exists")

    def run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.uid is not None:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)

    def own(self, path: Path) -> None:
        if self.uid is None:
            return
        os.chown(path, self.uid, self.gid)  # type: ignore[arg-type]
        for folder in path.resolve().parents:
            mode = folder.stat().st_mode
            if folder.stat().st_uid != self.uid and not mode & 0o001:
                raise PostgresServerError(
                    f"the server runs as user {self.name!r} (PostgreSQL refuses root), which cannot "
                    f"enter {folder}: choose a folder it can reach with --dir"
                )


class LocalPostgres:
    """A PostgreSQL cluster in ``directory`` (``data``, ``server.log``, ``url``)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.url_file = self.directory / "url"

    @property
    def url(self) -> str | None:
        return self.url_file.read_text(encoding="utf-8").strip() if self.url_file.is_file() else None

    def _pg_ctl(self, *arguments: str) -> subprocess.CompletedProcess:
        return _RunAs.choose().run([str(find_binaries() / "pg_ctl"), "-D", str(self.data), *arguments])

    def running(self) -> bool:
        return self.data.is_dir() and self._pg_ctl("status").returncode == 0

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One start or stop of this folder's server at a time (two ``make run`` at once)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def start(self, port: int | None = None, *, durable: bool = True) -> str:
        """Start the server (creating the cluster first if needed); return its URL. ``durable=False``
        (tests) turns fsync off: faster, and a crash of the machine may lose the data."""
        with self._exclusive():
            return self._start(port, durable=durable)

    def _start(self, port: int | None, *, durable: bool) -> str:
        binaries = find_binaries()
        run_as = _RunAs.choose()
        if self.running() and self.url:
            return self.url
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").is_file():
            self.data.mkdir(parents=True, exist_ok=True)
            os.chmod(self.data, 0o700)
            run_as.own(self.data)
            result = run_as.run(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            if result.returncode != 0:
                raise PostgresServerError(f"initdb failed in {self.data}:\n{result.stderr or result.stdout}")
        port = port or free_port(PREFERRED_PORT)
        if self.log.exists():
            self.log.unlink()
        self.log.touch()
        run_as.own(self.log)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = self._pg_ctl("-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        if result.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise PostgresServerError(f"PostgreSQL did not start in {self.data}:\n{result.stderr}\n{log}")
        url = f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
        self._create_database(binaries, port)
        self.url_file.write_text(url + "\n", encoding="utf-8")
        return url

    def _create_database(self, binaries: Path, port: int) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{port}/postgres", autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
            if not exists:
                connection.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> bool:
        """Stop the server; False if it was not running."""
        if not self.directory.is_dir():
            return False
        with self._exclusive():
            return self._stop()

    def _stop(self) -> bool:
        if not self.running():
            self.url_file.unlink(missing_ok=True)
            return False
        result = self._pg_ctl("-m", "fast", "-w", "stop")
        if result.returncode != 0:
            raise PostgresServerError(f"pg_ctl stop failed for {self.data}:\n{result.stderr}")
        self.url_file.unlink(missing_ok=True)
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dagster.serving.local_server")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", default=".warehouse", help="folder of the cluster (default .warehouse)")
    arguments = parser.parse_args(argv)
    server = LocalPostgres(arguments.dir)
    try:
        if arguments.command == "start":
            url = server.start()
            print(
                f"warehouse: PostgreSQL at {url} (data in {server.data}; stop it with `make warehouse-stop`)"
            )
        elif arguments.command == "stop":
            print("warehouse stopped" if server.stop() else "warehouse was not running")
        else:
            running = server.running()
            print(f"warehouse: {'running at ' + (server.url or '?') if running else 'not running'}")
            return 0 if running else 3
    except (PostgresNotInstalledError, PostgresServerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
