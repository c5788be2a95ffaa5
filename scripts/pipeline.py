"""The release flow over any :class:`~scripts.targets.Target`: smoke, switch, verify, monitor, roll back.

Every step prints what it waits for and records what it decided with the evidence
(metric values, thresholds, times). The stack config stays the source of truth: a
switch or a rollback is always ``live_color`` (and ``live_traffic_percent`` for a
gradual switch) set through the target and applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from components.config import COLORS, other_color
from scripts.decision import INCONCLUSIVE, PASS, PROMOTE, ROLLBACK, WATCH, Check, Decision
from scripts.metrics import ColorHealth, MetricsSourceError
from scripts.monitor import MonitorResult, watch
from scripts.record import RunRecord, utc_now
from scripts.releases import PromotedReleases, RolledBackVersions
from scripts.smoke import SmokeReport, SmokeRunner, load_suite, print_report, route_headers
from scripts.targets import Target, TargetError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COLOR_HEADER = "X-App-Color"
CHECK_NOTE_EVERY_S = 1.0


@dataclass(frozen=True)
class PipelineOptions:
    smoke_file: Path
    health_timeout_s: float = 180.0
    verify_timeout_s: float | None = None  # None: the target's (its load balancer's propagation time)
    verify_requests: int = 20


class ReleaseAborted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A step failed in a way that ends the release with exit code 1 (recorded already)."""


class TrafficNotVerified(ReleaseAborted):
    """The load balancer did not show the switch by the deadline: never promoted, rolled back."""


class TrafficUnverified(ReleaseAborted):
    """A switch the load balancer never confirmed, with no healthy colour to go back to: watched, not promoted."""


