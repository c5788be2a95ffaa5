"""StackConfig: defaults, parsing from both sources, and every rejection with its message."""

from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, DbConfig, MonitorConfig, StackConfig

ROOT = Path(__file__).resolve().parent.parent


def parse(stack: str = "dev", **raw: object) -> StackConfig:
    return StackConfig.parse(raw, stack)


def test_defaults_and_derived_values() -> None:
    cfg = parse()
    assert cfg.cloud == "local"
    assert cfg.live_color == "blue" and cfg.idle_color == "green"
    assert parse(live_color="green").idle_color == "blue"
    assert cfg.switch_steps == (100,)
    assert cfg.traffic_percent("blue") == 100 and cfg.traffic_percent("green") == 0


def test_strings_as_pulumi_gives_them_are_coerced() -> None:
    cfg = parse(
        capacity="3",
        warm_idle="true",
        switch_steps="[10, 50, 100]",
        live_traffic_percent="50",
        monitor='{"max_error_rate": 0.05, "on_no_data": "rollback"}',
        preview_cidrs='["10.1.0.0/16"]',
    )
    assert cfg.capacity == 3 and cfg.warm_idle is True
    assert cfg.switch_steps == (10, 50, 100)
    assert cfg.monitor.max_error_rate == 0.05 and cfg.monitor.on_no_data == "rollback"
    assert cfg.monitor.window_s == MonitorConfig().window_s
    assert cfg.preview_cidrs == ("10.1.0.0/16",)
    assert cfg.traffic_percent("blue") == 50 and cfg.traffic_percent("green") == 50


def test_capacity_of_each_colour() -> None:
    cfg = parse(capacity=4, idle_capacity=1)
    assert cfg.desired_capacity("blue") == 4 and cfg.desired_capacity("green") == 1
    assert parse(capacity=4, idle_capacity=1, warm_idle=True).desired_capacity("green") == 4
    gradual = parse(capacity=4, idle_capacity=1, switch_steps=[10, 100], live_traffic_percent=10, live_color="green")
    assert gradual.desired_capacity("blue") == 4, "a colour still taking traffic keeps full capacity"


# (key, bad value, part of the message): shared with the whole-program tests of each target.
INVALID_VALUES = [
    ("cloud", "digitalocean", "allowed: aws, gcp, azure, local"),
    ("live_color", "red", "allowed: blue, green"),
    ("live_color", "Blue", "allowed: blue, green"),
    ("capacity", 0, "must be an integer >= 1"),
    ("capacity", "two", "must be an integer >= 1"),
    ("capacity", True, "must be an integer >= 1"),
    ("idle_capacity", -1, "must be an integer >= 0"),
    ("idle_capacity", 5, "must not exceed capacity"),
    ("app_port", 0, "a TCP port, 1-65535"),
    ("listen_port", 70000, "a TCP port, 1-65535"),
    ("preview_port", 80, "must differ from listen_port"),
    ("preview_cidrs", ["10.0.0.0/33"], "not a CIDR block"),
    ("preview_cidrs", ["10.0.0.1/8"], "not a CIDR block"),
    ("preview_cidrs", "not-json[", "expected JSON"),
    ("preview_cidrs", {"office": "203.0.113.0/24"}, "a list of CIDR blocks"),
    ("preview_header", "sometimes", "expected true or false"),
    ("switch_steps", [50, 10, 100], "strictly increasing"),
    ("switch_steps", [10, 50], "ending at 100"),
    ("switch_steps", [10, 10, 100], "strictly increasing"),
    ("switch_steps", [0, 100], "strictly increasing"),
    ("switch_steps", [], "strictly increasing"),
    ("live_traffic_percent", 30, "must be one of switch_steps"),
    ("monitor", {"max_error_rate": 1.5}, "monitor.max_error_rate"),
    ("monitor", {"max_error_rate": -0.1}, "must be in [0, 1]"),
    ("monitor", {"max_p99_ms": 0}, "monitor.max_p99_ms"),
    ("monitor", {"window_s": 0}, "monitor.window_s"),
    ("monitor", {"interval_s": 120, "window_s": 60}, "must not exceed window_s"),
    ("monitor", {"interval_s": 0.01}, "must be in [0.05, 3600]"),
    ("monitor", {"interval_s": "often"}, "expected a number"),
    ("monitor", {"on_no_data": "ignore"}, "allowed: rollback, hold, pass"),
    ("monitor", {"max_error": 0.1}, "unknown field"),
    ("db", {"password": "hunter2"}, "generated as a Pulumi secret"),
    ("db", {"engine_version": "9.6"}, "major version"),
    ("db", {"name": "Robert'); DROP"}, "SQL identifier"),
    ("db", {"backup_retention_days": 0}, "backups stay on"),
    ("blue_version", "../../etc", "a version or image tag"),
    ("green_version", "", "must not be empty"),
    ("health_path", "healthz", "an absolute URL path"),
    ("app_command", "serve --port 80", "must contain {port}"),
    ("app_command", "serve {port} {home}", "may use only"),
    ("scale_down_delay_s", -5, "0-86400"),
    ("environment", "qa", "allowed: dev, staging, prod"),
    ("live_colour", "green", "unknown config key(s) bluegreen:live_colour"),
]


