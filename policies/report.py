"""Lint results as text for people, JSON for scripts and SARIF for code-scanning UIs."""

from __future__ import annotations

import json
from typing import Any

from policies.analyzer import Finding, LintResult
from policies.rules import ERROR, RULES

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def summary(result: LintResult) -> str:
    verdict = "clean" if not result.findings else f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)"
    return f"{result.files} file(s), {result.statements} statement(s) checked: {verdict}"


def _first_line(sql: str, width: int = 110) -> str:
    line = " ".join(sql.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def as_text(result: LintResult) -> str:
    lines: list[str] = []
    for f in result.findings:
        where = f" ({f.context})" if f.context else ""
        lines.append(f"{f.file}:{f.line}:{f.column}: {f.severity} [{f.rule}]{where} {f.message}")
        if f.statement:
            lines.append(f"    {_first_line(f.statement)}")
        lines.append(f"    safe recipe: {f.recipe}")
    lines.append(summary(result))
    return "\n".join(lines)


def as_json(result: LintResult) -> str:
    return json.dumps(
        {
            "files": result.files,
            "statements": result.statements,
            "errors": len(result.errors),
            "warnings": len(result.warnings),
            "findings": [f.to_dict() for f in result.findings],
        },
        indent=2,
    )


def _sarif_result(f: Finding) -> dict[str, Any]:
    return {
        "ruleId": f.rule,
        "level": "error" if f.severity == ERROR else "warning",
        "message": {"text": f"{f.message}. Safe recipe: {f.recipe}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": f.file},
                    "region": {"startLine": f.line, "startColumn": f.column},
                }
            }
        ],
    }


def as_sarif(result: LintResult) -> str:
    rules = [
        {
            "id": rule.id,
            "name": rule.id,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.why},
            "help": {"text": rule.recipe},
            "defaultConfiguration": {"level": "error" if rule.severity == ERROR else "warning"},
            "properties": {"category": rule.category},
        }
        for rule in RULES.values()
    ]
    run = {
        "tool": {
            "driver": {"name": "bluegreen-migration-lint", "informationUri": "docs/migrations.md", "rules": rules}
        },
        "results": [_sarif_result(f) for f in result.findings],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def render(result: LintResult, fmt: str) -> str:
    return {"text": as_text, "json": as_json, "sarif": as_sarif}[fmt](result)
