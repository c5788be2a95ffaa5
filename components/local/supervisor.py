"""The stack's supervisor: it restarts a crashed part, the way a cloud replaces a failed task.

One detached process per running stack (:func:`main`, started with ``python -c``),
started by ``up`` (:func:`ensure_supervisor`), recorded in ``state.json`` under
``supervisor`` by pid and start time, and stopped by ``down`` before anything else
(:func:`stop_supervisor`), so it never restarts what ``down`` is stopping.

It watches the processes the stack recorded: PostgreSQL, HAProxy and each colour's
app. A part whose record is present but whose process is gone has crashed (a part
stopped on purpose has no record: ``down``, a scale-down and ``pulumi destroy`` clear
it), and is restarted through the code ``up`` runs for it
(``LocalEnvironment.ensure_database`` / ``ensure_load_balancer`` / ``ensure_color``),
with the config that part was last applied with (``applied`` in ``state.json``,
written by those methods), never a stack file edited since. Each restart holds the
stack's state lock, so it never races an ``up`` or a ``deploy``; if the lock is busy
it tries again 0.1 s later, and re-checks under the lock that the part is still dead.

Crash loops back off: the n-th restart of a part within :data:`RESTART_WINDOW_S`
waits :data:`BACKOFF_S`\\[n] after the previous one, and after :data:`RESTART_LIMIT`
restarts in that window the supervisor gives up on the part and records why (the
cause read from its log). ``up`` clears a give-up. What happened per part goes to
``restarts`` in ``state.json``, which ``status`` shows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.config import COLORS, StackConfig
from components.local.apps import CAUSE_LINE, START_MARKER
from components.local.processes import ProcessRecord, start_time_of
from components.local.state import StateBusyError, StateDir

if TYPE_CHECKING:
    from components.local.runtime import LocalEnvironment

REPO = Path(__file__).resolve().parents[2]
PARTS = ("postgres", "haproxy", *COLORS)  # restart order: what the next one needs comes first
POLL_S = 0.5  # how often the recorded parts are read again (a death wakes the loop at once)
LOCK_RETRY_S = 0.1  # how soon a restart is tried again when an `up` or `deploy` holds the lock
RESTART_LIMIT = 5  # this many restarts of one part within RESTART_WINDOW_S, then give up on it
RESTART_WINDOW_S = 60.0
BACKOFF_S = (0.0, 1.0, 2.0, 4.0, 8.0)  # wait after the previous restart, by restarts in the window
STOP_TIMEOUT_S = 10.0
LOG_NAME = "supervisor.log"
# Not `-m components.local.supervisor`: the package imports this module first, and runpy warns.
ENTRY = "import sys; from components.local.supervisor import main; sys.exit(main())"
CAUSE_MAX = 500


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def part_record(data: Mapping[str, Any], part: str) -> ProcessRecord | None:
    """The process the stack recorded for ``part`` (alive or not); None = not meant to run."""
    if part == "postgres":
        raw = data.get("postgres_process")
    elif part == "haproxy":
        raw = data.get("haproxy_process")
    else:
        raw = (data.get("apps", {}).get(part) or {}).get("process")
    return ProcessRecord.from_json(raw)


def supervisor_record(data: Mapping[str, Any]) -> ProcessRecord | None:
    return ProcessRecord.from_json((data.get("supervisor") or {}).get("process"))


def record_applied(state: StateDir, part: str, config: StackConfig, python: str) -> None:
    """Remember the config ``part`` now runs with: what the supervisor restarts it with."""
    data = state.load()
    data.setdefault("applied", {})[part] = {"config": config.to_raw(), "python": python}
    state.save(data)


def log_path(state: StateDir) -> Path:
    return state.logs_dir / LOG_NAME


# -- what `up`, `down` and `status` call ---------------------------------------------------


def ensure_supervisor(env: LocalEnvironment) -> str:
    """After ``up``: one supervisor runs (started if gone), or none when ``supervise`` is false.

    ``up`` is a person stepping in, so give-ups are cleared and every part gets its
    restarts again.
    """
    state = env.state
    with state.locked():
        data = state.load()
        for info in (data.get("restarts") or {}).values():
            info.update(gave_up=None, recent=[])
        record = supervisor_record(data)
        alive = record is not None and record.alive()
        if not env.settings.supervise:
            if alive and record is not None:
                record.stop(timeout_s=STOP_TIMEOUT_S)
            data["supervisor"] = None
            state.save(data)
            stopped = f"; stopped pid {record.pid}" if alive and record else ""
            return f"off (bluegreen:local supervise: false){stopped}"
        if alive and record is not None:
            state.save(data)
            return f"running (pid {record.pid})"
        try:
            started = _spawn(state, env.config.stack)
        except OSError as exc:  # ProcessLookupError too: it exited at once
            state.save(data)
            return f"did not start ({exc}); see {log_path(state)}"
        data["supervisor"] = {"process": started.to_json(), "started_at": now_iso(), "log": str(log_path(state))}
        state.save(data)
        # The new process waits for this lock, then checks it is the one recorded.
    return f"started (pid {started.pid}, log {log_path(state)})"


def _spawn(state: StateDir, stack: str) -> ProcessRecord:
    state.logs_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", ENTRY, "--project-dir", str(state.root.parent.parent)]
    with open(log_path(state), "ab") as log:
        # cwd = the repository: `python -c` puts it first on sys.path, and nothing leaks into
        # the PYTHONPATH of the apps the supervisor starts.
        process = subprocess.Popen(
            [*argv, "--stack", stack],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ProcessRecord.of(process.pid)


def stop_supervisor(state: StateDir) -> bool:
    """Stop the stack's supervisor (``down`` calls this first, holding the lock); True if one ran."""
    with state.locked():
        data = state.load()
        record = supervisor_record(data)
        stopped = bool(record and record.alive() and record.stop(timeout_s=STOP_TIMEOUT_S))
        if data.get("supervisor") is not None:
            state.update(supervisor=None)
    return stopped