@pytest.mark.parametrize(("key", "value", "message"), INVALID_VALUES)
def test_invalid_values_name_key_value_and_allowed(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(**{key: value})
    text = str(err.value)
    assert message in text
    assert key.split(".")[0] in text


def test_prod_preview_route_never_open_to_world() -> None:
    for world in ("0.0.0.0/0", "::/0"):
        with pytest.raises(ConfigError, match="never open to the world in prod"):
            parse("prod", preview_cidrs=["10.0.0.0/8", world])
        with pytest.raises(ConfigError, match="never open to the world"):
            parse("staging-eu", environment="prod", preview_cidrs=[world])
    # Outside prod a team may open it (e.g. a throwaway sandbox).
    assert parse("sandbox", preview_cidrs=["0.0.0.0/0"]).preview_cidrs == ("0.0.0.0/0",)
    assert parse("prod-eu").is_prod


def test_the_preview_route_is_guarded_by_the_header_or_an_allow_list() -> None:
    """No address default on a cloud (its frontend is public); an empty list only with the header."""
    default = parse(cloud="aws")
    assert default.preview_cidrs == () and default.preview_header is True
    assert parse(cloud="aws", preview_cidrs=[]).preview_cidrs == ()
    both = parse(cloud="aws", preview_cidrs=["203.0.113.7/32"], preview_header="false")
    assert both.preview_cidrs == ("203.0.113.7/32",) and both.preview_header is False
    for empty in ([], "[]"):
        with pytest.raises(ConfigError, match=r"preview_cidrs = .* is invalid: with bluegreen:preview_header false"):
            parse(cloud="aws", preview_cidrs=empty, preview_header=False)
    with pytest.raises(ConfigError, match="or leave preview_cidrs empty and let bluegreen:preview_header guard"):
        parse("prod", preview_cidrs=["0.0.0.0/0"])


def test_stack_files_parse(tmp_path: Path) -> None:
    dev = StackConfig.from_stack_file("dev", ROOT)
    assert dev.cloud == "local" and dev.preview_cidrs == ("127.0.0.1/32",)
    prod = StackConfig.from_stack_file("prod", ROOT)
    assert prod.cloud == "aws" and prod.is_prod
    assert prod.cloud_settings["deregistration_delay_s"] == 30
    with pytest.raises(ConfigError, match="no file"):
        StackConfig.from_stack_file("nope", ROOT)
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  bluegreen:live_color: purple\n")
    with pytest.raises(ConfigError, match="purple"):
        StackConfig.from_stack_file("bad", tmp_path)


def test_pulumi_yaml_schema_mirrors_code_defaults() -> None:
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    code = StackConfig(stack="x").to_raw()
    assert set(schema) == set(code), "every contract key is documented in Pulumi.yaml and nowhere else"
    derived = {"environment", "preview_cidrs"}  # computed from the stack name / the target when unset
    for key, spec in schema.items():
        assert spec.get("description"), key
        if key == "preview_cidrs":
            assert spec.get("default") == [], "preview_cidrs is derived from the target: its schema default is []"
            assert parse(cloud="local", preview_cidrs=[]).preview_cidrs == ("127.0.0.1/32",)
            assert list(parse(cloud="aws", preview_cidrs=[]).preview_cidrs) == code[key] == []
            continue
        if key in derived:
            # The CLI requires a typed key without a default of every stack, so a derived key's
            # default is the empty string, which the code reads as unset.
            assert spec.get("default") == "", f"{key} is derived: its schema default must be empty"
            assert parse(environment="").environment == "dev"
            assert StackConfig.parse({"environment": ""}, "prod-eu").environment == "prod"
            continue
        default = spec["default"]
        if key == "db":
            expected = {k: v for k, v in code["db"].items() if v is not None}
            assert default == expected
        else:
            assert default == code[key], key
    assert DbConfig().instance is None


def test_with_changes_revalidates() -> None:
    cfg = parse(capacity=2, cloud="aws", aws={"vpc_id": "vpc-1"})
    changed = cfg.with_changes(live_color="green")
    assert changed.live_color == "green" and changed.capacity == 2
    assert changed.cloud_settings == {"vpc_id": "vpc-1"}
    with pytest.raises(ConfigError):
        cfg.with_changes(live_color="purple")


def test_a_target_not_built_in_this_checkout_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from components import targets

    real = targets.import_optional
    monkeypatch.setattr(targets, "import_optional", lambda name: None if name == "components.gcp" else real(name))
    with pytest.raises(ConfigError, match="the gcp target is not built in this checkout yet"):
        targets.build_target(parse(cloud="gcp"))


def test_import_optional_hides_only_the_missing_module_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from components.modules import import_optional

    (tmp_path / "plugin_with_bug.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_optional("no_such_plugin_xyz") is None
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        import_optional("plugin_with_bug")


def test_migrations_dir_names_the_apps_migrations_and_empty_means_none(tmp_path: Path) -> None:
    assert parse().migrations_dir == "migrations"
    assert parse().migrations_location(tmp_path) == tmp_path / "migrations"
    assert parse(migrations_dir="db/migrations").migrations_location(tmp_path) == tmp_path / "db" / "migrations"
    none = parse(migrations_dir="")
    assert none.migrations_dir == "" and none.migrations_location(tmp_path) is None
    assert StackConfig.parse(none.to_raw(), "dev").migrations_location(tmp_path) is None  # survives a round trip


def test_interval_s_takes_fractions() -> None:
    assert StackConfig.parse({"monitor": {"interval_s": 0.25}}, "dev").monitor.interval_s == 0.25


def test_preview_cidrs_default_is_the_targets() -> None:
    """A local stack binds 127.0.0.1 only: unset (or []) admits this machine; a cloud lists none (the header guards)."""
    assert parse().preview_cidrs == ("127.0.0.1/32",)
    assert parse(cloud="aws").preview_cidrs == ()
    assert parse(preview_cidrs=["10.0.0.0/8"]).preview_cidrs == ("10.0.0.0/8",), "a stack's own list is kept"
