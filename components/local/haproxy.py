"""HAProxy as the shared load balancer: rendered config, the admin socket, and the switch.

Facts this module is built on (DESIGN.md, "Local target facts", HAProxy 2.6):

- the prod and preview frontends pick their backend from a map file
  (``use_backend %[str(prod),map(live.map)]``); a switch is ``set map`` on the admin
  socket, which drops no request, and is then written to the map file, because a
  reload or restart reads the file again;
- ``set map`` accepts any name, so the target backend is validated first and must be
  ``UP`` by HAProxy's own health check;
- ``option idle-close-on-response`` keeps reloads from cutting keep-alive requests, and
  ``haproxy -c`` checks every config before it is used (a broken one is otherwise
  kept silently);
- a master-worker reload whose new config cannot bind keeps the old worker serving and
  tells no one: a reload counts only once a new worker answers on the admin socket and
  listens on the configured ports, and a port another program holds is refused before;
- per-request timings go in :data:`LOG_FORMAT` into an in-memory ring (:data:`LOG_RING`)
  that the pipeline's HAProxy metrics source streams over the admin socket
  (``show events``). The admin socket is mode 600 in a 700 directory, so only the
  stack's owner (and root) can read the log, and nobody can write to it: HAProxy alone
  fills the ring. (UDP let any local user forge lines; a unix datagram socket lost 2-47%
  of lines at 200-2,000 req/s, its queue being 10 datagrams deep.)

The preview frontend admits only ``preview_cidrs`` (an ACL on ``src``; others get 403).

Every backend adds :data:`SERVED_BY_HEADER` (the colour that served) to its answers: the
pipeline verifies a switch by it, whatever the app says or does not say.

A gradual switch (``live_traffic_percent`` < 100) routes prod to ``be_split``, which
holds both colours' servers, and sets their weights on the socket (``set weight``).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.config import COLORS
from components.local.processes import OWNER_ENV, ProcessRecord, owned_processes, owner_mark, port_in_use, stop_all
from components.local.settings import PortPlan
from components.local.sockets import holder_of, listening_on, process_tree
from components.local.state import StateDir

DEBIAN_PACKAGE = "haproxy"
# Where Debian puts it when /usr/sbin is not on PATH (a non-root shell).
HAPROXY_CANDIDATES = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
SPLIT_BACKEND = "be_split"
APP_SERVER = "app"
# Every answer names the colour whose backend served it, so traffic verification asks the
# load balancer, never the app (which may say nothing about colours).
SERVED_BY_HEADER = "X-Bluegreen-Served-By"

# One line per request, raw (no syslog header), into the ring LOG_RING. ``at`` is when HAProxy
# logged it (the request's end, ms since the epoch); times in ms, ``tr_ms`` is -1 when the
# server never answered. Parse with :func:`parse_log_line`.
LOG_PREFIX = "bluegreen "
LOG_FORMAT = (
    LOG_PREFIX + "at=%[date(0,ms)] frontend=%f backend=%b server=%s status=%ST tr_ms=%Tr tt_ms=%Tt ta_ms=%Ta bytes=%B"
)
LOG_RING = "bluegreen_requests"
# ~25,000 lines: over 10 s at 2,000 req/s for a reader that falls behind; per worker process.
LOG_RING_BYTES = 4 * 1024 * 1024
_LOG_FIELD = re.compile(r"(\w+)=(\S*)")
# L7 retries (``retry-on empty-response``) only for methods that may run twice (RFC 9110
# 9.2.2): a POST that got no answer may have been processed, so it is not replayed.
IDEMPOTENT_ONLY = "    http-request disable-l7-retry unless { method GET HEAD OPTIONS TRACE PUT DELETE }"
# How long a reload may take before it counts as failed (a new worker normally answers in ~0.1 s).
RELOAD_TIMEOUT_S = 10.0


class HaproxyError(RuntimeError):
    """HAProxy refused a config, a command, or a switch."""


class MissingHaproxyError(HaproxyError):
    """The haproxy binary is missing; the message names the Debian package."""


class PortBusyError(HaproxyError):
    """A port the config names is held by another program; the message names the port and the holder."""


def check_passed(status: str, check_status: str) -> bool:
    """HAProxy's own check says the server is up: status UP and the last check passed.

    ``* L7OK`` means a check is running and the previous one passed; a server starts UP
    before its first check (``INI``), which is not a pass yet.
    """
    return status == "UP" and check_status.removeprefix("* ").startswith("L7OK")


def backend_of(color: str) -> str:
    return f"be_{color}"


def color_of(backend: str, server: str = "") -> str | None:
    """The colour a log line or stat row belongs to (split backend: the server's name)."""
    if backend == SPLIT_BACKEND:
        return server if server in COLORS else None
    name = backend.removeprefix("be_")
    return name if name in COLORS else None


@dataclass(frozen=True)
class RequestLog:
    """One request as HAProxy logged it."""

    frontend: str
    backend: str
    server: str
    status: int
    tr_ms: int
    tt_ms: int
    ta_ms: int
    bytes: int
    at_ms: int = -1  # when HAProxy logged it, ms since the epoch; -1: not in the line

    @property
    def color(self) -> str | None:
        return color_of(self.backend, self.server)


def parse_log_line(line: str | bytes) -> RequestLog | None:
    """A line in :data:`LOG_FORMAT`, or None if it is not one (HAProxy's own messages share the ring).

    The line must start with :data:`LOG_PREFIX`: HAProxy's notices quote what servers
    said (a health check's reason phrase), which must not pass for a request.
    """
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    if not text.startswith(LOG_PREFIX):
        return None
    fields = dict(_LOG_FIELD.findall(text))

    def number(key: str) -> int:
        try:
            return int(fields.get(key, "-1"))
        except ValueError:
            return -1

    try:
        return RequestLog(
            frontend=fields["frontend"],
            backend=fields["backend"],
            server=fields["server"],
            status=number("status"),
            tr_ms=number("tr_ms"),
            tt_ms=number("tt_ms"),
            ta_ms=number("ta_ms"),
            bytes=number("bytes"),
            at_ms=number("at"),
        )
    except KeyError:
        return None


def admin_command(socket_path: str | os.PathLike[str], line: str, timeout_s: float = 5.0) -> str:
    """One command on HAProxy's admin socket (also used by the pipeline's metrics source)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(socket_path))
        except OSError as exc:
            raise HaproxyError(f"HAProxy admin socket {socket_path} unreachable: {exc}") from exc
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def find_haproxy() -> str:
    found = shutil.which("haproxy") or next((p for p in HAPROXY_CANDIDATES if os.access(p, os.X_OK)), None)
    if not found:
        raise MissingHaproxyError(
            f"haproxy not found in PATH or /usr/sbin; install the Debian package '{DEBIAN_PACKAGE}' "
            f"(make setup, or: apt-get install {DEBIAN_PACKAGE})"
        )
    return found


@dataclass(frozen=True)
class Routing:
    """Where prod and preview go: the live colour, and its share of prod during a gradual switch."""

    live_color: str
    live_percent: int = 100

    @property
    def idle_color(self) -> str:
        return "green" if self.live_color == "blue" else "blue"

    def map_entries(self) -> dict[str, str]:
        """The map file: the two routes, plus the split weights (HAProxy ignores keys no rule asks for)."""
        prod = backend_of(self.live_color) if self.live_percent == 100 else SPLIT_BACKEND
        weights = {f"weight_{color}": str(weight) for color, weight in self.weights().items()}
        return {"prod": prod, "preview": backend_of(self.idle_color), **weights}

    @classmethod
    def from_map(cls, entries: Mapping[str, str]) -> Routing | None:
        idle = entries.get("preview", "").removeprefix("be_")
        if idle not in COLORS:
            return None
        live = "green" if idle == "blue" else "blue"
        if entries.get("prod") == backend_of(live):
            return cls(live, 100)
        if entries.get("prod") != SPLIT_BACKEND:
            return None
        try:
            percent = int(entries.get(f"weight_{live}", ""))
        except ValueError:
            return None
        return cls(live, percent) if 1 <= percent <= 100 else None

    def weights(self) -> dict[str, int]:
        return {self.live_color: self.live_percent, self.idle_color: 100 - self.live_percent}


@dataclass(frozen=True)
class ServerStat:
    """One row of ``show stat`` that matters for switching and status."""

    backend: str
    server: str
    status: str
    check_status: str
    weight: int
    req_tot: int
    hrsp_5xx: int
    rtime_ms: int
    ttime_ms: int

    @property
    def up(self) -> bool:
        return self.status == "UP"


class Haproxy:
    def __init__(
        self, state: StateDir, ports: PortPlan, health_path: str, preview_cidrs: Sequence[str] = ("127.0.0.1/32",)
    ) -> None:
        self.state = state
        self.ports = ports
        self.health_path = health_path
        self.preview_cidrs = tuple(preview_cidrs)
        self.dir = state.haproxy_dir
        self.config_file = self.dir / "haproxy.cfg"
        self.map_file = self.dir / "live.map"
        self.socket_path = self.dir / "admin.sock"
        self.pid_file = self.dir / "haproxy.pid"

    @property
    def front_ports(self) -> dict[str, int]:
        """The ports the config binds, by the config key that names them."""
        return {"listen_port": self.ports.listen, "preview_port": self.ports.preview}

    # -- config ----------------------------------------------------------------

    def render(self) -> str:
        """The config does not depend on the live colour: that lives in the map file only."""
        check = "check inter 500ms fall 2 rise 2"
        lines = [
            "# Rendered by components/local/haproxy.py; edits are overwritten.",
            "global",
            "    master-worker",
            f"    pidfile {self.pid_file}",
            f"    stats socket {self.socket_path} mode 600 level admin expose-fd listeners",
            f"    log ring@{LOG_RING} len 2048 format raw local0 info",
            "    maxconn 4096",
            "",
            f"ring {LOG_RING}",
            "    description per-request log for the bluegreen monitor",
            "    format raw",
            "    maxlen 2048",
            f"    size {LOG_RING_BYTES}",
            "",
            "defaults",
            "    mode http",
            "    log global",
            f'    log-format "{LOG_FORMAT}"',
            "    option idle-close-on-response",
            "    option redispatch",
            "    retries 2",
            # A connection the server reset or closed before answering (an app process that
            # stops while the kernel still routes to it) is retried; see IDEMPOTENT_ONLY.
            "    retry-on conn-failure empty-response",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout http-keep-alive 15s",
            "    timeout http-request 10s",
            "",
            "frontend prod",
            f"    bind 127.0.0.1:{self.ports.listen}",
            f"    use_backend %[str(prod),map({self.map_file})]",
            "",
            "frontend preview",
            f"    bind 127.0.0.1:{self.ports.preview}",
            f"    acl preview_allowed src {' '.join(self.preview_cidrs)}",
            "    http-request deny deny_status 403 if !preview_allowed",
            f"    use_backend %[str(preview),map({self.map_file})]",
        ]
        health = f"    option httpchk GET {self.health_path}\n    http-check expect status 200\n{IDEMPOTENT_ONLY}"
        for color in COLORS:
            lines += [
                "",
                f"backend {backend_of(color)}",
                health,
                f"    http-response set-header {SERVED_BY_HEADER} {color}",
                f"    server {APP_SERVER} 127.0.0.1:{self.ports.apps[color]} {check}",
            ]
        # Weights here are placeholders: the map file's weight_<colour> entries are set on the socket.
        # In the split backend the server's name is its colour.
        lines += [
            "",
            f"backend {SPLIT_BACKEND}",
            "    balance roundrobin",
            health,
            f"    http-response set-header {SERVED_BY_HEADER} %[srv_name]",
        ]
        for color in COLORS:
            lines.append(f"    server {color} 127.0.0.1:{self.ports.apps[color]} {check} weight 50")
        return "\n".join(lines) + "\n"

    def render_map(self, routing: Routing) -> str:
        return "".join(f"{key} {value}\n" for key, value in routing.map_entries().items())

    def check_config(self, text: str) -> None:
        candidate = self.dir / "haproxy.cfg.new"
        candidate.write_text(text)
        result = subprocess.run([find_haproxy(), "-c", "-f", str(candidate)], capture_output=True, text=True)
        if result.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise HaproxyError(f"haproxy -c rejected the rendered config: {(result.stderr or result.stdout).strip()}")

    # -- process ---------------------------------------------------------------

    def record(self) -> ProcessRecord | None:
        record = ProcessRecord.from_json(self.state.load().get("haproxy_process"))
        return record if record and record.alive() else None

    def running(self) -> bool:
        return self.record() is not None

    def stop_leftovers(self, timeout_s: float = 10.0) -> list[int]:
        """Stop this stack's HAProxy processes that no record keeps (a command killed while it started)."""
        mark = owner_mark(self.state.root, "haproxy")
        return [r.pid for r in stop_all(owned_processes(mark, keep=self.record()), timeout_s)]

    def ensure(self, routing: Routing) -> str:
        """Start, or reload when the config changed; the map file keeps the live route across both.

        ``routing`` is written only when no valid map file exists (the first start). A
        reload counts only once a new worker runs the new config and listens on its
        ports; otherwise the previous config file is put back (the old worker still
        serves it) and the error names the port and what holds it.
        """
        self.state.ensure()
        text = self.render()
        record = self.record()
        changed = not self.config_file.exists() or self.config_file.read_text() != text
        if record and not changed:
            return "unchanged"
        self.refuse_busy_ports(record)
        if self.file_routing() is None:
            self._write_map(routing)  # first start; otherwise the file keeps the last live route
        self.check_config(text)
        if record:
            return self._reload(record)
        self.stop_leftovers()
        (self.dir / "haproxy.cfg.new").replace(self.config_file)
        for stale in (self.socket_path, self.pid_file):
            stale.unlink(missing_ok=True)
        result = subprocess.run(
            [find_haproxy(), "-W", "-D", "-f", str(self.config_file), "-p", str(self.pid_file)],
            capture_output=True,
            text=True,
            start_new_session=True,
            env={**os.environ, OWNER_ENV: owner_mark(self.state.root, "haproxy")},
        )
        if result.returncode != 0:
            self._raise_unbound(None, f"haproxy did not start: {(result.stderr or result.stdout).strip()}")
        deadline = time.monotonic() + 10
        while not self.pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(self.pid_file.read_text().split()[0])
        self.state.update(haproxy_process=ProcessRecord.of(pid).to_json(), haproxy_ports=self.front_ports)
        self._wait_socket()
        self._restore_weights()
        return "started"

    @staticmethod
    def port_free(port: int) -> bool:
        """The check before a change (a seam: tests make it miss a squatter to reach the check after)."""
        return not port_in_use(port)

    def refuse_busy_ports(self, record: ProcessRecord | None) -> None:
        """Every port the config binds is free, or already HAProxy's own (raises PortBusyError)."""
        ours = process_tree(record.pid) if record else []
        for name, port in self.front_ports.items():
            if not self.port_free(port) and not listening_on(ours, port):
                raise PortBusyError(
                    f"{name} {port} is held by {holder_of(port)}; HAProxy cannot bind it, so nothing was changed "
                    f"(free the port or choose another {name})"
                )

    def _reload(self, record: ProcessRecord) -> str:
        """Master-worker reload (SIGUSR2): a new worker takes the listeners over, or the old config stays."""
        previous = self.config_file.read_text() if self.config_file.exists() else None
        before = self.worker_pid()
        (self.dir / "haproxy.cfg.new").replace(self.config_file)
        os.kill(record.pid, signal.SIGUSR2)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while True:
            worker = self._answering_worker()
            tree = process_tree(record.pid)
            if worker not in (None, before) and all(listening_on(tree, p) for p in self.front_ports.values()):
                break
            if time.monotonic() > deadline:
                if previous is not None:
                    self.config_file.write_text(previous)  # what the old worker still serves
                self._raise_unbound(record, f"the reload did not take within {RELOAD_TIMEOUT_S:g}s")
            time.sleep(0.05)
        self.state.update(haproxy_ports=self.front_ports)
        self._restore_weights()
        return "reloaded"

    def _raise_unbound(self, record: ProcessRecord | None, what: str) -> None:
        """Why HAProxy did not take a config: a port held by another program, or ``what``."""
        tree = process_tree(record.pid) if record else []
        kept = "HAProxy keeps serving its previous config" if record else "HAProxy is not running"
        for name, port in self.front_ports.items():
            if not listening_on(tree, port) and port_in_use(port):
                raise PortBusyError(
                    f"{what}: {name} {port} is held by {holder_of(port)}; {kept} "
                    f"(free the port or choose another {name})"
                )
        raise HaproxyError(f"{what}; {kept}")

    def worker_pid(self) -> int | None:
        """The pid of the worker answering on the admin socket now."""
        match = re.search(r"^Pid: (\d+)$", self.command("show info"), re.MULTILINE)
        return int(match.group(1)) if match else None

    def _answering_worker(self) -> int | None:
        try:
            return self.worker_pid()
        except (HaproxyError, OSError):
            return None  # between workers

    def bound_ports(self) -> dict[str, int]:
        """The ports the running HAProxy took with its last start or reload (the config's before any)."""
        recorded = self.state.load().get("haproxy_ports")
        if isinstance(recorded, dict) and all(isinstance(recorded.get(k), int) for k in self.front_ports):
            return {k: int(recorded[k]) for k in self.front_ports}
        return self.front_ports

    def file_routing(self) -> Routing | None:
        try:
            entries = dict(line.split() for line in self.map_file.read_text().splitlines() if line.strip())
        except (OSError, ValueError):
            return None
        return Routing.from_map(entries)

    def _restore_weights(self) -> None:
        routing = self.file_routing()
        if routing:
            self.command(";".join(f"set weight {SPLIT_BACKEND}/{c} {w}" for c, w in routing.weights().items()))

    def _wait_socket(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.command("show info")
                return
            except (OSError, HaproxyError):
                if time.monotonic() > deadline:
                    raise HaproxyError(f"HAProxy admin socket {self.socket_path} does not answer") from None
                time.sleep(0.05)

    def stop(self) -> bool:
        record = self.record()
        stopped = record.stop(timeout_s=10) if record else False
        self.state.update(haproxy_process=None, haproxy_ports=None)
        stopped = bool(self.stop_leftovers()) or stopped
        self.socket_path.unlink(missing_ok=True)
        return stopped

    # -- runtime API -------------------------------------------------------------

    def command(self, line: str, timeout_s: float = 5.0) -> str:
        return admin_command(self.socket_path, line, timeout_s)

    def stats(self) -> list[ServerStat]:
        """``show stat`` rows of our backends (servers and the BACKEND summary rows)."""
        raw = self.command("show stat").lstrip("# ")
        rows = []
        for row in csv.DictReader(io.StringIO(raw)):
            if not row.get("pxname", "").startswith("be_"):
                continue

            def num(key: str, row: Mapping[str, str] = row) -> int:
                return int(row.get(key) or 0)

            rows.append(
                ServerStat(
                    backend=row["pxname"],
                    server=row["svname"],
                    status=row["status"],
                    check_status=row.get("check_status", ""),
                    weight=num("weight"),
                    req_tot=num("req_tot"),
                    hrsp_5xx=num("hrsp_5xx"),
                    rtime_ms=num("rtime"),
                    ttime_ms=num("ttime"),
                )
            )
        return rows

    def backend_stats(self) -> dict[str, dict[str, int | str]]:
        """Per backend: status, requests, 5xx, average response/total time (ms)."""
        return {
            s.backend: {
                "status": s.status,
                "req_tot": s.req_tot,
                "hrsp_5xx": s.hrsp_5xx,
                "rtime_ms": s.rtime_ms,
                "ttime_ms": s.ttime_ms,
            }
            for s in self.stats()
            if s.server == "BACKEND"
        }

    def health(self, color: str) -> str:
        """``UP`` when HAProxy's own check passed for the colour's server, else what it reports."""
        for stat in self.stats():
            if stat.backend == backend_of(color) and stat.server == APP_SERVER:
                if stat.status == "UP" and not check_passed(stat.status, stat.check_status):
                    return "CHECKING"
                return stat.status
        raise HaproxyError(f"backend {backend_of(color)} is not in HAProxy's stats; config and runtime disagree")

    def wait_health(self, color: str, want_up: bool, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.health(color)
            if (status == "UP") == want_up and status != "CHECKING":
                return status
            if time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def current_routes(self) -> dict[str, str]:
        """The map as the running HAProxy holds it (``show map``)."""
        out = {}
        for line in self.command(f"show map {self.map_file}").splitlines():
            parts = line.split()
            if len(parts) == 3:
                out[parts[1]] = parts[2]
        return out

    def current_routing(self) -> Routing | None:
        return Routing.from_map(self.current_routes())

    def route(self, routing: Routing) -> None:
        """Apply a routing on the socket, then persist it to the map file.

        The caller has checked the target colour is healthy; here every target backend
        must exist in HAProxy's runtime, since ``set map`` would accept a typo.
        """
        known = {s.backend for s in self.stats()}
        for backend in (routing.map_entries()["prod"], routing.map_entries()["preview"]):
            if backend not in known:
                raise HaproxyError(f"backend {backend} does not exist in the running HAProxy; refusing to route to it")
        commands = [f"set weight {SPLIT_BACKEND}/{c} {w}" for c, w in routing.weights().items()]
        present = self.current_routes()
        commands += [
            f"{'set' if key in present else 'add'} map {self.map_file} {key} {value}"
            for key, value in routing.map_entries().items()
        ]
        reply = self.command(";".join(commands)).strip()
        if reply:
            raise HaproxyError(f"HAProxy refused the switch: {reply}")
        self._write_map(routing)

    def _write_map(self, routing: Routing) -> None:
        tmp = self.map_file.with_suffix(".tmp")
        tmp.write_text(self.render_map(routing))
        tmp.replace(self.map_file)

    def set_server_state(self, color: str, state: str) -> None:
        """``ready`` / ``drain`` the colour's server in its backend and in the split backend."""
        servers = (f"{backend_of(color)}/{APP_SERVER}", f"{SPLIT_BACKEND}/{color}")
        reply = self.command(";".join(f"set server {server} state {state}" for server in servers)).strip()
        if reply:
            raise HaproxyError(f"HAProxy refused 'set server ... state {state}' for {color}: {reply}")
