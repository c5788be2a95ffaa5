"""Pre-switch smoke checks, defined in YAML and run against one colour's route.

A check is one HTTP request and what its response must show::

    - name: create order
      method: POST
      path: /orders
      headers: {X-Request-Source: smoke}
      body: {item: smoke-test, quantity: 1}      # a mapping or list is sent as JSON
      expect:
        status: 201
        fields: {item: smoke-test}                # JSON fields (dotted paths) and their values
        contains: ['"quantity"']                  # substrings of the body
        max_latency_ms: 500
      save: {order_id: id}                        # remember a JSON field for later checks

Strings may use ``{color}``, ``{version}`` (of the colour under test) and saved names,
so a business flow can create a record and read it back. A route may demand headers of its
own (a cloud's preview route wants the stack's secret header): they go with every request
and are never shown or recorded. Each check is retried with
exponential backoff while the colour warms up, all within one overall timeout; the
colour must also be healthy as its load balancer sees it. A file that is not valid
gets :class:`SmokeFileError` naming the line, which the command turns into exit 2.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, stop_after_delay, wait_exponential

from components.targets import PREVIEW_HEADER_NAME_OUTPUT, PREVIEW_HEADER_VALUE_OUTPUT
from components.text_files import read_utf8

HEALTH_CHECK_NAME = "targets healthy (load balancer)"  # the pre-check every smoke run starts with
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CHECK_KEYS = {"name", "method", "path", "headers", "body", "expect", "save"}
EXPECT_KEYS = {"status", "fields", "contains", "max_latency_ms"}
SETTINGS_KEYS = {"timeout_s", "attempts", "backoff_s", "max_backoff_s", "request_timeout_s"}
BODY_SHOWN = 2000
REDACTED = "<redacted>"


class SmokeFileError(ValueError):
    """The smoke file is not valid; the message names the file, line and what is allowed."""


@dataclass(frozen=True)
class Expectation:
    status: int = 200
    fields: Mapping[str, Any] = field(default_factory=dict)
    contains: tuple[str, ...] = ()
    max_latency_ms: float | None = None


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    expect: Expectation
    save: Mapping[str, str]
    line: int


@dataclass(frozen=True)
class SmokeSettings:
    """Retry and time budget: ``attempts`` per check, all checks within ``timeout_s``."""

    timeout_s: float = 60.0
    attempts: int = 8
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0
    request_timeout_s: float = 5.0


@dataclass(frozen=True)
class SmokeSuite:
    path: Path
    settings: SmokeSettings
    checks: tuple[SmokeCheck, ...]


@dataclass
class CheckResult:
    """The last attempt of one check; on failure it keeps the request and response."""

    name: str
    passed: bool
    attempts: int
    detail: str
    status: int | None = None
    latency_ms: float | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SmokeReport:
    color: str
    base_url: str
    results: list[CheckResult]
    duration_s: float

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def tally(self) -> str:
        """The file's checks passed, as "4/4 checks"; the load balancer's health pre-check said apart."""
        checks = [r for r in self.results if r.name != HEALTH_CHECK_NAME]
        health = next((r for r in self.results if r.name == HEALTH_CHECK_NAME), None)
        said = f"{sum(r.passed for r in checks)}/{len(checks)} checks"
        return said if health is None else f"{said} (targets healthy: {'yes' if health.passed else 'no'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "base_url": self.base_url,
            "passed": self.passed,
            "duration_s": round(self.duration_s, 3),
            "results": [r.to_dict() for r in self.results],
        }


# -- loading ----------------------------------------------------------------------------


class _Doc:
    """A YAML document with the line of every value, so errors can point at it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = read_utf8(path, SmokeFileError, "smoke file")
        try:
            loader = yaml.SafeLoader(text)
            try:
                self.node = loader.get_single_node()
                self.data = loader.construct_document(self.node) if self.node is not None else None
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else "?"
            raise SmokeFileError(f"{path}:{line}: not valid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise SmokeFileError(f"{path}: not valid YAML: {exc}") from None

    def line(self, *keys: str | int) -> int:
        node = self.node
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == key), node)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
        return (node.start_mark.line + 1) if node is not None else 1

    def fail(self, where: tuple[str | int, ...], message: str) -> SmokeFileError:
        label = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where).lstrip(".")
        return SmokeFileError(f"{self.path}:{self.line(*where)}: {label or 'file'}: {message}")


