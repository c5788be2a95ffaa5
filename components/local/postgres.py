"""The shared PostgreSQL cluster: ``initdb`` once, then ``pg_ctl`` start/stop, on 127.0.0.1 only.

The data directory survives restarts of everything else (``down`` stops the server,
it never deletes data). ``initdb`` refuses to run as root, so when this process is
root the cluster belongs to the ``postgres`` user that the Debian package creates,
and every server command runs as that user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from components.local.processes import ProcessRecord, is_zombie
from components.local.state import StateDir

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
DEBIAN_PACKAGE = "postgresql"
SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    """The cluster could not be created, started or reached."""


class MissingBinaryError(PostgresError):
    """A required program is not installed; the message names the Debian package."""


def find_pg_bin() -> Path:
    for candidate in [Path(p).parent for p in filter(None, [shutil.which("pg_ctl")])] + PG_BIN_DIRS:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise MissingBinaryError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin; "
        f"install the Debian package '{DEBIAN_PACKAGE}' (make setup, or: apt-get install {DEBIAN_PACKAGE})"
    )


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    password: str

    @property
    def url(self) -> str:
        return f"postgresql://{quote(self.user)}:{quote(self.password)}@{self.host}:{self.port}/{quote(self.name)}"


# Where the cluster goes when, as root, the checkout is in a directory the server user
# cannot enter (a clone under /root is the usual case). One directory per state dir.
FALLBACK_ROOT = Path("/var/lib/bluegreen")


def _traversable_by(user: str, path: Path) -> bool:
    """Can ``user`` reach files below ``path`` (x on ``path`` and every parent)?"""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return True  # reported later, with the package to install
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == account.pw_uid:
            bit = 0o100
        elif st.st_gid == account.pw_gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


def cluster_dir(state: StateDir) -> Path:
    """The state dir's ``postgres/``, or a directory under :data:`FALLBACK_ROOT` the server user can reach."""
    project_root = state.root.parent.parent
    if os.geteuid() != 0 or not project_root.exists() or _traversable_by(SERVER_USER, project_root):
        return state.postgres_dir
    digest = hashlib.sha256(str(state.root).encode()).hexdigest()[:12]
    return FALLBACK_ROOT / f"{state.root.name}-{digest}"


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live PostgreSQL server started on ``data_dir`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not argv or not Path(os.fsdecode(argv[0])).name.startswith("postgres") or is_zombie(pid):
        return False
    words = [os.fsdecode(a) for a in argv]
    return any(Path(words[i + 1]) == data_dir for i, w in enumerate(words[:-1]) if w == "-D")


class PostgresCluster:
    def __init__(self, state: StateDir, db_name: str, db_user: str) -> None:
        self.state = state
        self.db_name = db_name
        self.db_user = db_user
        self.dir = cluster_dir(state)
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "postgres.log"

    # -- who runs the server ---------------------------------------------------

    @property
    def server_user(self) -> str | None:
        """``postgres`` when we are root (initdb refuses root), else ourselves (None)."""
        return SERVER_USER if os.geteuid() == 0 else None

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        result = subprocess.run(
            command,
            user=self.server_user,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
        )
        if check and result.returncode != 0:
            raise PostgresError(f"{' '.join(command[:2])} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _prepare_dir(self) -> None:
        if self.dir != self.state.postgres_dir:
            FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
            FALLBACK_ROOT.chmod(0o711)
            link = self.state.postgres_dir
            if not link.exists() and not link.is_symlink():
                link.symlink_to(self.dir, target_is_directory=True)  # so `ls .bluegreen/<stack>` still shows it
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        if self.server_user:
            try:
                account = pwd.getpwnam(self.server_user)
            except KeyError:
                raise MissingBinaryError(
                    f"running as root, PostgreSQL must run as the user '{SERVER_USER}', which does not exist; "
                    f"install the Debian package '{DEBIAN_PACKAGE}' (it creates that user)"
                ) from None
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
            for parent in self.dir.parents:
                if parent.stat().st_mode & 0o001 == 0 and parent.stat().st_uid != account.pw_uid:
                    raise PostgresError(
                        f"{parent} is not traversable by the '{SERVER_USER}' user that runs PostgreSQL; "
                        f"chmod o+x {parent} or put the project elsewhere"
                    )

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.state.port("postgres_port")

    def settings(self) -> DatabaseSettings:
        return DatabaseSettings("127.0.0.1", self.port, self.db_name, self.db_user, self.state.secret("db_password"))

    def admin_url(self) -> str:
        password = quote(self.state.secret("postgres_admin_password"))
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/postgres"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def record(self) -> ProcessRecord | None:
        """The running postmaster of this data directory, or None.

        Trusted when it is the one we started, or, when someone restarted the server
        outside the tool (``pg_ctl restart``, a package upgrade), when the pid file's
        process is alive and is a PostgreSQL server of this very data directory: it is
        adopted, so ``status``, ``up`` and ``down`` keep working instead of wedging.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().split("\n")
            pid = int(lines[0])
        except (OSError, ValueError):
            return None
        record = ProcessRecord.from_json(self.state.load().get("postgres_process"))
        if record and record.pid == pid and record.alive():
            return record
        if len(lines) > 1 and Path(lines[1]) == self.data_dir and _is_postmaster_of(pid, self.data_dir):
            with contextlib.suppress(ProcessLookupError):
                adopted = ProcessRecord.of(pid)
                self.state.update(postgres_process=adopted.to_json())
                return adopted
        return None

    def running(self) -> bool:
        return self.record() is not None

    def start(self, progress: Callable[[str], None] = lambda _m: None) -> DatabaseSettings:
        """Create the cluster if needed, start it if stopped, make sure role and database exist."""
        bin_dir = find_pg_bin()
        self.state.ensure()
        self._prepare_dir()
        if not self.initialized:
            progress(f"initdb {self.data_dir}")
            pwfile = self.dir / "initdb.pw"
            pwfile.write_text(self.state.secret("postgres_admin_password") + "\n")
            if self.server_user:
                account = pwd.getpwnam(self.server_user)
                os.chown(pwfile, account.pw_uid, account.pw_gid)
            try:
                self._run(
                    bin_dir / "initdb",
                    "-D",
                    self.data_dir,
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                )
            finally:
                pwfile.unlink(missing_ok=True)
        if not self.running():
            progress(f"starting PostgreSQL on 127.0.0.1:{self.port}")
            # Stale pid file from a killed server: pg_ctl handles it, but only if the pid is gone.
            options = (
                # synchronous_commit stays on (the default): an acknowledged write must survive a crash.
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
            )
            self._run(
                bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-o", options, "-w", "-t", "60", "start"
            )
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            self.state.update(postgres_process=ProcessRecord.of(pid).to_json())
        self._ensure_database()
        return self.settings()

    def _ensure_database(self) -> None:
        settings = self.settings()
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=3)
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresError(f"PostgreSQL on port {self.port} does not accept connections: {exc}") from exc
                time.sleep(0.2)
        with conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [settings.user]).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(settings.user), sql.Literal(settings.password)
                    )
                )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings.name]).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(settings.name), sql.Identifier(settings.user)
                    )
                )

    def stop(self) -> bool:
        """Stop the server if it is ours and running (``fast``: roll back open transactions)."""
        record = self.record()
        if record is None:
            return False
        self._run(find_pg_bin() / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60", "stop", check=False)
        record.stop(timeout_s=10)
        self.state.update(postgres_process=None)
        return True
