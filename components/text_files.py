"""Reading the files people write (stack, smoke and migration files) as UTF-8, or saying why not.

A file saved in another encoding would otherwise surface as a traceback from deep
inside a command; here it is the caller's own input error, naming the file and the
first byte that is not UTF-8.
"""

from __future__ import annotations

from pathlib import Path


def read_utf8(path: Path, error: type[Exception], what: str) -> str:
    """The text of ``path``; ``error`` (the caller's bad-input type) if it is unreadable or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: the {what} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