def load_suite(path: Path | str) -> SmokeSuite:
    """Parse and validate a smoke file; every problem is a :class:`SmokeFileError` with its line."""
    doc = _Doc(Path(path))
    data = doc.data
    if isinstance(data, list):
        data = {"checks": data}
    if not isinstance(data, dict):
        raise doc.fail((), "expected a mapping with 'checks' (and optional 'settings'), or a list of checks")
    unknown = set(data) - {"checks", "settings"}
    if unknown:
        raise doc.fail((sorted(unknown)[0],), "unknown key; allowed: checks, settings")
    settings = _settings(doc, data.get("settings") or {})
    raw_checks = data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise doc.fail(("checks",), "expected a non-empty list of checks")
    checks = tuple(_check(doc, i, raw) for i, raw in enumerate(raw_checks))
    names = [c.name for c in checks]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise doc.fail(("checks", i, "name"), f"duplicate check name {name!r}")
    _check_placeholders(doc, raw_checks, checks)
    return SmokeSuite(Path(path), settings, checks)


PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILT_IN_PLACEHOLDERS = ("color", "version")


def _placeholders(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def _check_placeholders(doc: _Doc, raw_checks: list[Any], checks: Sequence[SmokeCheck]) -> None:
    """Every ``{name}`` is built in or saved by an earlier check: found now, not after the retries."""
    known = set(BUILT_IN_PLACEHOLDERS)
    for index, (raw, check) in enumerate(zip(raw_checks, checks, strict=True)):
        for key in ("path", "headers", "body", "expect"):
            unknown = sorted(set(_placeholders(raw.get(key))) - known)
            if unknown:
                saved = sorted(known - set(BUILT_IN_PLACEHOLDERS))
                raise doc.fail(
                    ("checks", index, key),
                    f"{{{unknown[0]}}} is never set: placeholders are {{color}}, {{version}} and names an earlier "
                    f"check saves (saved before this check: {', '.join(saved) or 'none'})",
                )
        known |= set(check.save)


def _settings(doc: _Doc, raw: Any) -> SmokeSettings:
    if not isinstance(raw, dict):
        raise doc.fail(("settings",), f"expected a mapping with {', '.join(sorted(SETTINGS_KEYS))}")
    unknown = set(raw) - SETTINGS_KEYS
    if unknown:
        raise doc.fail(("settings", sorted(unknown)[0]), f"unknown key; allowed: {', '.join(sorted(SETTINGS_KEYS))}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise doc.fail(("settings", key), f"{value!r} is invalid: a positive number")
        if key == "attempts" and not isinstance(value, int):
            raise doc.fail(("settings", key), f"{value!r} is invalid: a positive integer")
        values[key] = value
    return SmokeSettings(**values)


def _check(doc: _Doc, index: int, raw: Any) -> SmokeCheck:
    at: tuple[str | int, ...] = ("checks", index)
    if not isinstance(raw, dict):
        raise doc.fail(at, "each check is a mapping with name, path and expect")
    unknown = set(raw) - CHECK_KEYS
    if unknown:
        raise doc.fail((*at, sorted(unknown)[0]), f"unknown key; allowed: {', '.join(sorted(CHECK_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise doc.fail((*at, "name"), "every check needs a non-empty name")
    method = str(raw.get("method", "GET")).upper()
    if method not in METHODS:
        raise doc.fail((*at, "method"), f"{raw.get('method')!r} is invalid; allowed: {', '.join(METHODS)}")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise doc.fail((*at, "path"), f"{path!r} is invalid: an absolute URL path such as /healthz")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str | int | float) for v in headers.values()):
        raise doc.fail((*at, "headers"), "expected a mapping of header names to strings")
    if "expect" not in raw:
        raise doc.fail(at, f"check {name!r} has no expect: say what a good answer is, at least expect: {{status: 200}}")
    save = raw.get("save") or {}
    if not isinstance(save, dict) or not all(isinstance(v, str) for v in save.values()):
        raise doc.fail((*at, "save"), "expected a mapping of names to JSON field paths, e.g. {order_id: id}")
    return SmokeCheck(
        name=name,
        method=method,
        path=path,
        headers={str(k): str(v) for k, v in headers.items()},
        body=raw.get("body"),
        expect=_expectation(doc, (*at, "expect"), raw["expect"]),
        save=save,
        line=doc.line(*at),
    )


def _expectation(doc: _Doc, at: tuple[str | int, ...], raw: Any) -> Expectation:
    if not isinstance(raw, dict):
        raise doc.fail(at, f"expected a mapping with {', '.join(sorted(EXPECT_KEYS))}")
    unknown = set(raw) - EXPECT_KEYS
    if unknown:
        raise doc.fail((*at, sorted(unknown)[0]), f"unknown key; allowed: {', '.join(sorted(EXPECT_KEYS))}")
    status = raw.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise doc.fail((*at, "status"), f"{status!r} is invalid: an HTTP status code 100-599")
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict):
        raise doc.fail((*at, "fields"), "expected a mapping of JSON field paths to values")
    contains = raw.get("contains") or []
    if isinstance(contains, str):
        contains = [contains]
    if not isinstance(contains, list) or not all(isinstance(s, str) for s in contains):
        raise doc.fail((*at, "contains"), "expected a string or a list of strings")
    latency = raw.get("max_latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float) or latency <= 0):
        raise doc.fail((*at, "max_latency_ms"), f"{latency!r} is invalid: a positive number of milliseconds")
    return Expectation(status=status, fields=fields, contains=tuple(contains), max_latency_ms=latency)


# -- running ----------------------------------------------------------------------------


def route_headers(outputs: Mapping[str, Any], route: str) -> dict[str, str]:
    """What a request on ``route`` (``live_url`` / ``preview_url``) must carry: the preview header, if any."""
    name, value = outputs.get(PREVIEW_HEADER_NAME_OUTPUT), outputs.get(PREVIEW_HEADER_VALUE_OUTPUT)
    if route != "preview_url" or not name or not value:
        return {}
    return {str(name): str(value)}


def _fill(value: Any, variables: Mapping[str, Any]) -> Any:
    """Substitute ``{name}`` in strings, recursively; unknown names stay as written."""
    if isinstance(value, str):
        out = value
        for name, replacement in variables.items():
            out = out.replace("{" + name + "}", str(replacement))
        return out
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _field(document: Any, dotted: str) -> tuple[bool, Any]:
    current = document
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _problems(check: SmokeCheck, expect: Expectation, response: httpx.Response, latency_ms: float) -> list[str]:
    problems: list[str] = []
    if response.status_code != expect.status:
        problems.append(f"status {response.status_code}, expected {expect.status}")
    if expect.fields:
        try:
            document = response.json()
        except ValueError:
            problems.append("body is not JSON, expected fields " + ", ".join(expect.fields))
        else:
            for dotted, wanted in expect.fields.items():
                found, actual = _field(document, dotted)
                if not found:
                    problems.append(f"field {dotted!r} missing")
                elif actual != wanted and str(actual) != str(wanted):
                    problems.append(f"field {dotted!r} = {actual!r}, expected {wanted!r}")
    for text in expect.contains:
        if text not in response.text:
            problems.append(f"body lacks {text!r}")
    if expect.max_latency_ms is not None and latency_ms > expect.max_latency_ms:
        problems.append(f"latency {latency_ms:.0f} ms > max {expect.max_latency_ms:g} ms")
    return problems


class SmokeRunner:
    """Runs a suite against one base URL, with retries inside one time budget."""

    def __init__(
        self,
        suite: SmokeSuite,
        base_url: str,
        color: str,
        version: str,
        health: Callable[[], tuple[bool, str]] | None = None,
        client: httpx.Client | None = None,
        route_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.suite = suite
        self.route_headers = dict(route_headers or {})
        self.base_url = base_url.rstrip("/")
        self.color = color
        self.variables: dict[str, Any] = {"color": color, "version": version}
        self.health = health
        self.client = client or httpx.Client(timeout=suite.settings.request_timeout_s)

    def run(self) -> SmokeReport:
        started = time.monotonic()
        deadline = started + self.suite.settings.timeout_s
        results: list[CheckResult] = []
        if self.health is not None:
            results.append(self._retry(HEALTH_CHECK_NAME, self._health_attempt, deadline))
        for check in self.suite.checks:
            if results and not results[-1].passed:
                results.append(CheckResult(check.name, False, 0, "not run: an earlier check failed"))
                continue
            results.append(self._retry(check.name, lambda c=check: self._attempt(c), deadline))
        return SmokeReport(self.color, self.base_url, results, time.monotonic() - started)

    def _retry(self, name: str, attempt: Callable[[], CheckResult], deadline: float) -> CheckResult:
        settings = self.suite.settings
        remaining = max(0.0, deadline - time.monotonic())
        tries = 0

        def counted() -> CheckResult:
            nonlocal tries
            tries += 1
            return attempt()

        retrying = Retrying(
            stop=stop_after_attempt(settings.attempts) | stop_after_delay(remaining),
            wait=wait_exponential(multiplier=settings.backoff_s, max=settings.max_backoff_s),
            retry=retry_if_result(lambda r: not r.passed),
        )
        try:
            result = retrying(counted)
        except RetryError as exc:
            result = exc.last_attempt.result()
            if time.monotonic() >= deadline:
                result.detail += f" (overall timeout {settings.timeout_s:g}s reached)"
        result.name, result.attempts = name, tries
        return result

    def _health_attempt(self) -> CheckResult:
        assert self.health is not None
        healthy, detail = self.health()
        return CheckResult("", healthy, 0, detail)

    def _attempt(self, check: SmokeCheck) -> CheckResult:
        path = _fill(check.path, self.variables)
        headers = _fill(dict(check.headers), self.variables)
        body = _fill(check.body, self.variables)
        expect = Expectation(
            status=check.expect.status,
            fields=_fill(dict(check.expect.fields), self.variables),
            contains=tuple(_fill(list(check.expect.contains), self.variables)),
            max_latency_ms=check.expect.max_latency_ms,
        )
        kwargs: dict[str, Any] = {"headers": {**self.route_headers, **headers}}
        if isinstance(body, dict | list):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = str(body)
        url = self.base_url + path
        shown = {**dict.fromkeys(self.route_headers, REDACTED), **headers}
        request = {"method": check.method, "url": url, "headers": shown, "body": body}
        started = time.perf_counter()
        try:
            response = self.client.request(check.method, url, **kwargs)
        except httpx.HTTPError as exc:
            return CheckResult("", False, 0, f"request failed: {type(exc).__name__}: {exc}", request=request)
        latency_ms = (time.perf_counter() - started) * 1000
        problems = _problems(check, expect, response, latency_ms)
        if not problems:
            for name, dotted in check.save.items():
                found, value = _field(_json_or_none(response), dotted)
                if not found:
                    problems.append(f"cannot save {name!r}: field {dotted!r} missing")
                else:
                    self.variables[name] = value
        result = CheckResult(
            "",
            not problems,
            0,
            "; ".join(problems) or "ok",
            status=response.status_code,
            latency_ms=round(latency_ms, 1),
        )
        if problems:
            result.request = request
            result.response = {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": response.text[:BODY_SHOWN],
            }
        return result


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def print_report(report: SmokeReport, console: Console) -> None:
    """The pass/fail table, then the request and response of every failure."""
    table = Table(title=f"smoke: {report.color} via {report.base_url}", title_justify="left")
    for column in ("check", "result", "status", "latency ms", "attempts", "detail"):
        table.add_column(column)
    for r in report.results:
        table.add_row(
            r.name,
            "[green]PASS[/]" if r.passed else "[red]FAIL[/]",
            "" if r.status is None else str(r.status),
            "" if r.latency_ms is None else f"{r.latency_ms:.0f}",
            str(r.attempts),
            r.detail,
        )
    console.print(table)
    for r in report.results:
        if r.request is not None:
            console.print(f"[red]failed check {r.name!r}[/] request:", json.dumps(r.request, indent=2, default=str))
            if r.response is not None:
                console.print("response:", json.dumps(r.response, indent=2, default=str))
    verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
    console.print(f"smoke {verdict}: {report.tally()} in {report.duration_s:.1f}s")
