"""Typed, validated stack configuration shared by the Pulumi program and the scripts.

The program reads it from ``pulumi.Config`` and the pipeline scripts read it from
``Pulumi.<stack>.yaml``; both go through :meth:`StackConfig.parse`, so a value that
the program rejects is rejected by the scripts with the same message.  Defaults
live here (Pulumi mocks do not apply ``Pulumi.yaml`` defaults) and are mirrored in
the ``config:`` schema of ``Pulumi.yaml``.  Nothing in this module knows a cloud.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import json
import re
import shlex
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from components.text_files import read_utf8

NAMESPACE = "bluegreen"
CLOUDS = ("aws", "gcp", "azure", "local")
COLORS = ("blue", "green")
ENVIRONMENTS = ("dev", "staging", "prod")
NO_DATA_POLICIES = ("rollback", "hold", "pass")
APP_COMMAND_FIELDS = ("port", "version", "color", "python")
MIN_INTERVAL_S = 0.05
WORLD_CIDRS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
# preview_cidrs of a local stack that sets none (or []): it binds 127.0.0.1 only, so this
# machine is all that could reach its preview port; the clouds' default is StackConfig's.
LOCAL_PREVIEW_CIDRS = ("127.0.0.1/32",)

T = TypeVar("T")


class ConfigError(ValueError):
    """A stack config value is invalid; the message names key, value and what is allowed."""


STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def stack_name(value: str) -> str:
    """``--stack``: a name, never a path (it names files and directories under the project)."""
    if not STACK_NAME.fullmatch(value) or len(value) > 100:
        raise ConfigError(
            f"{value!r} is not a stack name: letters, digits, '-', '_' and '.', starting with a letter or digit "
            f"(at most 100)"
        )
    return value


def invalid(key: str, value: Any, allowed: str) -> ConfigError:
    """The one shape of every bad-setting message: the full key, the value, what is allowed."""
    return ConfigError(f"{key} = {value!r} is invalid: {allowed}")


def other_color(color: str) -> str:
    """The colour that is not ``color``."""
    return "green" if color == "blue" else "blue"


@dataclass(frozen=True)
class MonitorConfig:
    """Post-switch thresholds: breach of either rolls the release back."""

    max_error_rate: float = 0.01
    max_p99_ms: float = 500.0
    window_s: int = 60
    interval_s: float = 5.0
    bake_s: int = 120
    on_no_data: str = "hold"


@dataclass(frozen=True)
class DbConfig:
    """The shared PostgreSQL database; the password is always a generated secret."""

    engine_version: str = "16"
    # Cloud-specific size name (RDS instance class, Cloud SQL tier, Azure SKU);
    # None lets each cloud pick its small production default.
    instance: str | None = None
    storage_gb: int = 20
    name: str = "app"
    username: str = "app"
    backup_retention_days: int = 7
    multi_az: bool = False
    # A throwaway database (review stacks): the cloud's smallest size, no deletion
    # protection, no final snapshot. Never allowed in prod.
    ephemeral: bool = False


@dataclass(frozen=True)
class StackConfig:
    """Everything a target needs to build blue and green, validated up front."""

    stack: str
    cloud: str = "local"
    environment: str = "dev"
    live_color: str = "blue"
    blue_version: str = "1.0.0"
    green_version: str = "1.0.0"
    image: str = "ghcr.io/example/bluegreen-app"
    capacity: int = 2
    idle_capacity: int = 1
    warm_idle: bool = False
    live_traffic_percent: int = 100
    app_port: int = 8080
    listen_port: int = 80
    health_path: str = "/healthz"
    # The readiness check before a switch; empty: health_path.
    ready_path: str = ""
    # How long a starting colour may take to answer health_path.
    startup_timeout_s: int = 30
    preview_port: int = 8443
    # Public egress addresses that may reach the preview route; empty: any address, but then
    # only with the secret header (clouds' frontends are public: a private range never matches).
    preview_cidrs: tuple[str, ...] = ()
    # Clouds: the preview route answers only requests that carry the stack's secret header
    # (stack outputs preview_header_name / preview_header_value), so CI without a fixed address
    # can smoke-test it. The local target binds 127.0.0.1 and needs none.
    preview_header: bool = True
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    switch_steps: tuple[int, ...] = (100,)
    scale_down_delay_s: int = 300
    db: DbConfig = field(default_factory=DbConfig)
    # Local target: the command that starts one colour of the app; "" = not set (the local
    # target refuses to start without one; the example's is named by the dev stack).
    app_command: str = ""
    # The app's smoke checks, relative to the project directory (``--file`` overrides).
    smoke_file: str = "smoke.yaml"
    # The app's SQL migrations, relative to the project directory; "" = the app has none.
    migrations_dir: str = "migrations"
    # The object under ``bluegreen:<cloud>`` (e.g. existing VPC ids, a certificate);
    # validated by that cloud's module, so this model stays cloud-neutral.
    cloud_settings: Mapping[str, Any] = field(default_factory=dict)
    # The ``bluegreen:previews`` object (Pulumi Deployments), validated by components/previews.py.
    previews: Mapping[str, Any] = field(default_factory=dict)

    @property
    def idle_color(self) -> str:
        """Derived, never configured: the colour that is not live."""
        return other_color(self.live_color)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def gradual_switch_in_progress(self) -> bool:
        return self.live_traffic_percent < 100

    def review_variant(self) -> StackConfig:
        """The cheap config of a pull-request review stack, derived from its template's.

        One rule, so nobody keeps a second config file by hand: one colour serves
        (``idle_capacity`` 0, ``capacity`` 1), classic switches only, no warm idle, and
        an ephemeral database (smallest size, no deletion protection, 1-day backups).
        Everything else (image, versions, ports, preview CIDRs, thresholds) is the template's.
        """
        db = dataclasses.replace(
            self.db, instance=None, storage_gb=20, multi_az=False, backup_retention_days=1, ephemeral=True
        )
        return self.with_changes(
            environment="dev",
            capacity=1,
            idle_capacity=0,
            warm_idle=False,
            live_traffic_percent=100,
            switch_steps=[100],
            scale_down_delay_s=0,
            db=dataclasses.asdict(db),
        )

    def version_of(self, color: str) -> str:
        return self.blue_version if color == "blue" else self.green_version

    def traffic_percent(self, color: str) -> int:
        """Share of production traffic the colour's route gets (live 100 / idle 0, or a step)."""
        live = self.live_traffic_percent
        return live if color == self.live_color else 100 - live

    def desired_capacity(self, color: str) -> int:
        """Instances a colour runs.

        The idle colour drops to ``idle_capacity`` only when no traffic reaches it and
        the pipeline is not holding it warm (``warm_idle``) for an instant rollback.
        """
        if color == self.live_color or self.warm_idle or self.traffic_percent(color) > 0:
            return self.capacity
        return self.idle_capacity

    def migrations_location(self, project_dir: Path | str) -> Path | None:
        """Where the app's migrations are, or None when it has none (``migrations_dir: ""``)."""
        return Path(project_dir) / self.migrations_dir if self.migrations_dir else None

    @property
    def readiness_path(self) -> str:
        """``ready_path``, or ``health_path`` when none is set."""
        return self.ready_path or self.health_path

    def app_command_for(self, color: str, port: int, python: str) -> str:
        """The local ``app_command`` with its placeholders filled for one colour."""
        return self.app_command.format(port=port, version=self.version_of(color), color=color, python=python)

    # -- loading ---------------------------------------------------------------

    @classmethod
    def parse(cls, raw: Mapping[str, Any], stack: str) -> StackConfig:
        """Validate raw values (strings, as Pulumi gives them, or YAML-typed) into a config."""
        return _Parser(raw, stack).build()

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        """Read the current stack's ``bluegreen:`` config inside a Pulumi program."""
        import pulumi

        cfg = pulumi.Config(NAMESPACE)
        keys = dict.fromkeys([*_KNOWN_KEYS, *_configured_keys()])
        raw = {key: value for key in keys if (value := cfg.get(key)) is not None}
        return cls.parse(raw, pulumi.get_stack())

    @classmethod
    def from_stack_file(cls, stack: str, project_dir: Path | str = ".") -> StackConfig:
        """Read ``Pulumi.<stack>.yaml`` the way the CLI would, for scripts without the CLI."""
        path = Path(project_dir) / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            found = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in Path(project_dir).glob("Pulumi.*.yaml"))
            raise ConfigError(f"stack {stack!r}: no file {path}; stacks here: {', '.join(found) or 'none'}")
        try:
            doc = yaml.safe_load(read_utf8(path, ConfigError, "stack file")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        config = doc.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: 'config' must be a mapping, got {type(config).__name__}")
        prefix = f"{NAMESPACE}:"
        raw = {k[len(prefix) :]: v for k, v in config.items() if isinstance(k, str) and k.startswith(prefix)}
        return cls.parse(raw, stack)

    def with_changes(self, **changes: Any) -> StackConfig:
        """A copy with some keys changed, validated again (what a ``set_config`` would give)."""
        raw = self.to_raw()
        raw.update(changes)
        return StackConfig.parse(raw, self.stack)

    def to_raw(self) -> dict[str, Any]:
        """Plain values keyed like the stack file (the inverse of :meth:`parse`)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("stack", "cloud_settings"):
                continue
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        if self.cloud_settings:
            out[self.cloud] = dict(self.cloud_settings)
        return out


_KNOWN_KEYS = (
    *(f.name for f in dataclasses.fields(StackConfig) if f.name not in ("stack", "cloud_settings")),
    *(c for c in CLOUDS),
)


def _configured_keys() -> list[str]:
    """Every ``bluegreen:`` key set on the running stack, so typos can be reported."""
    from pulumi.runtime.config import CONFIG

    prefix = f"{NAMESPACE}:"
    return [k[len(prefix) :] for k in CONFIG.get() if isinstance(k, str) and k.startswith(prefix)]


class _Parser:
    """One pass over the raw values; every check raises :class:`ConfigError`."""

    def __init__(self, raw: Mapping[str, Any], stack: str) -> None:
        self.raw = dict(raw)
        self.stack = stack

    # -- primitives ------------------------------------------------------------

    def _fail(self, key: str, value: Any, allowed: str) -> ConfigError:
        return invalid(f"{NAMESPACE}:{key}", value, allowed)

    def _get(self, key: str, default: T) -> Any:
        value = self.raw.get(key)
        return default if value is None or value == "" else value

    def _structured(self, key: str, value: Any) -> Any:
        """Objects and lists arrive as JSON strings from ``pulumi.Config``."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise self._fail(key, value, f"expected JSON or YAML structure ({exc.msg})") from exc
        return value

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self._get(key, default)
        if value not in allowed:
            raise self._fail(key, value, f"allowed: {', '.join(allowed)}")
        return str(value)

    def text(self, key: str, default: str, pattern: str | None = None, what: str = "") -> str:
        value = self._get(key, default)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self._fail(key, value, "expected a string")
        value = str(value)
        if pattern and not re.fullmatch(pattern, value):
            raise self._fail(key, value, what or f"must match {pattern}")
        return value

    def integer(self, key: str, default: int, lo: int, hi: int | None = None, what: str = "") -> int:
        return _as_int(self._get(key, default), lo, hi, lambda v, allowed: self._fail(key, v, what or allowed))

    def number(self, key: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
        if isinstance(value, bool):
            raise self._fail(key, value, "expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._fail(key, value, "expected a number") from None
        if number != number or number > hi or number < lo or (lo_open and number == lo):
            bracket = "(" if lo_open else "["
            raise self._fail(key, value, f"must be in {bracket}{lo:g}, {hi:g}]")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        return _as_bool(value, lambda v: self._fail(key, v, "expected true or false"))

    # -- whole config ----------------------------------------------------------

    def build(self) -> StackConfig:
        unknown = sorted(set(self.raw) - set(_KNOWN_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(NAMESPACE + ':' + k for k in unknown)}; "
                f"known keys: {', '.join(sorted(_KNOWN_KEYS))}"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.stack or ""):
            raise ConfigError(f"stack name {self.stack!r} is invalid: letters, digits, '-', '_' and '.' only")
        d = StackConfig(stack=self.stack)
        cloud = self.choice("cloud", d.cloud, CLOUDS)
        default_env = "prod" if self.stack.startswith("prod") else d.environment
        environment = self.choice("environment", default_env, ENVIRONMENTS)
        version_pattern = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
        version_what = "a version or image tag: letters, digits, '.', '_', '-' (max 128), not starting with a symbol"
        capacity = self.integer("capacity", d.capacity, 1, 1000, "must be an integer >= 1")
        idle_capacity = self.integer("idle_capacity", d.idle_capacity, 0, 1000, "must be an integer >= 0")
        if idle_capacity > capacity:
            raise self._fail("idle_capacity", idle_capacity, f"must not exceed capacity ({capacity})")
        app_port = self.integer("app_port", d.app_port, 1, 65535, "a TCP port, 1-65535")
        listen_port = self.integer("listen_port", d.listen_port, 1, 65535, "a TCP port, 1-65535")
        preview_port = self.integer("preview_port", d.preview_port, 1, 65535, "a TCP port, 1-65535")
        if preview_port == listen_port:
            raise self._fail("preview_port", preview_port, f"must differ from listen_port ({listen_port})")
        switch_steps = self.switch_steps(d.switch_steps)
        live_traffic_percent = self.integer("live_traffic_percent", d.live_traffic_percent, 1, 100, "1-100")
        if live_traffic_percent != 100 and live_traffic_percent not in switch_steps:
            raise self._fail(
                "live_traffic_percent", live_traffic_percent, f"must be one of switch_steps {list(switch_steps)}"
            )
        preview_header = self.boolean("preview_header", d.preview_header)
        local_default = LOCAL_PREVIEW_CIDRS if cloud == "local" else None
        preview_cidrs = self.cidrs(local_default, environment, preview_header)
        cloud_settings = self._structured(cloud, self.raw.get(cloud)) or {}
        if not isinstance(cloud_settings, dict):
            raise self._fail(cloud, cloud_settings, "expected an object of settings for that cloud")
        previews = self._structured("previews", self.raw.get("previews")) or {}
        if not isinstance(previews, dict):
            raise self._fail("previews", previews, "expected an object (see docs/previews.md)")
        db = self.db()
        if environment == "prod" and db.ephemeral:
            raise self._fail("db.ephemeral", True, "a prod database is never ephemeral (it keeps deletion protection)")
        return StackConfig(
            stack=self.stack,
            cloud=cloud,
            environment=environment,
            live_color=self.choice("live_color", d.live_color, COLORS),
            blue_version=self.version("blue_version", d.blue_version, version_pattern, version_what),
            green_version=self.version("green_version", d.green_version, version_pattern, version_what),
            image=self.text("image", d.image, r"[a-z0-9][a-z0-9._\-/:]*[a-z0-9]", "an image repository without tag"),
            capacity=capacity,
            idle_capacity=idle_capacity,
            warm_idle=self.boolean("warm_idle", d.warm_idle),
            live_traffic_percent=live_traffic_percent,
            app_port=app_port,
            listen_port=listen_port,
            health_path=self.text("health_path", d.health_path, URL_PATH, "an absolute URL path"),
            ready_path=self.text("ready_path", d.ready_path, f"({URL_PATH})?", "an absolute URL path, or empty"),
            startup_timeout_s=self.integer("startup_timeout_s", d.startup_timeout_s, 1, 3600, "1-3600 seconds"),
            preview_port=preview_port,
            preview_cidrs=preview_cidrs,
            preview_header=preview_header,
            monitor=self.monitor(),
            switch_steps=switch_steps,
            scale_down_delay_s=self.integer("scale_down_delay_s", d.scale_down_delay_s, 0, 86400, "0-86400 seconds"),
            db=db,
            app_command=self.app_command(d.app_command),
            migrations_dir=self.migrations_dir(d.migrations_dir),
            smoke_file=self.text("smoke_file", d.smoke_file, r"[^\x00]{1,1024}", "a YAML file path (1-1024 chars)"),
            cloud_settings=cloud_settings,
            previews=previews,
        )

    def switch_steps(self, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._structured("switch_steps", self._get("switch_steps", list(default)))
        allowed = "a strictly increasing list of percentages in 1-100 ending at 100, e.g. [100] or [10, 50, 100]"
        if not isinstance(value, list) or not value:
            raise self._fail("switch_steps", value, allowed)
        steps = tuple(_as_int(v, 1, 100, lambda *_: self._fail("switch_steps", value, allowed)) for v in value)
        if steps[-1] != 100 or any(a >= b for a, b in itertools.pairwise(steps)):
            raise self._fail("switch_steps", value, allowed)
        return steps

    def cidrs(self, local_default: tuple[str, ...] | None, environment: str, header: bool) -> tuple[str, ...]:
        """Unset or ``[]``: locally ``local_default`` (127.0.0.1/32); on a cloud, none (the header guards)."""
        value = self._structured("preview_cidrs", self._get("preview_cidrs", []))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self._fail("preview_cidrs", value, "a list of CIDR blocks such as 203.0.113.0/24 (or [])")
        if value == [] and local_default is not None:
            value = list(local_default)
        if not value and not header:
            raise self._fail(
                "preview_cidrs",
                value,
                f"with {NAMESPACE}:preview_header false the allow-list is the preview route's only guard, so it "
                "must list who may reach it (public egress addresses); or keep preview_header true",
            )
        out = []
        for item in value:
            try:
                network = ipaddress.ip_network(str(item), strict=True)
            except ValueError as exc:
                raise self._fail("preview_cidrs", item, f"not a CIDR block ({exc})") from None
            if environment == "prod" and network in WORLD_CIDRS:
                raise self._fail(
                    "preview_cidrs",
                    item,
                    "the preview route is never open to the world in prod; list your public egress CIDRs, "
                    f"or leave preview_cidrs empty and let {NAMESPACE}:preview_header guard it",
                )
            out.append(str(network))
        return tuple(out)

    def monitor(self) -> MonitorConfig:
        value = self._structured("monitor", self.raw.get("monitor")) or {}
        d = MonitorConfig()
        if not isinstance(value, dict):
            raise self._fail("monitor", value, "an object with " + ", ".join(f.name for f in dataclasses.fields(d)))
        unknown = set(value) - {f.name for f in dataclasses.fields(d)}
        if unknown:
            raise self._fail(
                "monitor",
                value,
                f"unknown field(s) {sorted(unknown)}; allowed {[f.name for f in dataclasses.fields(d)]}",
            )

        def sub(name: str) -> Any:
            return value.get(name, getattr(d, name))

        window_s = _as_int(sub("window_s"), 1, 86400, lambda v, a: self._fail("monitor.window_s", v, "1-86400 seconds"))
        # Fractions are allowed: the local source streams every request, so it can judge often.
        interval_s = self.number("monitor.interval_s", sub("interval_s"), MIN_INTERVAL_S, 3600.0)
        if interval_s > window_s:
            raise self._fail("monitor.interval_s", interval_s, f"must not exceed window_s ({window_s})")
        on_no_data = sub("on_no_data")
        if on_no_data not in NO_DATA_POLICIES:
            raise self._fail("monitor.on_no_data", on_no_data, f"allowed: {', '.join(NO_DATA_POLICIES)}")
        return MonitorConfig(
            max_error_rate=self.number("monitor.max_error_rate", sub("max_error_rate"), 0.0, 1.0),
            max_p99_ms=self.number("monitor.max_p99_ms", sub("max_p99_ms"), 0.0, 600000.0, lo_open=True),
            window_s=window_s,
            interval_s=interval_s,
            bake_s=_as_int(sub("bake_s"), 0, 86400, lambda v, a: self._fail("monitor.bake_s", v, "0-86400 seconds")),
            on_no_data=on_no_data,
        )

    def db(self) -> DbConfig:
        value = self._structured("db", self.raw.get("db")) or {}
        d = DbConfig()
        names = [f.name for f in dataclasses.fields(d)]
        if not isinstance(value, dict):
            raise self._fail("db", value, f"an object with {names}")
        if "password" in value:
            raise self._fail(
                "db.password", "***", "the password is generated as a Pulumi secret; remove it from config"
            )
        unknown = set(value) - set(names)
        if unknown:
            raise self._fail("db", value, f"unknown field(s) {sorted(unknown)}; allowed {names}")

        def sub(name: str) -> Any:
            return value.get(name, getattr(d, name))

        ident = r"[a-z_][a-z0-9_]{0,62}"
        engine = str(sub("engine_version"))
        if not re.fullmatch(r"1[3-8](\.\d+)?", engine):
            raise self._fail("db.engine_version", engine, "a PostgreSQL major version 13-18, optionally with minor")
        for name in ("name", "username"):
            if not re.fullmatch(ident, str(sub(name))):
                raise self._fail(f"db.{name}", sub(name), "a lowercase SQL identifier (a-z, 0-9, _)")
        instance = sub("instance")
        return DbConfig(
            engine_version=engine,
            instance=None if instance is None else str(instance),
            storage_gb=_as_int(
                sub("storage_gb"), 10, 65536, lambda v, a: self._fail("db.storage_gb", v, "10-65536 GB")
            ),
            name=str(sub("name")),
            username=str(sub("username")),
            backup_retention_days=_as_int(
                sub("backup_retention_days"),
                1,
                35,
                lambda v, a: self._fail("db.backup_retention_days", v, "1-35 days (backups stay on)"),
            ),
            multi_az=_as_bool(sub("multi_az"), lambda v: self._fail("db.multi_az", v, "expected true or false")),
            ephemeral=_as_bool(sub("ephemeral"), lambda v: self._fail("db.ephemeral", v, "expected true or false")),
        )

    def version(self, key: str, default: str, pattern: str, what: str) -> str:
        """Unlike other keys, an empty version is not "unset": it is a release with no name."""
        if self.raw.get(key) == "":
            raise self._fail(key, "", f"must not be empty; {what}")
        return self.text(key, default, pattern, what)

    def migrations_dir(self, default: str) -> str:
        """Unlike other keys, an empty value is a choice here: the app has no migrations."""
        if self.raw.get("migrations_dir") == "":
            return ""
        return self.text("migrations_dir", default, r"[^\x00]{1,1024}", 'a directory path, or "" for none')

    def app_command(self, default: str) -> str:
        value = self.text("app_command", default)
        if not value:
            return ""
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise self._fail(
                "app_command", value, f"bad placeholder syntax ({exc}); use {{{{ }}}} for a literal brace"
            ) from None
        unknown = fields - set(APP_COMMAND_FIELDS)
        if unknown or "port" not in fields:
            raise self._fail(
                "app_command",
                value,
                f"must contain {{port}} and may use only {', '.join('{' + f + '}' for f in APP_COMMAND_FIELDS)}",
            )
        try:
            _, argv = split_command(value)
        except ValueError as exc:
            raise self._fail("app_command", value, f"must read as a shell line ({exc})") from None
        if not argv:
            raise self._fail("app_command", value, "names no program after its NAME=value words")
        return value


URL_PATH = r"/[A-Za-z0-9_.~/\-]*"
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def domain_name(key: str, value: Any) -> str:
    """A fully qualified host name (``shop.example.com``), lowercased; a ConfigError naming ``key`` otherwise."""
    allowed = "a fully qualified domain name such as shop.example.com (no scheme, port, path or wildcard)"
    if not isinstance(value, str):
        raise invalid(key, value, allowed)
    name = value.lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or labels[-1].isdigit() or not all(_DNS_LABEL.fullmatch(x) for x in labels):
        raise invalid(key, value, allowed)
    return name


NO_MIGRATIONS = "no migrations: migrations_dir is empty (the app has none)"
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


def split_command(line: str) -> tuple[dict[str, str], list[str]]:
    """A command line as a shell reads it: leading ``NAME=value`` words, then the argv (``shlex``).

    ``PYTHONPATH=/srv/app gunicorn -b 127.0.0.1:{port} app:wsgi`` gives
    ``({"PYTHONPATH": "/srv/app"}, ["gunicorn", "-b", ...])``. Raises ValueError on bad quoting.
    """
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and (match := _ASSIGNMENT.fullmatch(words[0])):
        env[match.group(1)] = match.group(2)
        words.pop(0)
    return env, words


def _as_int(value: Any, lo: int, hi: int | None, fail: Callable[[Any, str], ConfigError]) -> int:
    allowed = f"an integer in {lo}-{hi}" if hi is not None else f"an integer >= {lo}"
    if isinstance(value, bool):
        raise fail(value, allowed)
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise fail(value, allowed)
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise fail(value, allowed)
    if number < lo or (hi is not None and number > hi):
        raise fail(value, allowed)
    return number


def _as_bool(value: Any, fail: Callable[[Any], ConfigError]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(value)