class Pipeline:
    def __init__(
        self,
        target: Target,
        record: RunRecord,
        options: PipelineOptions,
        console: Console | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.record = record
        self.options = options
        self.console = console or record.console
        self.sleep = sleep
        self.http = httpx.Client(timeout=5.0)
        self.rolled_back = RolledBackVersions(target.project_dir, target.stack)
        self.promoted = PromotedReleases(target.project_dir, target.stack)

    # -- building blocks ----------------------------------------------------------------

    def wait_healthy(self, color: str) -> ColorHealth:
        """Poll until the load balancer counts every target of ``color`` up and it answers ``ready_path``.

        The load balancer checks ``health_path`` (liveness); readiness (``ready_path``,
        e.g. database and schema) is asked through the colour's own route, the preview
        route while it is idle. Once live, a colour gets ``startup_timeout_s`` to be ready.
        """
        deadline = time.monotonic() + self.options.health_timeout_s
        ready_by: float | None = None
        last_detail = ""
        with self.console.status(f"waiting for {color} to be healthy") as status:
            while True:
                health = self.target.health(color)
                detail = health.detail if not health.ok else self._not_ready(color)
                if health.ok and detail is None:
                    self.record.note("healthy", health.detail, color=color, healthy=health.healthy, total=health.total)
                    return health
                if health.ok and ready_by is None:
                    ready_by = time.monotonic() + self.target.config().startup_timeout_s
                if detail != last_detail:
                    status.update(f"waiting for {color} to be healthy: {detail}")
                    last_detail = detail
                now = time.monotonic()
                if now >= deadline or (ready_by is not None and now >= ready_by):
                    waited = "startup_timeout_s" if ready_by is not None and now >= ready_by else "health timeout"
                    self.record.note("unhealthy", f"{detail} (gave up: {waited})")
                    raise ReleaseAborted(f"{color} did not become healthy and ready: {detail}")
                self.sleep(1.0)

    def _not_ready(self, color: str) -> str | None:
        """None when ``color`` answers its readiness path with 200 through its route; else why not."""
        config = self.target.config()
        route = "preview_url" if color == config.idle_color else "live_url"
        outputs = self.target.outputs()
        url = str(outputs[route]).rstrip("/") + config.readiness_path
        try:
            answer = self.http.get(url, headers=route_headers(outputs, route))
        except httpx.HTTPError as exc:
            return f"{color}: readiness {url} unreachable ({type(exc).__name__})"
        return None if answer.status_code == 200 else f"{color}: readiness {url} answered HTTP {answer.status_code}"

    def smoke(self, color: str) -> SmokeReport:
        """Run the smoke file against ``color``: the preview route if idle, the live route if live."""
        config = self.target.config()
        outputs = self.target.outputs()
        route = "preview_url" if color == config.idle_color else "live_url"
        suite = load_suite(self.options.smoke_file)
        self.record.note(
            "smoke",
            f"{len(suite.checks)} checks against {color} via {outputs[route]}, after its targets are healthy",
        )

        def health() -> tuple[bool, str]:
            h = self.target.health(color)
            return h.ok, h.detail

        runner = SmokeRunner(
            suite,
            str(outputs[route]),
            color,
            config.version_of(color),
            health=health,
            route_headers=route_headers(outputs, route),
        )
        report = runner.run()
        print_report(report, self.console)
        failed = [r.to_dict() for r in report.results if not r.passed]
        self.record.note(
            "smoke",
            f"{'passed' if report.passed else 'FAILED'}: {report.tally()} in {report.duration_s:.1f}s",
            quiet=True,
            passed=report.passed,
            failed=failed,
        )
        return report

    def verify_timeout_s(self) -> float:
        """``--verify-timeout`` style override, else the target's own (its cloud's propagation)."""
        if self.options.verify_timeout_s is not None:
            return self.options.verify_timeout_s
        return self.target.verify_timeout_s()

    def verify_traffic(self, color: str, percent: int) -> dict[str, Any]:
        """Ask the load balancer, never the app alone, whether production moved to ``color``.

        Its route is read back (HAProxy's runtime map; the ALB listener; the URL map; the
        gateway rule, which must also have finished applying) and must give ``color``
        ``percent``. Where the load balancer names the colour that served each answer (a
        header HAProxy adds), sampled answers must come from ``color``: all of them at 100%,
        some of them below; the app's own colour, when it names one, must agree (a check
        that catches crossed ports). Cloud load balancers add no such header, and their
        front ends can lag the read-back (GCP's by seconds to tens of seconds), so there
        answers through the live URL that name their colour must come from ``color`` the
        same way; an app that names none leaves the read-back as the evidence. The wait is
        the target's (:meth:`verify_timeout_s`); not verified by then: :class:`TrafficNotVerified`.
        """
        url = str(self.target.outputs()["live_url"]).rstrip("/") + self.target.config().health_path
        timeout = self.verify_timeout_s()
        started = time.monotonic()
        deadline = started + timeout
        with self.console.status(f"verifying with the load balancer that {color} gets {percent}% of prod") as status:
            while True:
                problem, evidence = self._route_problem(color, percent, url)
                took = round(time.monotonic() - started, 3)
                if problem is None:
                    self.record.note(
                        "verify",
                        f"the load balancer sends {percent}% of prod to {color}: "
                        f"{evidence.get('route_detail')}"
                        + (f"; answers served by {evidence['answers']}" if "answers" in evidence else "")
                        + f" ({took:g}s)",
                        verified=True,
                        seconds=took,
                        **evidence,
                    )
                    return {"verified": True, **evidence}
                if time.monotonic() >= deadline:
                    self.record.note(
                        "verify",
                        f"NOT verified after {timeout:g}s: {problem}",
                        verified=False,
                        seconds=took,
                        timeout_s=timeout,
                        **evidence,
                    )
                    raise TrafficNotVerified(f"traffic to {color} not verified within {timeout:g}s: {problem}")
                status.update(f"verifying {color} at {percent}%: {problem}")
                self.sleep(0.5)

    def _route_problem(self, color: str, percent: int, url: str) -> tuple[str | None, dict[str, Any]]:
        """Why the load balancer does not (yet) show ``color`` at ``percent``; None when it does."""
        try:
            route = self.target.live_route()
        except TargetError as exc:
            return f"the load balancer's route cannot be read: {exc}", {}
        evidence: dict[str, Any] = {"route": dict(route.weights), "route_detail": route.detail}
        share = route.weights.get(color, 0)
        if share != percent:
            return f"the load balancer routes {share}% of prod to {color} ({route.detail})", evidence
        if route.pending:
            return f"the load balancer holds the route but is still applying it: {route.pending}", evidence
        answers, crossed = self._sample_answers(url, route.served_by_header)
        if route.served_by_header is None and not any(served in COLORS for served in answers):
            return None, evidence  # the app names no colour: the read-back is the evidence
        evidence["answers"] = answers
        if crossed:
            return (
                f"{crossed} answer(s) from {color}'s backend came from an app that names the other colour "
                f"({COLOR_HEADER}): are the colours' ports crossed?",
                evidence,
            )
        ours = answers.get(color, 0)
        if ours == 0 or (percent == 100 and ours != self.options.verify_requests):
            if route.served_by_header is None:
                return (
                    f"the load balancer's route shows it, but answers through the live URL came from {answers}: "
                    f"its front ends have not all picked the change up yet",
                    evidence,
                )
            return f"the load balancer says these served prod: {answers}", evidence
        return None, evidence

    def _sample_answers(self, url: str, served_by_header: str | None) -> tuple[dict[str, int], int]:
        """``verify_requests`` answers by the colour that served them, and how many contradict the app.

        The serving colour is the load balancer's header where it adds one, else the colour
        the app names (``X-App-Color`` or a ``color`` field).
        """
        answers: dict[str, int] = {}
        crossed = 0
        for _ in range(self.options.verify_requests):
            try:
                response = self.http.get(url)
            except httpx.HTTPError as exc:
                served = f"error:{type(exc).__name__}"
            else:
                says = response.headers.get(COLOR_HEADER) or _json_color(response)
                if served_by_header is None:
                    served = says if says in COLORS else f"HTTP {response.status_code}, unnamed"
                else:
                    served = response.headers.get(served_by_header) or f"HTTP {response.status_code}, unnamed"
                    crossed += served in COLORS and says in COLORS and says != served
            answers[served] = answers.get(served, 0) + 1
        return answers, crossed

    def apply(self, what: str, urgent: bool = False, **changes: Any) -> float:
        """Apply config changes through the target; returns how long the apply took."""
        started = time.monotonic()
        self.target.apply(changes, progress=lambda line: self.record.note("apply", line, quiet=True), urgent=urgent)
        took = time.monotonic() - started
        self.record.note("apply", f"{what} ({took:.2f}s)", changes=changes, seconds=round(took, 3))
        return took

    def monitor(self, color: str, started: datetime, bake_s: int | None = None) -> MonitorResult:
        thresholds = self.target.config().monitor
        if bake_s is not None:
            thresholds = replace(thresholds, bake_s=bake_s)
        self.record.note(
            "monitor",
            f"watching {color}: error rate <= {thresholds.max_error_rate:g}, p99 <= {thresholds.max_p99_ms:g} ms, "
            f"every {thresholds.interval_s}s over {thresholds.window_s}s, bake {thresholds.bake_s}s, "
            f"no data -> {thresholds.on_no_data}",
        )

        shown = [float("-inf")]

        def show(check: Check, decision: Decision) -> None:
            # A streaming source is judged many times a second: record a healthy check at
            # most once a second, and every other one (breach, no data, a decision) always.
            now = time.monotonic()
            if check.status == PASS and decision.action == WATCH and now - shown[0] < CHECK_NOTE_EVERY_S:
                return
            shown[0] = now
            rate = "-" if check.error_rate is None else f"{check.error_rate:.4f}"
            p99 = "-" if check.p99_ms is None else f"{check.p99_ms:.0f} ms"
            self.record.note(
                "check",
                f"{color}: {check.requests or 0} req, {check.errors or 0} 5xx (rate {rate}), p99 {p99} "
                f"-> {check.status}; {decision.reason}",
                **check.to_dict(),
            )

        source = self.target.metrics()
        return watch(source, color, thresholds, started, on_check=show, sleep=self.sleep)

    # -- commands -----------------------------------------------------------------------

    def switch(self, to: str, monitor_steps: bool = True) -> tuple[bool, str | None, datetime]:
        """Move traffic to ``to`` through ``switch_steps``, monitoring between steps.

        Returns (switched, why it rolled back if not, when ``to`` got all traffic). A step
        the load balancer does not show is rolled back like a breach: never promoted.
        """
        config = self.target.config()
        steps = config.switch_steps
        old = other_color(to)
        warmed = self.warm_before_traffic(to)
        live_since = utc_now()
        for index, percent in enumerate(steps):
            took = self.apply(f"switch: {to} gets {percent}% of traffic", live_color=to, live_traffic_percent=percent)
            live_since = utc_now()
            self.record.note(
                "switch",
                f"{to} is live at {percent}% (was {old}); apply took {took:.2f}s",
                to=to,
                percent=percent,
                apply_s=round(took, 3),
            )
            try:
                self.verify_traffic(to, percent)
            except TrafficNotVerified as exc:
                return self._not_verified(to, old, str(exc), live_since)
            if monitor_steps and index < len(steps) - 1:
                window = self.target.config().monitor.window_s
                result = self.monitor(to, live_since, bake_s=window)
                if result.decision.action != PROMOTE:
                    self.rollback(old, result.decision)
                    return False, result.decision.reason, live_since
        if warmed:
            self.apply(f"{old} down to idle capacity", warm_idle=False)
        return True, None, live_since

    def _not_verified(self, to: str, old: str, why: str, live_since: datetime) -> tuple[bool, str, datetime]:
        """A switch step the load balancer did not confirm in time: never left unwatched.

        Back to ``old`` when it can serve. When it cannot (unhealthy, or its health cannot
        be read), a rollback would move prod onto a broken colour, so ``to`` keeps the
        traffic the config gave it and is monitored like any release: a breach still rolls
        back (if ``old`` has recovered by then), and otherwise the release ends unpromoted
        (:class:`TrafficUnverified`, exit 1) with both colours at full capacity.
        """
        health = self._health_or_unknown(old)
        if health.ok:
            self.rollback(old, None, reason=why)
            return False, why, live_since
        self.record.note(
            "hold",
            f"NOT rolling back: {old} is not healthy ({health.detail}), so {to} keeps prod and is monitored "
            f"instead ({why})",
            reason=why,
            old_health=health.detail,
        )
        result = self.monitor(to, live_since)
        if result.decision.action == ROLLBACK:
            self.rollback(old, result.decision)  # holds (ReleaseAborted) if old is still unhealthy
            return False, result.decision.reason, live_since
        verdict = (
            f"{why}; {old} was unhealthy, so no rollback; {to} was monitored: {result.decision.reason}. Not "
            f"promoted: both colours stay at full capacity. Check the route (status), then run monitor to promote "
            f"or rollback"
        )
        self.record.note("hold", verdict, **result.decision.to_dict())
        raise TrafficUnverified(verdict)

    def _health_or_unknown(self, color: str) -> ColorHealth:
        """``color``'s health, or an unhealthy answer saying why it could not be read."""
        try:
            return self.target.health(color)
        except (MetricsSourceError, TargetError) as exc:
            return ColorHealth(color, 0, 0, f"{color}: health cannot be read ({exc})")

    def rollback(self, to: str, decision: Decision | None, reason: str = "") -> float:
        """Flip ``live_color`` back to ``to`` at once, if ``to`` is still healthy; returns seconds taken."""
        started = time.monotonic()
        why = decision.reason if decision else reason
        warmed = self.warm_before_traffic(to)
        health = self._health_or_unknown(to)
        if not health.ok:
            self.record.note(
                "hold",
                f"NOT rolling back: {to} is unhealthy ({health.detail}); traffic stays where it is, act by hand",
                reason=why,
            )
            raise ReleaseAborted(f"rollback target {to} is unhealthy: {health.detail}")
        bad = other_color(to)
        versions = self.target.config()
        bad_version = versions.version_of(bad)
        self.apply(f"rollback: {to} live at 100%", urgent=True, live_color=to, live_traffic_percent=100)
        took = time.monotonic() - started
        if bad_version != versions.version_of(to):  # the same build on both: no release to blame
            self.rolled_back.record(bad_version, bad, why)
        self.record.note(
            "rollback",
            f"rolled back to {to} in {took:.2f}s because {why}",
            to=to,
            seconds=round(took, 3),
            reason=why,
            evidence=decision.to_dict() if decision else None,
        )
        try:
            self.verify_traffic(to, 100)
        except TrafficNotVerified as exc:
            # The config says ``to``; the load balancer has not shown it yet, so ``bad`` may still
            # take traffic: it keeps full capacity, and the person is told what to check.
            self.record.note(
                "hold",
                f"rollback to {to} applied, but the load balancer has not confirmed it: both colours stay at full "
                f"capacity; check the route with status ({exc})",
            )
            raise ReleaseAborted(f"rollback to {to} applied but not verified: {exc}") from exc
        if warmed:
            self.apply(f"{bad} down to idle capacity", warm_idle=False)
        return took

    def rollback_target(self, force: bool = False) -> str | None:
        """The colour to roll back to, or None when prod is all on a promoted release already.

        The newest promoted release, other than the one serving, that a colour still runs
        and that was not rolled back since (``force``: even then). Never the other colour
        just because it is the other one: after a release stopped before its switch, that
        colour runs the new build, which nothing has vouched for. Raises ReleaseAborted
        (exit 1, traffic untouched) when there is nowhere good to go.
        """
        config = self.target.config()
        live, gradual = config.live_color, config.gradual_switch_in_progress
        history = self.promoted.history()
        if not history:
            if config.warm_idle or gradual:
                self._hold(
                    f"no record of a promoted release ({self.promoted.path}) and a release is in progress, so "
                    f"which colour is good cannot be told; move traffic explicitly with switch --to <colour>"
                )
            self.promoted.ensure(live, config.version_of(live))
            history = self.promoted.history()
        serving = (live, config.version_of(live))
        for release in reversed(history):
            if (release.color, release.version) == serving and not gradual:
                continue
            if config.version_of(release.color) != release.version:
                continue  # that colour runs something else now
            if not force and self.rolled_back.get(release.version):
                continue
            return release.color
        if not gradual and any((p.color, p.version) == serving for p in history):
            return None
        self._hold(
            f"{live} runs {config.version_of(live)}, which was never promoted, and no colour runs a promoted "
            f"release that was not rolled back (promoted: "
            f"{', '.join(f'{p.version} on {p.color}' for p in history)}); move traffic explicitly with "
            f"switch --to <colour>"
        )

    def _hold(self, why: str) -> NoReturn:
        self.record.note("hold", f"NOT rolling back: {why}")
        raise ReleaseAborted(why)

    def settle_idle(self) -> None:
        """After an interrupted release: the idle colour back to idle capacity, as a finished one leaves it."""
        config = self.target.config()
        if config.warm_idle:
            idle = config.idle_color
            self.apply(f"{idle} ({config.version_of(idle)}, never promoted) back to idle capacity", warm_idle=False)

    def warm_before_traffic(self, to: str) -> bool:
        """Bring ``to`` to full capacity before it gets traffic, when it is held below (``warm_idle`` off).

        A release keeps the idle colour warm, so its rollback skips this; a rollback or a
        switch after the release ended does it first, so that no target sends production to
        a colour below capacity (GCP and Azure refuse such a flip outright). True if it warmed.
        """
        config = self.target.config()
        if config.warm_idle or config.desired_capacity(to) >= config.capacity:
            return False
        self.apply(f"{to} to full capacity before it takes traffic", warm_idle=True)
        deadline = time.monotonic() + config.startup_timeout_s
        while not self.target.health(to).ok and time.monotonic() < deadline:
            self.sleep(0.5)
        return True

    def refuse_known_bad(self, color: str, force: bool = False) -> None:
        """Refuse (KnownBadReleaseError) to go to ``color`` if it runs a version this stack rolled back."""
        version = self.target.config().version_of(color)
        if force:
            if self.rolled_back.get(version):
                self.record.note("force", f"--force: going to {color} although it runs rolled-back {version}")
            return
        self.rolled_back.refuse(color, version)

    def guard(self, color: str, old: str, switch_at: datetime) -> tuple[Decision | None, str]:
        """After promotion, judge ``color`` by the same rules until ``old`` scales down.

        While the old colour is warm (``scale_down_delay_s`` after the switch) a rollback
        costs nothing, so a breach then rolls back too. Returns the decision that rolled
        back (None when the guard ended without one) and the guard's verdict for the summary.
        """
        delay = self.target.config().scale_down_delay_s
        left = delay - (utc_now() - switch_at).total_seconds()
        if left <= 0:
            return None, f"none (scale_down_delay_s={delay}s had passed at promotion)"
        self.record.note(
            "guard",
            f"guarding {color} {left:.0f}s more, until {old} scales down (scale_down_delay_s={delay})",
            seconds=round(left, 1),
        )
        result = self.monitor(color, switch_at, bake_s=delay)
        if result.decision.action == ROLLBACK:
            verdict = f"breach {result.decision.elapsed_s:.1f}s after the switch: {result.decision.reason}"
            self.record.note("guard", f"guard: {verdict}", **result.decision.to_dict())
            return result.decision, verdict
        verdict = f"{delay}s after the switch: {result.decision.reason}"
        self.record.note("guard", f"guard passed: {verdict}", **result.decision.to_dict())
        return None, verdict

    def check_migrations(self, versions: Mapping[str, str]) -> bool:
        """Lint every migration and rehearse, with the live release, what ``versions`` make due.

        ``versions`` are what the colours run once the release is in place (the idle one at
        the new version), so a contract step the new version unlocks is rehearsed before
        anything is applied (scripts/rehearsal.py).
        """
        from scripts.rehearsal import check_pending_migrations

        config = self.target.config()
        result = check_pending_migrations(
            self.target.project_dir,
            config,
            self.options.smoke_file,
            versions,
            self.target.shared_database(config.live_color),
            progress=lambda line: self.record.note("rehearsal", line, quiet=True),
        )
        for line in result.lines:
            self.record.note("migrations", line)
        return result.passed

    def migrate(self, why: str) -> None:
        """Apply what the colours' versions allow now, every file on the console as it runs."""
        if not self.target.config().migrations_dir:
            return  # the app has none; check_migrations said so
        summary = self.target.migrate(lambda line: self.record.note("migrate", line))
        self.record.note("migrate", f"{summary} ({why})")

    def applied_migrations(self) -> set[str] | None:
        """What the shared database has applied, where this machine can read it (for the console)."""
        from scripts.rehearsal import applied_in

        shared = self.target.shared_database(self.target.config().live_color)
        if shared is None:
            return None
        try:
            return set(applied_in(shared.url))
        except psycopg.Error:
            return None

    def _say_applied_since(self, before: set[str] | None, during: str) -> None:
        after = self.applied_migrations() if before is not None else None
        if before is None or after is None:
            return
        for name in sorted(after - before):
            self.record.note("migrate", f"applied {name} {during}", migration=name)

    def deploy(self, version: str) -> int:
        """The whole release; returns the exit code."""
        config = self.target.config()
        if config.gradual_switch_in_progress:
            why = (
                f"a gradual switch is in progress ({config.live_color} at {config.live_traffic_percent}%): "
                f"finish it (switch --to {config.live_color}) or undo it (rollback --stack {self.target.stack}) "
                f"before a new release"
            )
            self.record.note("abort", f"refused: {why}")
            self.record.finish("refused", EXIT_BAD_INPUT, reason=why)
            return EXIT_BAD_INPUT
        live, idle = config.live_color, config.idle_color
        # Bad input stops the release before it changes anything: the version, the smoke file,
        # migrations that would break the live release, and a live colour that is not serving
        # (a rollback would have nowhere to go).
        config.with_changes(**{f"{idle}_version": version})
        load_suite(self.options.smoke_file)
        self.record.note(
            "start",
            f"release {version} to {idle} (live: {live} {config.version_of(live)}, idle: {idle} "
            f"{config.version_of(idle)})",
            version=version,
            live=live,
            idle=idle,
        )
        if not self.check_migrations({live: config.version_of(live), idle: version}):
            self.record.note("abort", "pending migrations refused: nothing applied, nothing changed")
            self.record.finish("migrations refused", EXIT_FAILED, version=version, switched=False)
            return EXIT_FAILED
        live_health = self.target.health(live)
        if not live_health.ok:
            raise TargetError(
                f"the live colour {live} is not healthy ({live_health.detail}); a release needs it serving so "
                f"that a rollback has somewhere to go. Bring the stack up first "
                f"(local: bluegreen up --stack {self.target.stack})"
            )
        # What is live now is the release a rollback returns to until this one is promoted.
        self.promoted.ensure(live, config.version_of(live))
        self.migrate("before the idle colour changes")
        try:
            before = self.applied_migrations()
            try:
                self.apply(f"{idle} runs {version} at full capacity", **{f"{idle}_version": version}, warm_idle=True)
            except TargetError as exc:
                # The target put the previous config back: the idle colour runs what it ran.
                self.record.note("abort", f"{idle} could not run {version}, {live} stays live, never switched: {exc}")
                self.record.finish("did not start", EXIT_FAILED, version=version, switched=False, reason=str(exc))
                return EXIT_FAILED
            self._say_applied_since(before, f"while {idle} was given {version} (due once both colours allow it)")
            try:
                self.wait_healthy(idle)
            except ReleaseAborted as exc:
                self.record.note("abort", f"{idle} is not healthy and ready: {live} stays live, never switched")
                self.apply(f"{idle} back to idle capacity", warm_idle=False)
                self.record.finish("not healthy", EXIT_FAILED, version=version, switched=False, reason=str(exc))
                return EXIT_FAILED
            self.migrate(f"{idle} runs {version}: steps it makes due")
            report = self.smoke(idle)
            if not report.passed:
                self.record.note("abort", f"smoke failed on {idle}: {live} stays live, never switched")
                self.apply(f"{idle} back to idle capacity", warm_idle=False)
                self.record.finish("smoke failed", EXIT_FAILED, version=version, switched=False)
                return EXIT_FAILED
            try:
                switched, why, switch_at = self.switch(idle)
            except TrafficUnverified as exc:
                self.record.finish("switched, not verified", EXIT_FAILED, version=version, reason=str(exc))
                return EXIT_FAILED
            if not switched:
                self.apply(f"{idle} back to idle capacity", warm_idle=False)
                self.record.finish("rolled back", EXIT_FAILED, version=version, reason=why)
                return EXIT_FAILED
            result = self.monitor(idle, switch_at)
            if result.decision.action == ROLLBACK:
                self.rollback(live, result.decision)
                self.apply(f"{idle} back to idle capacity", warm_idle=False)
                self.record.finish("rolled back", EXIT_FAILED, version=version, reason=result.decision.reason)
                return EXIT_FAILED
            if result.decision.action == INCONCLUSIVE:
                self.record.note("hold", result.decision.reason, **result.decision.to_dict())
                self.record.finish("inconclusive", EXIT_FAILED, version=version, reason=result.decision.reason)
                return EXIT_FAILED
            self.record.note("promote", f"{version} on {idle}: {result.decision.reason}", **result.decision.to_dict())
            breach, verdict = self.guard(idle, live, switch_at)
            if breach is not None:
                self.rollback(live, breach)
                self.apply(f"{idle} back to idle capacity", warm_idle=False)
                self.record.finish(
                    "rolled back after promotion", EXIT_FAILED, version=version, reason=breach.reason, guard=verdict
                )
                return EXIT_FAILED
            self.apply(f"{live} down to idle_capacity", warm_idle=False)
            self.rolled_back.forget(version)
            self.promoted.record(idle, version, "deploy")
            self.record.finish("released", EXIT_OK, version=version, live=idle, guard=verdict)
            return EXIT_OK
        except ReleaseAborted as exc:
            self.record.finish("aborted", EXIT_FAILED, version=version, reason=str(exc))
            return EXIT_FAILED


def _json_color(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("color") if isinstance(body, dict) else None


def print_summary(record: RunRecord, console: Console, extra: dict[str, Any] | None = None) -> None:
    """The end-of-run table a person can act on."""
    table = Table(title=f"{record.command} on {record.stack}: {record.outcome}", title_justify="left")
    table.add_column("what")
    table.add_column("value")
    switch = next((e for e in record.events if e.kind == "switch"), None)
    rollback = next((e for e in record.events if e.kind == "rollback"), None)
    rows: dict[str, Any] = {**record.summary}
    if switch and switch.evidence.get("apply_s") is not None:
        rows["switch apply"] = f"{switch.evidence['apply_s']}s"
    if rollback:
        rows["rollback"] = f"{rollback.evidence.get('seconds')}s ({rollback.evidence.get('reason')})"
    rows.update(extra or {})
    rows["exit code"] = record.exit_code
    for key, value in rows.items():
        table.add_row(str(key), str(value))
    console.print(table)