def restart_summary(info: Mapping[str, Any] | None) -> dict[str, Any]:
    info = info or {}
    return {
        "count": int(info.get("count", 0)),
        "last_at": info.get("last_at"),
        "last_cause": info.get("last_cause"),
        "failed": int(info.get("failed", 0)),
        "last_error": info.get("last_error"),
        "gave_up": info.get("gave_up"),
    }


def annotate_status(status: dict[str, Any], state: StateDir, enabled: bool) -> None:
    """Add to ``status()``: whether the supervisor runs, and per part its restarts."""
    data = state.load()
    record = supervisor_record(data)
    running = record is not None and record.alive()
    status["supervisor"] = {
        "enabled": enabled,
        "running": running,
        "pid": record.pid if running and record else None,
        "started_at": (data.get("supervisor") or {}).get("started_at") if running else None,
        "log": str(log_path(state)),
    }
    restarts = data.get("restarts") or {}
    for color in COLORS:
        status["colors"][color]["restarts"] = restart_summary(restarts.get(color))
    for part in ("haproxy", "postgres"):
        status[part]["restarts"] = restart_summary(restarts.get(part))


# -- the supervisor process ------------------------------------------------------------------


class Supervisor:
    """The loop: wait for a recorded process to die (or POLL_S), then restart what is due."""

    def __init__(self, project_root: Path | str, stack: str) -> None:
        self.project_root = Path(project_root).resolve()
        self.stack = stack
        self.state = StateDir(self.project_root, stack)
        self.me = ProcessRecord.of(os.getpid())
        self.stopping = False
        self.exit_status: dict[int, int] = {}  # our own children (apps we restarted), reaped
        self.waiting_logged: set[str] = set()
        self.next_due: float | None = None  # when the next backed-off restart is due (time.time())
        self._alive: list[ProcessRecord] = []
        self._pidfds: dict[ProcessRecord, int] = {}
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    def log(self, message: str) -> None:
        print(f"{now_iso()} [{self.stack}] {message}", flush=True)

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        signal.set_wakeup_fd(self._wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        with self.state.locked():  # `up` records us while it holds the lock
            if not self._is_me(self.state.load()):
                self.log(f"pid {self.me.pid} is not the supervisor state.json records; exiting")
                return 0
        self.log(f"supervising {self.state.root} (pid {self.me.pid})")
        while not self.stopping:
            try:
                timeout_s = self._pass()
            except Exception:  # a bad moment (an unreadable state file): log it, keep watching
                self.log(f"error in the supervisor loop, retrying:\n{traceback.format_exc()}")
                timeout_s = POLL_S
            if timeout_s is None:
                return 0
            self._wait(self._alive, timeout_s)
        self.log("stopping (signal)")
        return 0

    def _pass(self) -> float | None:
        """One look at the stack: restart what is due; how long to wait, or None to exit."""
        data = self.state.load()
        if not self._is_me(data):
            self.log("state.json names another supervisor (or none): exiting")
            return None
        recorded = {part: record for part in PARTS if (record := part_record(data, part))}
        if not recorded:
            self.log("no part of the stack is recorded as running: the stack is down; exiting")
            self._forget_me()
            return None
        self._reap()
        dead = [part for part, record in recorded.items() if not record.alive()]  # in PARTS order
        self._alive = [record for part, record in recorded.items() if part not in dead]
        self.next_due = None
        for part in dead:
            if self.stopping:
                break
            # Read again: the restart just before (HAProxy, say) is what this one needs.
            if self._consider(part, self.state.load()) == "busy":
                return LOCK_RETRY_S
        if self.next_due is not None:
            return min(POLL_S, max(0.05, self.next_due - time.time()))
        return POLL_S

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _is_me(self, data: Mapping[str, Any]) -> bool:
        return supervisor_record(data) == self.me

    def _forget_me(self) -> None:
        with contextlib.suppress(StateBusyError), self.state.locked(blocking=False):
            if self._is_me(self.state.load()):
                self.state.update(supervisor=None)

    def _reap(self) -> None:
        """Collect the exit status of apps we started, for the cause (and so no zombie stays)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.exit_status[pid] = status
            if len(self.exit_status) > 100:
                self.exit_status.pop(next(iter(self.exit_status)))

    def _wait(self, alive: list[ProcessRecord], timeout_s: float) -> None:
        """Sleep until ``timeout_s``, a signal, or the death of a watched process (a pidfd)."""
        wanted = set(alive)
        for record in list(self._pidfds):
            if record not in wanted:
                os.close(self._pidfds.pop(record))
        for record in wanted - set(self._pidfds):
            try:
                fd = os.pidfd_open(record.pid)
            except OSError:
                continue
            if record.alive():  # the pid still names the recorded process, not a reused one
                self._pidfds[record] = fd
            else:
                os.close(fd)
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select([self._wake_r, *self._pidfds.values()], [], [], timeout_s)
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)

    # -- one dead part ---------------------------------------------------------------------

    def _consider(self, part: str, data: Mapping[str, Any]) -> str:
        """Restart ``part`` if it is due: "restarted", "failed", "busy", "waiting", "gave up"."""
        info = (data.get("restarts") or {}).get(part) or {}
        if info.get("gave_up"):
            return "gave up"
        now = time.time()
        recent = [t for t in info.get("recent", []) if now - t < RESTART_WINDOW_S]
        if recent and len(recent) < RESTART_LIMIT and now < (due := recent[-1] + BACKOFF_S[len(recent)]):
            self.next_due = min(due, self.next_due or due)
            return "waiting"
        if part in COLORS and not self._haproxy_up(data):
            if part not in self.waiting_logged:
                self.log(f"{part}: its process is gone; waiting for HAProxy to run before restarting it")
                self.waiting_logged.add(part)
            return "waiting"
        applied = (data.get("applied") or {}).get(part)
        try:
            env = self._environment(applied)
        except Exception as exc:  # an applied config this code cannot read: say so, once
            reason = f"no usable applied config ({exc}); run up"
            return self._locked(part, lambda: self._give_up(part, reason))
        if env is None:
            return self._locked(part, lambda: self._give_up(part, "no applied config recorded; run up"))
        return self._locked(part, lambda: self._restart(part, env), env.state)

    def _locked(self, part: str, action: Callable[[], str], state: StateDir | None = None) -> str:
        state = state or self.state
        try:
            with state.locked(blocking=False):
                data = state.load()
                record = part_record(data, part)
                if record is None or record.alive():
                    return "gone"  # stopped on purpose, or already started again by `up`
                return action()
        except StateBusyError:
            return "busy"

    def _environment(self, applied: Mapping[str, Any] | None) -> LocalEnvironment | None:
        from components.local.runtime import LocalEnvironment

        if not applied:
            return None
        config = StackConfig.parse(applied["config"], self.stack)
        return LocalEnvironment(config, self.project_root, progress=self.log, python=str(applied.get("python", "")))

    def _haproxy_up(self, data: Mapping[str, Any]) -> bool:
        record = part_record(data, "haproxy")
        return record is not None and record.alive()

    def _restart(self, part: str, env: LocalEnvironment) -> str:
        """Under the lock: record why it died, start it the way `up` does, record the outcome."""
        data = env.state.load()
        record = part_record(data, part)
        assert record is not None
        info = self._info(data, part)
        now = time.time()
        recent = [t for t in info["recent"] if now - t < RESTART_WINDOW_S]
        cause = self.cause(part, record, env)
        if len(recent) >= RESTART_LIMIT:
            return self._give_up(part, f"{len(recent)} restarts within {RESTART_WINDOW_S:.0f} s; last: {cause}")
        self.waiting_logged.discard(part)
        self.log(f"{part}: {cause}; restarting ({len(recent) + 1} within {RESTART_WINDOW_S:.0f} s)")
        started = time.monotonic()
        self.clear_leftovers(part, record, env)
        try:
            if part == "postgres":
                result = env.ensure_database()
            elif part == "haproxy":
                result = env.ensure_load_balancer()
            else:
                result = env.ensure_color(part)
        except Exception as exc:  # whatever a start raises, the supervisor stays up
            error = str(exc).strip() or type(exc).__name__
            self.log(f"{part}: restart failed: {error}")
            if not isinstance(exc, RuntimeError):
                self.log(traceback.format_exc())
            self._save(env.state, part, [*recent, now], failed=1, last_error=error[:CAUSE_MAX], last_cause=cause)
            return "failed"
        took = time.monotonic() - started
        self.log(f"{part}: {result} in {took:.2f} s")
        self._save(env.state, part, [*recent, now], count=1, last_at=now_iso(), last_cause=cause, last_error=None)
        return "restarted"

    def _give_up(self, part: str, reason: str) -> str:
        self.log(f"{part}: giving up: {reason}; run `up` to start it again")
        self._save(self.state, part, None, gave_up=f"{now_iso()}: {reason}"[:CAUSE_MAX])
        return "gave up"

    @staticmethod
    def _info(data: Mapping[str, Any], part: str) -> dict[str, Any]:
        info = dict((data.get("restarts") or {}).get(part) or {})
        info.setdefault("recent", [])
        return info

    def _save(self, state: StateDir, part: str, recent: list[float] | None, **changes: Any) -> None:
        data = state.load()
        info = self._info(data, part)
        for key in ("count", "failed"):
            info[key] = int(info.get(key, 0)) + int(changes.pop(key, 0))
        info.update(changes)
        if recent is not None:
            info["recent"] = recent
        data.setdefault("restarts", {})[part] = info
        state.save(data)

    def clear_leftovers(self, part: str, record: ProcessRecord, env: LocalEnvironment) -> None:
        """What the dead process leaves behind must not stand in the way of the new one.

        An app's or HAProxy's workers outlive a killed master for a while, still holding the
        port without serving it well (a gunicorn worker that lost its master stops accepting
        but keeps its listening socket, so connections the kernel hands it hang): they are
        in the master's process group and get SIGKILL, as a cloud tears down a failed
        task. PostgreSQL's backends exit by themselves once they notice the postmaster is
        gone (waited for, up to 5 s); its ``postmaster.pid`` then still names the dead
        postmaster, which a new server refuses while that pid exists, and a zombie
        exists until init reaps it (1.4 s here): with no process left in the data
        directory the file is stale, and is removed, as PostgreSQL itself would.
        """
        if part == "postgres":
            data_dir = env.postgres.data_dir.resolve()
            deadline = time.monotonic() + 5.0
            while processes_in(str(data_dir)) and time.monotonic() < deadline:
                time.sleep(0.05)
            lock_file = data_dir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):
                if int(lock_file.read_text().split("\n", 1)[0]) == record.pid and not processes_in(str(data_dir)):
                    lock_file.unlink()
                    self.log(f"postgres: removed the stale {lock_file.name} of pid {record.pid}")
            return
        if start_time_of(record.pid) not in (None, record.started):
            return  # the pid names another process now (reused): its group is not the dead one's
        left = group_members(record.pid)
        if left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pid, signal.SIGKILL)
                self.log(f"{part}: killed what was left of its process group {record.pid}: pids {left}")

    # -- why it died -----------------------------------------------------------------------

    def cause(self, part: str, record: ProcessRecord, env: LocalEnvironment) -> str:
        """``pid N exited`` (with its status if it was our child), plus its log's last error line."""
        status = self.exit_status.get(record.pid)
        how = ""
        if status is not None:
            if os.WIFSIGNALED(status):
                how = f" (killed by {signal.Signals(os.WTERMSIG(status)).name})"
            else:
                how = f" (exit status {os.WEXITSTATUS(status)})"
        name = {"postgres": "PostgreSQL", "haproxy": "HAProxy"}.get(part, f"the {part} app")
        text = f"{name} pid {record.pid} exited{how}"
        if part == "postgres":
            line = last_error_line(env.postgres.log_file, PG_READY)
        elif part in COLORS:
            line = last_error_line(env.apps[part].log_file, START_MARKER, or_last=True)
        else:
            line = None  # HAProxy runs daemonized and logs requests only
        return (f"{text}; its log: {line}" if line else text)[:CAUSE_MAX]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in "ZX":
                    found.append(int(entry))
    return found


def processes_in(directory: str) -> list[int]:
    """Pids whose working directory is ``directory`` (PostgreSQL's processes run in their data dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/cwd") == directory:
                    found.append(int(entry))
    return found


PG_READY = "database system is ready to accept connections"  # PostgreSQL's line once a start is done
# apps.CAUSE_LINE, plus a Python exception's last line (``RuntimeError: ...``), which it misses.
ERROR_LINE = re.compile(rf"{CAUSE_LINE.pattern}|^[\w.]*(Error|Exception):", re.IGNORECASE)


def last_error_line(path: Path, since: str, or_last: bool = False, tail_bytes: int = 65536) -> str | None:
    """The last line naming an error after the last line containing ``since`` (the last start).

    Older errors belong to an earlier run and would only mislead. ``or_last``: failing
    that, the run's last line (what an app printed as it died is usually the cause).
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - tail_bytes))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    start = max((i for i, line in enumerate(lines) if since in line), default=-1) + 1
    run = [line.strip() for line in lines[start:] if line.strip()]
    found = [line for line in run if ERROR_LINE.search(line) and not line.startswith("Traceback")]
    return found[-1] if found else (run[-1] if run and or_last else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bluegreen-supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", required=True)
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    return Supervisor(args.project_dir, args.stack).run()
