"""The supervisor's pure parts (no processes): its setting, the lock it tries, causes from logs, the app's 503."""

from __future__ import annotations

from pathlib import Path

import pytest
from app.faults import Faults
from app.service import create_app

from components.config import ConfigError, StackConfig
from components.local.apps import START_MARKER
from components.local.settings import LocalSettings
from components.local.state import StateBusyError, StateDir
from components.local.supervisor import (
    PG_READY,
    last_error_line,
    part_record,
    record_applied,
    restart_summary,
)


def test_supervise_is_on_by_default_and_must_be_a_boolean() -> None:
    assert LocalSettings.parse({}).supervise is True
    assert LocalSettings.parse({"supervise": False}).supervise is False
    with pytest.raises(ConfigError, match=r"bluegreen:local.supervise = 'no' is invalid: true or false"):
        LocalSettings.parse({"supervise": "no"})


def test_a_busy_lock_raises_instead_of_waiting_and_is_reentrant_when_held(tmp_path: Path) -> None:
    holder, other = StateDir(tmp_path, "s"), StateDir(tmp_path, "s")
    with holder.locked():
        with pytest.raises(StateBusyError), other.locked(blocking=False):
            pass
        with holder.locked(blocking=False):  # the holder itself re-enters
            pass
    with other.locked(blocking=False):
        pass


def test_the_applied_config_round_trips_and_only_recorded_processes_are_watched(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "s")
    config = StackConfig.parse({"cloud": "local", "app_port": 20001, "blue_version": "1.2.3"}, "s")
    record_applied(state, "blue", config, "/usr/bin/python3")
    applied = state.load()["applied"]["blue"]
    assert StackConfig.parse(applied["config"], "s") == config and applied["python"] == "/usr/bin/python3"
    state.update(apps={"blue": {"process": {"pid": 1, "started": 2}, "spec": {}}, "green": None})
    assert part_record(state.load(), "blue") is not None
    assert part_record(state.load(), "green") is None and part_record(state.load(), "haproxy") is None


def test_the_cause_is_the_last_error_of_the_last_run(tmp_path: Path) -> None:
    log = tmp_path / "blue.log"
    log.write_text(
        f"{START_MARKER} first start\nRuntimeError: old news\n"
        f"{START_MARKER} second start\nserving\nTraceback (most recent call last):\n  File x\n"
        "MemoryError: out of memory\nshutting down\n"
    )
    assert last_error_line(log, START_MARKER) == "MemoryError: out of memory"
    log.write_text(f"{START_MARKER} start\nRuntimeError: old\n{START_MARKER} start\nKilled\n")
    assert last_error_line(log, START_MARKER) is None
    assert last_error_line(log, START_MARKER, or_last=True) == "Killed"
    pg = tmp_path / "postgres.log"
    pg.write_text(f"FATAL:  old\nLOG:  {PG_READY}\nLOG:  checkpoint starting\n")
    assert last_error_line(pg, PG_READY) is None
    assert last_error_line(tmp_path / "missing.log", START_MARKER) is None


def test_restart_summary_of_a_part_never_restarted() -> None:
    assert restart_summary(None) == {
        "count": 0,
        "last_at": None,
        "last_cause": None,
        "failed": 0,
        "last_error": None,
        "gave_up": None,
    }


def test_the_app_answers_503_while_its_database_is_unreachable() -> None:
    app = create_app("postgresql://nobody:x@127.0.0.1:1/none", "1.0.0", "blue", Faults())
    answer = app.test_client().get("/orders")
    assert answer.status_code == 503 and answer.get_json()["error"].startswith("database unavailable")
