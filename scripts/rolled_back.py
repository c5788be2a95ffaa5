"""Versions a stack rolled back, so that no one switches onto a release known to be bad by accident.

After a rollback the idle colour still runs the release that failed (``make demo``
leaves 2.1.0 there). Every rollback records that version in
``.bluegreen/<stack>/rolled_back.json`` with when and why; ``switch`` and ``rollback``
onto a colour running one are refused (exit 2) unless ``--force``. A version that is
later released and promoted is taken off the list.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts.record import utc_now

FILE_NAME = "rolled_back.json"


class KnownBadReleaseError(RuntimeError):
    """The colour to switch to runs a version this stack rolled back."""


@dataclass(frozen=True)
class RolledBack:
    version: str
    color: str
    at: str  # ISO 8601, UTC
    reason: str


class RolledBackVersions:
    def __init__(self, project_dir: Path | str, stack: str) -> None:
        self.path = Path(project_dir).resolve() / ".bluegreen" / stack / FILE_NAME

    def _load(self) -> dict[str, RolledBack]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KnownBadReleaseError(f"{self.path} is unreadable ({exc}); fix or delete it") from exc
        return {version: RolledBack(**entry) for version, entry in raw.items()}

    def _save(self, entries: dict[str, RolledBack]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({v: asdict(e) for v, e in entries.items()}, indent=2) + "\n")
        os.replace(tmp, self.path)

    def get(self, version: str) -> RolledBack | None:
        return self._load().get(version)

    def record(self, version: str, color: str, reason: str) -> None:
        entries = self._load()
        entries[version] = RolledBack(version, color, utc_now().isoformat(timespec="seconds"), reason)
        self._save(entries)

    def forget(self, version: str) -> None:
        entries = self._load()
        if entries.pop(version, None) is not None:
            self._save(entries)

    def refuse(self, color: str, version: str) -> None:
        """Raise when ``version`` (what ``color`` runs) was rolled back on this stack."""
        bad = self.get(version)
        if bad is not None:
            raise KnownBadReleaseError(
                f"{color} runs {version}, which this stack rolled back at {bad.at} because {bad.reason}; "
                f"deploy a fixed version instead, or pass --force to switch to it anyway"
            )
