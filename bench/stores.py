"""Backend stores for the benchmark's `mlflow server`: SQLite files or a private PostgreSQL
cluster, seeded once and copied for every contender, and the server process itself.

PostgreSQL is Debian's package (installed with apt-get when missing); the cluster lives in a
temporary directory, listens only on 127.0.0.1 and is stopped when the benchmark ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, process: subprocess.Popen[bytes] | None, log: Path | None, *, limit: float = 180
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"process exited while waiting for {url}:\n{tail}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as answer,  # noqa: S310 (loopback)
        ):
            if answer.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready within {limit:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process group we started (the server's workers are its children)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=10)


class Backend(Protocol):
    name: str

    def new_database(self, label: str) -> str: ...
    def copy(self, seed_uri: str, label: str) -> str: ...
    def drop(self, uri: str) -> None: ...
    def close(self) -> None: ...


class SqliteBackend:
    """One SQLite file per store; a copy is a file copy."""

    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_database(self, label: str) -> str:
        return f"sqlite:///{self.root / f'{label}.db'}"

    def copy(self, seed_uri: str, label: str) -> str:
        target = self.root / f"{label}.db"
        shutil.copyfile(seed_uri.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"

    def drop(self, uri: str) -> None:
        Path(uri.removeprefix("sqlite:///")).unlink(missing_ok=True)

    def close(self) -> None:
        pass


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    print("PostgreSQL not found: installing Debian's package", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True)
    return _pg_bin()


class PostgresBackend:
    """A private cluster on a loopback port; a copy is `CREATE DATABASE ... TEMPLATE`."""

    name = "postgresql"

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.data = root / "pgdata"
        self.port = free_port()
        # initdb refuses to run as root: the cluster belongs to Debian's `postgres` user.
        self.as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.mkdir(parents=True, exist_ok=True)
        self.data.mkdir()
        if self.as_user:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "bench", "--auth=trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "log"),
            "-w",
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def _uri(self, database: str) -> str:
        # SQLAlchemy 2.1 defaults to psycopg 3: name the driver the bench installs.
        return f"postgresql+psycopg2://bench@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self._uri("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(sql))
        engine.dispose()

    def new_database(self, label: str) -> str:
        self._admin(f'CREATE DATABASE "{label}"')
        return self._uri(label)

    def copy(self, seed_uri: str, label: str) -> str:
        self._admin(f'CREATE DATABASE "{label}" TEMPLATE "{seed_uri.rsplit("/", 1)[1]}"')
        return self._uri(label)

    def drop(self, uri: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{uri.rsplit("/", 1)[1]}" WITH (FORCE)')

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def backend(name: str, root: Path) -> Backend:
    if name == "sqlite":
        return SqliteBackend(root)
    if name in ("postgres", "postgresql"):
        return PostgresBackend(root)
    raise SystemExit(f"unknown backend {name!r} (sqlite or postgresql)")


@contextlib.contextmanager
def mlflow_server(store_uri: str, artifacts: Path, log: Path, workers: int) -> Iterator[str]:
    """A real `mlflow server` (the registry included) on a loopback port; its URL."""
    port = free_port()
    command = [
        str(VENV_BIN / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", store_uri,
        "--artifacts-destination", str(artifacts),
        "--workers", str(workers),
    ]  # fmt: skip
    # The GenAI job runner (a huey consumer beside the server) is not what is measured here.
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process, log)
        yield url
    finally:
        stop(process)


# -- end state ------------------------------------------------------------------------

# Values that differ between contenders by nature (a timestamp, a sentence): compared by
# presence only.
PRESENCE_ONLY = {"governance.deleted_at", "governance.deleted_reason"}
# A deletion claim (`governance.deletion_claim.<sweep id>`) names the sweep that wrote it and
# its deadline: another id in every run, and the floor (no sweep) has none. Not compared.
CLAIM_PREFIX = "governance.deletion_claim."
# The invocation that registered a version and when its card went out (who announces a
# promotion: shared/engine/handlers/promotion.py): another id and moment in every run, and
# neither the floor nor the baseline has an invocation. Not compared.
INVOCATION_VERSION_TAGS = {
    "governance.registered_by",
    "governance.registered_until",
    "governance.announced_at",
}


def end_state(uri: str) -> dict[str, Any]:
    """What governance changed, read straight from the store: comparable across contenders."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    q = sqlalchemy.text
    with engine.connect() as c:
        rows = c.execute(q("SELECT run_uuid, lifecycle_stage FROM runs"))
        runs = {row[0]: row[1] for row in rows}
        tags: dict[str, dict[str, str]] = {}
        rows = c.execute(q("SELECT run_uuid, key, value FROM tags WHERE key NOT LIKE 'mlflow.%'"))
        for run, key, value in rows:
            if key.startswith(CLAIM_PREFIX):
                continue
            tags.setdefault(run, {})[key] = "<set>" if key in PRESENCE_ONLY else value
        versions = sorted(
            (n, int(v), r or "")
            for n, v, r in c.execute(q("SELECT name, version, run_id FROM model_versions"))
        )
        version_tags = sorted(
            tuple(row)
            for row in c.execute(q("SELECT name, version, key, value FROM model_version_tags"))
            if row[2] not in INVOCATION_VERSION_TAGS
        )
        aliases = sorted(
            tuple(row)
            for row in c.execute(q("SELECT name, alias, version FROM registered_model_aliases"))
        )
    engine.dispose()
    return {
        "runs": runs,
        "tags": tags,
        "versions": versions,
        "version_tags": version_tags,
        "aliases": aliases,
    }


def differences(a: dict[str, Any], b: dict[str, Any], limit: int = 5) -> list[str]:
    """Human-readable differences between two end states (empty: identical)."""
    out: list[str] = []
    for run in sorted(set(a["runs"]) | set(b["runs"])):
        if a["runs"].get(run) != b["runs"].get(run):
            out.append(f"run {run}: {a['runs'].get(run)} vs {b['runs'].get(run)}")
        if a["tags"].get(run, {}) != b["tags"].get(run, {}):
            out.append(f"run {run} tags: {a['tags'].get(run)} vs {b['tags'].get(run)}")
    for key in ("versions", "version_tags", "aliases"):
        if a[key] != b[key]:
            out.append(f"{key}: {a[key]} vs {b[key]}")
    shown = [line if len(line) <= 400 else line[:400] + " …" for line in out[:limit]]
    return shown + ([f"... {len(out) - limit} more"] if len(out) > limit else [])
