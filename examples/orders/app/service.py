"""The orders API as a Flask app; its behaviour depends on ``APP_VERSION``.

Release 1.x stores an order's total as integer cents (``total_cents``); release 2.x
stores a decimal ``total`` that migration 002 adds, and never touches
``total_cents``, so migration 004 can drop that column once 1.x is gone. While both
run, a trigger from 002 keeps the two columns in step, so either release can be
live and rollback loses nothing.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from app.faults import Faults

V2 = "2.0.0"
# Columns each release reads or writes; /readyz fails until the schema has them.
REQUIRED_COLUMNS = {
    "v1": {"id", "item", "quantity", "total_cents", "created_at"},
    "v2": {"id", "item", "quantity", "total", "created_at"},
}


def release_line(version: str) -> str:
    """``"v2"`` for 2.0.0 and later, else ``"v1"`` (the service ships alone, so it parses itself)."""
    match = re.match(r"v?(\d+)", version)
    return "v2" if match and int(match.group(1)) >= int(V2.split(".")[0]) else "v1"


class BadOrderError(ValueError):
    """The request body is not a valid order for this release."""


def parse_order(body: Any, line: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadOrderError("body must be a JSON object")
    item = body.get("item")
    if not isinstance(item, str) or not 1 <= len(item) <= 200:
        raise BadOrderError("item: a string of 1-200 characters is required")
    quantity = body.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 10_000:
        raise BadOrderError("quantity: an integer 1-10000")
    order: dict[str, Any] = {"item": item, "quantity": quantity}
    if line == "v2":
        try:
            total = Decimal(str(body.get("total")))
        except InvalidOperation:
            raise BadOrderError("total: a decimal amount such as 12.50 is required") from None
        if not total.is_finite() or total < 0 or total > Decimal("1e9"):
            raise BadOrderError("total: a decimal amount 0-1000000000")
        order["total"] = total.quantize(Decimal("0.01"))
    else:
        cents = body.get("total_cents")
        if not isinstance(cents, int) or isinstance(cents, bool) or not 0 <= cents <= 10**11:
            raise BadOrderError("total_cents: an integer amount of cents is required")
        order["total_cents"] = cents
    return order


def render_order(row: dict[str, Any], line: str) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "item": row["item"],
        "quantity": row["quantity"],
        "created_at": row["created_at"].isoformat(),
    }
    if line == "v2":
        out["total"] = None if row["total"] is None else f"{row['total']:.2f}"
    else:
        out["total_cents"] = row["total_cents"]
    return out


def create_app(
    database_url: str | None = None,
    version: str | None = None,
    color: str | None = None,
    faults: Faults | None = None,
) -> Flask:
    """Build the app; settings default to the environment the local runtime sets."""
    database_url = database_url or os.environ.get("DATABASE_URL", "")
    version = version or os.environ.get("APP_VERSION", "0.0.0")
    color = color or os.environ.get("APP_COLOR", "unknown")
    faults = faults or Faults.from_env()
    line = release_line(version)
    columns = "id, item, quantity, created_at, " + ("total" if line == "v2" else "total_cents")

    app = Flask("bluegreen-orders")
    app.config["JSON_SORT_KEYS"] = False

    def check_connection(conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            pool.check()  # replaces the other broken idle connections now
            raise

    # open=False: the pool connects lazily, so /healthz answers even while the DB is down.
    # Recovering when the database comes back (a restart, a failover):
    # - check: every connection is tried (an empty query) before a request gets it, so
    #   connections broken by the restart are dropped instead of failing requests; the
    #   first broken one has every idle one tested at once (they all broke together),
    #   or the request would meet them one by one with the pool's backoff between them;
    # - timeout: a request waits at most this long for a connection, then gets a 503;
    #   with the default 30 s every thread sat waiting and /healthz timed out too;
    # - reconnect_timeout: the pool retries a lost connection with a doubling delay and
    #   gives up after this long; the next request then starts a fresh attempt at once,
    #   so a database that is back is used within about a second, not after the pool's
    #   next backoff step (1, 2, 4, 8 ... s: after a 24 s outage under load, readiness
    #   came back 5.3 s after the database did; now 0.9 s).
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=int(os.environ.get("APP_DB_POOL_SIZE", "4")),
        open=False,
        kwargs={"row_factory": dict_row, "connect_timeout": 3},
        check=check_connection,
        timeout=float(os.environ.get("APP_DB_TIMEOUT_S", "2")),
        reconnect_timeout=2.0,
    )
    app.extensions["db_pool"] = pool

    def db() -> ConnectionPool:
        if pool.closed:
            pool.open(wait=False)
        return pool

    @app.after_request
    def identify(response: Response) -> Response:
        response.headers["X-App-Color"] = color
        response.headers["X-App-Version"] = version
        return response

    @app.errorhandler(psycopg.OperationalError)  # PoolTimeout is one too
    def database_unavailable(exc: Exception) -> tuple[Response, int]:
        """The database is unreachable: 503 (retry later), not a 500 that says the code is broken."""
        return jsonify(error=f"database unavailable: {type(exc).__name__}"), 503

    @app.before_request
    def inject_faults() -> Response | None:
        if request.path in ("/healthz", "/readyz"):
            return None
        faults.delay()
        if faults.should_fail_request():
            return Response("injected fault\n", status=500, mimetype="text/plain")
        return None

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", color=color, version=version)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        if faults.readiness_broken():
            return jsonify(status="failing", reason="FAULT_FAIL_READINESS is set"), 503
        try:
            with db().connection(timeout=3) as conn:
                found = {
                    r["column_name"]
                    for r in conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
                    )
                }
        except Exception as exc:
            return jsonify(status="failing", reason=f"database unreachable: {type(exc).__name__}"), 503
        missing = sorted(REQUIRED_COLUMNS[line] - found)
        if missing:
            return jsonify(status="failing", reason=f"schema lacks orders.{', orders.'.join(missing)}"), 503
        return jsonify(status="ready", color=color, version=version), 200

    @app.get("/")
    def index() -> Response:
        return jsonify(service="orders", color=color, version=version, release=line)

    @app.post("/orders")
    def create_order() -> tuple[Response, int]:
        try:
            order = parse_order(request.get_json(silent=True), line)
        except BadOrderError as exc:
            return jsonify(error=str(exc)), 400
        names = list(order)
        sql = f"INSERT INTO orders ({', '.join(names)}) VALUES ({', '.join('%s' for _ in names)}) RETURNING {columns}"
        with db().connection() as conn:
            row = conn.execute(sql, list(order.values())).fetchone()
        return jsonify(render_order(row, line)), 201

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> tuple[Response, int]:
        with db().connection() as conn:
            row = conn.execute(f"SELECT {columns} FROM orders WHERE id = %s", [order_id]).fetchone()
        if row is None:
            return jsonify(error=f"order {order_id} not found"), 404
        return jsonify(render_order(row, line)), 200

    @app.get("/orders")
    def list_orders() -> tuple[Response, int]:
        limit = request.args.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 500:
            return jsonify(error="limit: an integer 1-500"), 400
        with db().connection() as conn:
            rows = conn.execute(f"SELECT {columns} FROM orders ORDER BY id DESC LIMIT %s", [int(limit)]).fetchall()
        return jsonify(orders=[render_order(r, line) for r in rows]), 200

    return app
