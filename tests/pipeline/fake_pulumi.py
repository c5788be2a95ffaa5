"""An in-memory Pulumi CLI for Automation API tests: config, up, outputs, history.

It subclasses ``PulumiCommand`` without running a binary and answers the commands
``pulumi.automation`` issues (read from pulumi/automation/_stack.py and
_local_workspace.py). ``fail_up`` makes the next ``up`` calls exit non-zero; ``on_up`` is
told the config of every ``up`` that succeeds (what a fake cloud then does); mappings and
lists in ``config`` are written to the stack file structured, as ``config set --path`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import semver
import yaml
from pulumi.automation._cmd import CommandResult, OnOutput, PulumiCommand
from pulumi.automation.errors import create_command_error

HISTORY_TIME = "2026-01-01T12:00:00.000Z"


class FakePulumiCommand(PulumiCommand):
    def __init__(
        self,
        config: Mapping[str, Any],
        metrics: Mapping[str, Any] | None = None,
        stack_file: Path | None = None,
        urls: tuple[str, str] = ("https://app.example.com", "https://app.example.com:8443"),
        on_up: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.command = "pulumi"
        self.version = semver.VersionInfo.parse("3.272.0")
        self.structured = {k: v for k, v in config.items() if isinstance(v, Mapping | list)}
        self.config: dict[str, dict[str, Any]] = {
            k: {"value": json.dumps(v) if k in self.structured else str(v), "secret": False} for k, v in config.items()
        }
        self.urls = urls
        self.on_up = on_up
        # Like the CLI, config changes are written to the stack file (the target reads it back).
        self.stack_file = stack_file
        self._save()
        self.metrics = dict(metrics or {"source": "cloudwatch"})
        self.calls: list[list[str]] = []
        self.fail_up = 0
        self.applied: list[dict[str, str]] = []

    def _save(self) -> None:
        if self.stack_file is not None:
            doc = {"config": {k: self.structured.get(k, v["value"]) for k, v in self.config.items()}}
            self.stack_file.write_text(yaml.safe_dump(doc))

    def _outputs(self) -> dict[str, Any]:
        conf = {k.split(":", 1)[1]: v["value"] for k, v in self.config.items() if k.startswith("bluegreen:")}
        applied = self.applied[-1] if self.applied else conf
        live = applied.get("live_color", "blue")
        return {
            "live_color": live,
            "idle_color": "green" if live == "blue" else "blue",
            "live_url": self.urls[0],
            "preview_url": self.urls[1],
            "blue_version": applied.get("blue_version", "1.0.0"),
            "green_version": applied.get("green_version", "1.0.0"),
            "metrics": self.metrics,
        }

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        args = [a for a in args if a != "--non-interactive"]
        self.calls.append(args)
        result = self._answer(args, on_output)
        if result.code != 0:
            raise create_command_error(result)
        return result

    def _answer(self, args: list[str], on_output: OnOutput | None) -> CommandResult:
        ok = CommandResult("", "", 0)
        if args[:2] == ["stack", "select"]:
            return ok
        if args[:1] == ["config"] and "--json" in args and len(args) > 1 and args[1] == "--show-secrets":
            return CommandResult(json.dumps(self.config), "", 0)
        if args[:2] == ["config", "get"]:
            if args[2] not in self.config:
                return CommandResult("", f"configuration key '{args[2]}' not found", 255)
            return CommandResult(json.dumps(self.config[args[2]]), "", 0)
        if args[:2] == ["config", "set-all"]:
            pairs = args[args.index("--plaintext") :]
            for flag, pair in zip(pairs[::2], pairs[1::2], strict=True):
                key, value = pair.split("=", 1)
                self.config[key] = {"value": value, "secret": flag == "--secret"}
            self._save()
            return ok
        if args[:2] == ["config", "rm"]:
            self.config.pop(args[2], None)
            self._save()
            return ok
        if args[:1] == ["up"]:
            if on_output:
                on_output("Updating (fake)\n")
            if self.fail_up > 0:
                self.fail_up -= 1
                return CommandResult("", "error: update failed: listener rule conflict", 255)
            self.applied.append({k.split(":", 1)[1]: v["value"] for k, v in self.config.items()})
            if self.on_up is not None:
                self.on_up(self.applied[-1])
            return CommandResult("Resources: 1 updated\n", "", 0)
        if args[:2] == ["stack", "output"]:
            return CommandResult(json.dumps(self._outputs()), "", 0)
        if args[:2] == ["stack", "history"]:
            summary = {
                "kind": "update",
                "startTime": HISTORY_TIME,
                "endTime": HISTORY_TIME,
                "message": "",
                "environment": {},
                "config": self.config,
                "result": "succeeded",
                "version": len(self.applied),
            }
            return CommandResult(json.dumps([summary]), "", 0)
        return CommandResult("", f"fake pulumi: unexpected command {args}", 2)

    def commands(self, *prefixes: str) -> list[list[str]]:
        """The recorded calls whose first word is one of ``prefixes`` (stack/selection noise dropped)."""
        return [c for c in self.calls if c[0] in prefixes and c[:2] != ["config", "--show-secrets"]]
