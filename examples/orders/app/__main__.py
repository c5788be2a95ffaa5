"""Run the orders service under gunicorn: ``python -m app --host 127.0.0.1 --port 18081``.

Settings come from the environment the local runtime sets: ``DATABASE_URL``,
``APP_VERSION``, ``APP_COLOR``, the ``FAULT_*`` variables, and ``APP_WORKERS`` /
``APP_THREADS`` for the gunicorn ``gthread`` pool. ``SO_REUSEPORT`` is on, so a new
process can take over a port before the old one drains (restart without downtime), and
the workers (:mod:`app.worker`) leave the port as soon as they are told to stop.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from app.faults import Faults, FaultSettingsError
from app.service import create_app


class OrdersServer(BaseApplication):
    """gunicorn driven from Python, so the service needs no config file."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        Faults.from_env()
    except FaultSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    OrdersServer(
        {
            "bind": f"{args.host}:{args.port}",
            "workers": int(os.environ.get("APP_WORKERS", "2")),
            "worker_class": "app.worker.HandoverWorker",
            "threads": int(os.environ.get("APP_THREADS", "4")),
            "reuse_port": True,
            "keepalive": 30,
            "graceful_timeout": 10,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"bluegreen-app-{os.environ.get('APP_COLOR', 'x')}",
        }
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
