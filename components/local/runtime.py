"""The local target's runtime: what ``up``, ``down``, the pipeline and the dynamic providers call.

``LocalEnvironment(config, project_root)`` brings one machine to what a stack config
says (PostgreSQL, migrations, one app process per colour, HAProxy with the live
route) and reports what runs. Every method is safe to call again: ``apply`` starts
only what is missing, restarts only a colour whose version (or command, or faults)
changed, and switches only when the route differs. Environment problems raise
:class:`LocalTargetError` subclasses whose messages say what to do.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from components.config import COLORS, ConfigError, StackConfig
from components.local.apps import AppProcess, AppProcessError, AppSpec
from components.local.haproxy import (
    LOG_FORMAT,
    LOG_RING,
    SPLIT_BACKEND,
    Haproxy,
    HaproxyError,
    MissingHaproxyError,
    PortBusyError,
    Routing,
    backend_of,
    find_haproxy,
)
from components.local.postgres import MissingBinaryError, PostgresCluster, PostgresError, find_pg_bin
from components.local.processes import port_in_use
from components.local.settings import LocalSettings, PortPlan
from components.local.sockets import holder_of, listening_on, process_tree
from components.local.state import StateDir, StateError
from components.local.supervisor import annotate_status, record_applied, stop_supervisor
from components.migration_runner import (
    StackBehindDatabaseError,
    apply_migrations,
)
from components.migrations import MigrationError

Progress = Callable[[str], None]


class LocalTargetError(RuntimeError):
    """The local environment cannot do what was asked; the message says why and what to do."""


class EnvironmentProblemError(LocalTargetError):
    """Bad input or a missing prerequisite (binary, free port): the CLI exits 2."""


class SwitchRefusedError(LocalTargetError):
    """The target colour is not running, not ready, or not UP in HAProxy; nothing was changed."""


def validate_local_config(config: StackConfig) -> tuple[LocalSettings, PortPlan]:
    """Everything the local target checks before it starts anything (raises ConfigError)."""
    if config.cloud != "local":
        raise ConfigError(f"bluegreen:cloud = {config.cloud!r}: the local runtime only runs stacks with cloud: local")
    if not config.app_command:
        raise ConfigError(
            "bluegreen:app_command is not set: the local target needs the command that starts one colour of "
            "your app, with {port} (and optionally {version}, {color}, {python}), e.g. "
            "'gunicorn -b 127.0.0.1:{port} myapp:app'; the dev stack names the example in examples/orders"
        )
    return LocalSettings.parse(config.cloud_settings), PortPlan.from_config(config)


class LocalEnvironment:
    def __init__(
        self, config: StackConfig, project_root: Path | str, progress: Progress | None = None, python: str = ""
    ) -> None:
        self.project_root = Path(project_root).resolve()
        self.progress: Progress = progress or (lambda _msg: None)
        self.python = python or sys.executable
        self.state = StateDir(self.project_root, config.stack)
        self._configure(config)

    def _configure(self, config: StackConfig) -> None:
        self.settings, self.ports = validate_local_config(config)
        self.config = config
        # A port picked for PostgreSQL must not take one the config names.
        self.state.reserved_ports = set(self.ports.all_ports().values())
        self.postgres = PostgresCluster(self.state, config.db.name, config.db.username)
        self.apps = {color: AppProcess(self.state, color, self.project_root) for color in COLORS}

    @property
    def haproxy(self) -> Haproxy:
        return Haproxy(self.state, self.ports, self.config.health_path, self.config.preview_cidrs)

    # -- public API ----------------------------------------------------------------

    def up(self) -> dict[str, Any]:
        """Bring the whole environment to the current config."""
        return self.apply(self.config)

    def apply(self, config: StackConfig | None = None) -> dict[str, Any]:
        """Make the machine match ``config``; returns what each part did."""
        if config is not None:
            validate_local_config(config)
            if config.stack != self.config.stack:
                raise ConfigError(f"stack {config.stack!r} given to the environment of stack {self.config.stack!r}")
            self._configure(config)
        with self._guarded():
            self.preflight()
            actions: dict[str, Any] = {"postgres": self.ensure_database()}
            actions["migrations"] = self.ensure_migrations(before_apps=True)
            actions["haproxy"] = self.ensure_load_balancer()
            for color in COLORS:
                actions[color] = self.ensure_color(color)
            actions["route"] = self.ensure_route()
            actions["scale-down"] = self.scale_down_idle()
            actions["migrations"] += self.ensure_migrations(before_apps=False)
        return actions

    # -- the parts, one at a time (what the dynamic providers call) -------------------

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Hold the stack lock and turn part failures into this module's errors."""
        try:
            with self.state.locked():
                yield
        except (MissingBinaryError, MissingHaproxyError, PortBusyError, StateError, StackBehindDatabaseError) as exc:
            raise EnvironmentProblemError(str(exc)) from exc
        except (PostgresError, HaproxyError, AppProcessError, MigrationError) as exc:
            raise LocalTargetError(str(exc)) from exc

    def ensure_database(self) -> str:
        with self._guarded():
            db = self.postgres.start(self.progress)
            record_applied(self.state, "postgres", self.config, self.python)
            return f"running on 127.0.0.1:{db.port}"

    def ensure_migrations(self, before_apps: bool = False) -> list[str]:
        with self._guarded():
            return self._migrate(before_apps)

    def ensure_load_balancer(self) -> str:
        """Start or reload HAProxy; the first start routes as the config says, later ones keep the map file.

        A port another program holds fails here (exit 2) and changes nothing.
        """
        with self._guarded():
            if not self.haproxy.running():
                self._stop_leftovers()
            result = self.haproxy.ensure(self._current_routing() or self.desired_routing())
            record_applied(self.state, "haproxy", self.config, self.python)
            return result

    def ensure_color(self, color: str) -> str:
        with self._guarded():
            if not self.haproxy.running():
                raise LocalTargetError(f"{color}: HAProxy is not running for this stack; start the load balancer first")
            spec = self.app_spec(color).fingerprint()
            try:
                return self._ensure_color(color, self._current_routing() or self.desired_routing())
            finally:
                # What the supervisor restarts this colour with, if what runs came from this config.
                if self.apps[color].running_spec() in (None, spec):
                    record_applied(self.state, color, self.config, self.python)

    def ensure_route(self, readiness: bool = True) -> str:
        """Switch prod to the configured colour/share if it is not there yet (with the switch checks).

        ``readiness=False`` (a rollback: back to what served before, at once) skips the
        ``ready_path`` check, which may need parts that are down (the database); the
        colour must still run and be UP in HAProxy.
        """
        with self._guarded():
            desired = self.desired_routing()
            if self._current_routing() == desired:
                return "unchanged"
            self._switch_locked(desired, readiness)
            return f"switched prod to {desired.live_color} ({desired.live_percent}%)"

    def scale_down_idle(self) -> list[str]:
        """After the route moved: stop each colour with no capacity and no traffic (idle_capacity 0)."""
        with self._guarded():
            routing = self._current_routing() or self.desired_routing()
            return [
                f"{color} stopped (idle capacity 0)"
                for color in COLORS
                if self.config.desired_capacity(color) == 0
                and not self._receives_traffic(color, routing)
                and self.stop_color(color)
            ]

    def stop_color(self, color: str) -> bool:
        with self._guarded():
            haproxy = self.haproxy
            if self.apps[color].record() and haproxy.running():
                with contextlib.suppress(HaproxyError):
                    haproxy.set_server_state(color, "drain")
            return self.apps[color].stop()

    def stop_load_balancer(self) -> bool:
        with self._guarded():
            return self.haproxy.stop()

    def stop_database(self) -> bool:
        with self._guarded():
            return self.postgres.stop()

    def switch(self, color: str, live_traffic_percent: int = 100) -> dict[str, Any]:
        """Send prod to ``color`` (or that share of it) after checking it is running, ready and UP."""
        if color not in COLORS:
            raise EnvironmentProblemError(f"colour {color!r} is invalid; allowed: {', '.join(COLORS)}")
        if not 1 <= live_traffic_percent <= 100:
            raise EnvironmentProblemError(f"live_traffic_percent {live_traffic_percent} is invalid: 1-100")
        with self._guarded():
            if not self.haproxy.running():
                raise SwitchRefusedError("HAProxy is not running for this stack; run `up` first")
            return self._switch_locked(Routing(color, live_traffic_percent))

    def down(self) -> list[str]:
        """Stop every process this stack started (by recorded pid) and nothing else. Data stays."""
        stopped: list[str] = []
        with self._guarded():
            # First, so it cannot restart what is being stopped; the lock waits out a restart under way.
            stopped += ["supervisor"] if stop_supervisor(self.state) else []
            stopped += [f"{color} app" for color in COLORS if self.stop_color(color)]
            stopped += ["haproxy"] if self.stop_load_balancer() else []
            stopped += ["postgres"] if self.stop_database() else []
        return stopped

    def status(self) -> dict[str, Any]:
        """What runs, as the processes and HAProxy report it (not what the config wishes).

        Also whether the supervisor runs and each part's restarts (components/local/supervisor.py).
        """
        status = self._status()
        annotate_status(status, self.state, self.settings.supervise)
        return status

    def _status(self) -> dict[str, Any]:
        haproxy = self.haproxy
        haproxy_up = haproxy.running()
        routing = self._current_routing() if haproxy_up else None
        # Where HAProxy really listens: a change it could not apply is not claimed.
        bound = haproxy.bound_ports() if haproxy_up else haproxy.front_ports
        backends = haproxy.backend_stats() if haproxy_up else {}
        colors: dict[str, Any] = {}
        for color in COLORS:
            app = self.apps[color]
            record = app.record()
            if routing is None:
                role = "stopped"
            elif routing.live_percent < 100:
                role = f"live {routing.weights()[color]}%"
            else:
                role = "live" if routing.live_color == color else "idle"
            colors[color] = {
                "version": app.running_version(),
                "configured_version": self.config.version_of(color),
                "port": self.ports.apps[color],
                "pid": record.pid if record else None,
                "running": record is not None,
                "health": self._health(haproxy, color) if haproxy_up else "HAPROXY DOWN",
                "role": role,
                "requests": backends.get(backend_of(color), {}).get("req_tot"),
                "errors_5xx": backends.get(backend_of(color), {}).get("hrsp_5xx"),
            }
        return {
            "stack": self.config.stack,
            "live_color": routing.live_color if routing else None,
            "idle_color": routing.idle_color if routing else None,
            "live_traffic_percent": routing.live_percent if routing else None,
            "configured_live_color": self.config.live_color,
            "live_url": f"http://127.0.0.1:{bound['listen_port']}",
            "preview_url": f"http://127.0.0.1:{bound['preview_port']}",
            "colors": colors,
            "haproxy": {
                "running": haproxy_up,
                "pid": (r.pid if (r := haproxy.record()) else None),
                "stats_socket": str(haproxy.socket_path),
                "log_ring": LOG_RING,
                "backends": backends,
            },
            "postgres": {"running": self.postgres.running(), "port": self.postgres.port},
            "state_dir": str(self.state.root),
        }

    def database_url(self) -> str:
        return self.postgres.settings().url

    @property
    def live_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.listen}"

    @property
    def preview_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.preview}"

    def metrics(self) -> dict[str, Any]:
        """The stack's ``metrics`` output: what the HAProxy metrics source needs."""
        haproxy = self.haproxy
        return {
            "source": "haproxy",
            "stats_socket": str(haproxy.socket_path),
            "log_ring": LOG_RING,
            "log_format": LOG_FORMAT,
            "backends": {"blue": backend_of("blue"), "green": backend_of("green"), "split": SPLIT_BACKEND},
        }

    def desired_routing(self) -> Routing:
        return Routing(self.config.live_color, self.config.live_traffic_percent)

    def app_spec(self, color: str) -> AppSpec:
        port = self.ports.apps[color]
        version = self.config.version_of(color)
        environment = {
            "DATABASE_URL": self.database_url(),
            "APP_VERSION": version,
            "APP_COLOR": color,
            "APP_WORKERS": str(self.settings.app_workers),
            "APP_THREADS": str(self.settings.app_threads),
            **self.settings.faults_for(version).environment(),
        }
        command = self.config.app_command_for(color, port, self.python)
        return AppSpec(color, version, port, command, environment, health_path=self.config.health_path)

    # -- pieces ----------------------------------------------------------------------

    def preflight(self) -> None:
        """Binaries present and every port free or held by this stack, before anything starts."""
        find_haproxy()
        find_pg_bin()
        self._stop_leftovers()
        record = self.haproxy.record()
        haproxy_pids = process_tree(record.pid) if record else []
        busy = []
        for name, port in (("listen_port", self.ports.listen), ("preview_port", self.ports.preview)):
            # A running HAProxy may hold its own ports; a port it does not hold yet must be free.
            if port_in_use(port) and not listening_on(haproxy_pids, port):
                busy.append(f"{name} {port} (held by {holder_of(port)})")
        for color in COLORS:
            if not self.apps[color].record() and port_in_use(self.ports.apps[color]):
                busy.append(f"{color} app port {self.ports.apps[color]} (held by {holder_of(self.ports.apps[color])})")
        if busy:
            raise EnvironmentProblemError(
                f"port(s) already in use by another program: {', '.join(busy)}; free them or choose other "
                "ports (bluegreen:listen_port, preview_port, app_port)"
            )

    def _stop_leftovers(self) -> None:
        """Stop the processes of this stack that no record keeps: what a killed command left running.

        They carry this stack's mark in their environment (or were recorded as starting),
        so their ports are this stack's to take back; anything else on a port is refused.
        """
        parts: list[tuple[str, AppProcess | Haproxy]] = [(f"{c} app", self.apps[c]) for c in COLORS]
        for name, part in [*parts, ("haproxy", self.haproxy)]:
            if pids := part.stop_leftovers():
                self.progress(f"stopped leftover {name} process(es) {pids} that an interrupted command had started")

    def _current_routing(self) -> Routing | None:
        haproxy = self.haproxy
        return haproxy.current_routing() if haproxy.running() else None

    def _receives_traffic(self, color: str, routing: Routing) -> bool:
        return routing.weights()[color] > 0

    def _ensure_color(self, color: str, routing: Routing) -> str:
        app, haproxy = self.apps[color], self.haproxy
        desired = self.config.desired_capacity(color)
        # A colour that prod still reaches keeps running until the route has moved away
        # from it (scale_down_idle, after the switch): stopping it first drops requests.
        if (
            desired == 0
            and not self._receives_traffic(color, self.desired_routing())
            and not (self.haproxy.running() and self._receives_traffic(color, routing))
        ):
            if app.record():
                haproxy.set_server_state(color, "drain")
                app.stop()
                return "stopped (idle capacity 0)"
            return "stopped"
        spec = self.app_spec(color)
        overlap = self._receives_traffic(color, routing)
        if app.record() and app.running_spec() != spec.fingerprint() and not overlap:
            haproxy.set_server_state(color, "drain")
        self.progress(f"{color}: ensuring {spec.version} on port {spec.port}")
        result = app.ensure(spec, overlap=overlap, timeout_s=self.config.startup_timeout_s)
        haproxy.set_server_state(color, "ready")
        status = self._wait_backend_up(color)
        if status != "UP":
            raise LocalTargetError(f"{color} answers on port {spec.port} but HAProxy's health check says {status}")
        return f"{result} {spec.version}"

    def _wait_backend_up(self, color: str, timeout_s: float = 15.0) -> str:
        """HAProxy's check for ``color``, given up at once if its process died meanwhile.

        A colour that crashes right after it answered would otherwise hold the stack lock
        for the whole wait (a supervisor restart of a crash-looping release, delaying a rollback).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.haproxy.wait_health(color, want_up=True, timeout_s=min(0.5, timeout_s))
            if status == "UP" or time.monotonic() > deadline:
                return status
            if not self.apps[color].record():
                app = self.apps[color]
                raise LocalTargetError(
                    f"{color}: the app exited right after it started; from {app.log_file}:\n{app.start_failure()}"
                )

    def _health(self, haproxy: Haproxy, color: str) -> str:
        try:
            return haproxy.health(color)
        except HaproxyError as exc:
            return f"UNKNOWN ({exc})"

    def _check_ready(self, color: str, readiness: bool = True) -> None:
        """Running, answering ``ready_path`` (unless ``readiness`` is False: a rollback) and UP in HAProxy."""
        app = self.apps[color]
        if not app.record():
            raise SwitchRefusedError(f"refusing to switch to {color}: its app process is not running")
        if readiness:
            self._check_readiness(color)
        status = self.haproxy.wait_health(color, want_up=True, timeout_s=5.0)
        if status != "UP":
            raise SwitchRefusedError(f"refusing to switch to {color}: HAProxy sees its backend as {status}, not UP")

    def _check_readiness(self, color: str) -> None:
        url = f"http://127.0.0.1:{self.ports.apps[color]}{self.config.readiness_path}"
        try:
            response = httpx.get(url, timeout=3.0)
        except httpx.HTTPError as exc:
            raise SwitchRefusedError(f"refusing to switch to {color}: {url} unreachable ({exc})") from exc
        if response.status_code != 200:
            raise SwitchRefusedError(
                f"refusing to switch to {color}: {url} answered {response.status_code} {response.text.strip()[:200]}"
            )

    def _switch_locked(self, routing: Routing, readiness: bool = True) -> dict[str, Any]:
        started = time.monotonic()
        for color in COLORS:
            if routing.weights()[color] > 0:
                self._check_ready(color, readiness)
        before = self._current_routing()
        checked_ms = (time.monotonic() - started) * 1000
        self.haproxy.route(routing)
        routed_at = time.monotonic()
        after = self._current_routing()
        if after != routing:
            raise LocalTargetError(f"HAProxy reports route {after} after switching to {routing}")
        return {
            "from": before.live_color if before else None,
            "to": routing.live_color,
            "live_traffic_percent": routing.live_percent,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "checks_ms": round(checked_ms, 1),
            # time.monotonic() when HAProxy took the new route, for latency measurements.
            "routed_at": routed_at,
        }

    def _migrate(self, before_apps: bool) -> list[str]:
        """Apply what the running colours allow; contracts wait until the old colour is gone."""
        directory = self.config.migrations_location(self.project_root)
        if directory is None or not directory.is_dir():
            return []

        versions = {}
        for color in COLORS:
            running = self.apps[color].running_version()
            wanted = self.config.version_of(color)
            # Before the apps change, a colour still runs its old version: a contract must wait.
            versions[color] = running if before_apps and running else wanted
        # The first pass holding a contract back is expected; say so only once, after the apps.
        progress = (lambda msg: None if msg.startswith("holding back") else self.progress(msg)) if before_apps else None
        # Before the apps change they still run their old versions; what they are about to run
        # (a restored old stack file, say) must not be behind the database either.
        starting = (self.config.blue_version, self.config.green_version) if before_apps else None
        report = apply_migrations(
            self.database_url(), versions["blue"], versions["green"], directory, progress or self.progress, starting
        )
        return report.applied
