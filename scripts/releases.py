"""What a stack released and rolled back, so that rollbacks go back and never forward.

Two files under ``.bluegreen/<stack>/``:

- ``rolled_back.json``: every version a rollback took off prod, with when and why.
  After a rollback the idle colour still runs the release that failed (``make demo``
  leaves 2.1.0 there); ``switch`` and ``rollback`` onto a colour running one are
  refused (exit 2) unless ``--force``. A version later released and promoted is
  taken off the list.
- ``promoted.json``: the releases known good, newest last: each one a ``deploy``
  promoted (bake and guard passed) or a ``monitor`` passed, and first of all the
  release that was live when a command first changed the route. ``rollback`` goes to
  the newest of them, other than the one serving, that a colour still runs (and that
  was not rolled back since), so a rollback after an interrupted release (stopped
  during smoke, say) never moves prod onto the new, unchecked build. A manual
  ``switch`` promotes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.record import utc_now

ROLLED_BACK_FILE = "rolled_back.json"
PROMOTED_FILE = "promoted.json"


class KnownBadReleaseError(RuntimeError):
    """The colour to switch to runs a version this stack rolled back."""


@dataclass(frozen=True)
class RolledBack:
    version: str
    color: str
    at: str  # ISO 8601, UTC
    reason: str


class ReleaseFileError(RuntimeError):
    """A release file under .bluegreen/<stack>/ exists but cannot be read."""


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReleaseFileError(f"{path} is unreadable ({exc}); fix or delete it") from exc


def _write(path: Path, document: Any) -> None:
    """Whole or not at all: a kill mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)


class RolledBackVersions:
    def __init__(self, project_dir: Path | str, stack: str) -> None:
        self.path = Path(project_dir).resolve() / ".bluegreen" / stack / ROLLED_BACK_FILE

    def _load(self) -> dict[str, RolledBack]:
        try:
            raw = _read(self.path) or {}
            return {version: RolledBack(**entry) for version, entry in raw.items()}
        except (ReleaseFileError, TypeError, AttributeError) as exc:
            raise KnownBadReleaseError(f"{self.path} is unreadable ({exc}); fix or delete it") from exc

    def _save(self, entries: dict[str, RolledBack]) -> None:
        _write(self.path, {v: asdict(e) for v, e in entries.items()})

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


@dataclass(frozen=True)
class Promoted:
    color: str
    version: str
    at: str  # ISO 8601, UTC
    how: str  # "deploy" (baked and guarded) or "live before the first change"


class PromotedReleases:
    """The releases this stack promoted, oldest first (the last ``KEEP``)."""

    KEEP = 20

    def __init__(self, project_dir: Path | str, stack: str) -> None:
        self.path = Path(project_dir).resolve() / ".bluegreen" / stack / PROMOTED_FILE

    def history(self) -> list[Promoted]:
        raw = _read(self.path)
        try:
            return [Promoted(**entry) for entry in raw or []]
        except TypeError as exc:
            raise ReleaseFileError(f"{self.path} is unreadable ({exc}); fix or delete it") from exc

    def record(self, color: str, version: str, how: str) -> Promoted:
        promoted = Promoted(color, version, utc_now().isoformat(timespec="seconds"), how)
        history = [p for p in self.history() if (p.color, p.version) != (color, version)]
        _write(self.path, [asdict(p) for p in [*history, promoted][-self.KEEP :]])
        return promoted

    def ensure(self, color: str, version: str) -> None:
        """Before the route first changes: with no history yet, the release live now is the first."""
        if not self.history():
            self.record(color, version, "live before the first change")
