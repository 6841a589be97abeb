"""Admission by latency budget: accept a colorization only if it should start within the budget.

Why here and not in Serve's queues: a bounded queue refuses by *count*, so the wait of an accepted request
grows with the service time (600 clients on 2 cores once waited 28 s before being served), and Serve's own
refusals are plain text. The ingress instead estimates how long the work already admitted ahead of a new
request will take, ``queue depth x measured service time per image``, and refuses at once (JSON 503 with
``Retry-After``) when that exceeds ``latency_budget_s``. An accepted request therefore waits at most about the
budget, then takes one service time of its own.

The service time is measured, not configured: it is the ingress's busy time (time with at least one admitted
colorization) divided by the colorizations completed in it, smoothed over the last ~10 s. That is the rate at
which this replica's queue actually drains, whatever shares the model with it: other ingress replicas, more
model replicas, batching, a GPU or two busy cores. ``max_queue_depth`` is a hard bound under Serve's
``max_ongoing_requests``/``max_queued_requests`` (deploy/serve.yaml) so that Serve's plain-text refusals
are never reached. ``drain()`` turns every new request away while in-flight ones finish (graceful stop).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.errors import OverloadedError
from services.settings import Settings


class ShuttingDownError(OverloadedError):
    """The server is stopping: in-flight requests finish, new ones are turned away (503, retry elsewhere)."""


class ServiceTimer:
    """Seconds per completed colorization while busy, exponentially weighted over ``window_s`` of busy time.

    Busy time and completions are decayed together, so bunched completions (a batch finishing at once) and
    the long gap before them average out instead of swinging the estimate."""

    def __init__(self, initial_s: float, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._busy = initial_s  # a prior worth one completion; it fades as real measurements come in
        self._done = 1.0

    @property
    def seconds(self) -> float:
        return self._busy / self._done

    def add(self, busy_s: float, completed: int) -> None:
        decay = math.exp(-busy_s / self.window_s)
        self._busy = self._busy * decay + busy_s
        self._done = self._done * decay + completed


class Admission:
    """One per ingress replica. Call :meth:`admit` before taking a colorization on, :meth:`release` when its
    answer is ready (or it failed, or the client left); :meth:`ticket` does both as a FastAPI dependency."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_s = settings.latency_budget_s
        self.max_depth = settings.max_queue_depth
        self.min_retry_after_s = max(1, settings.retry_after_s)
        self.timer = ServiceTimer(settings.initial_service_time_s)
        self.clock = clock
        self.depth = 0
        self.draining = False
        self._mark = clock()  # start of the busy interval not yet accounted for
        self._metrics = _AdmissionMetrics(registry or CollectorRegistry(), self)

    def expected_wait_s(self) -> float:
        """How long the colorizations admitted so far should take to complete."""
        return self.depth * self.timer.seconds

    def admit(self) -> None:
        """Take one colorization on, or raise :class:`OverloadedError` (a JSON 503 with ``Retry-After``)."""
        wait = self.expected_wait_s()
        if self.draining:
            self._metrics.refused.labels("stopping").inc()
            raise ShuttingDownError(
                detail="the server is shutting down: retry shortly", retry_after_s=self.min_retry_after_s
            )
        if self.depth >= self.max_depth or (self.depth and wait > self.budget_s):
            reason = "depth" if self.depth >= self.max_depth else "budget"
            self._metrics.refused.labels(reason).inc()
            retry = max(self.min_retry_after_s, math.ceil(wait - self.budget_s))
            raise OverloadedError(
                detail=f"the colorizer is busy: {self.depth} requests ahead, about {wait:.1f} s of work, over the "
                f"{self.budget_s:g} s latency budget; retry in {retry} s",
                retry_after_s=retry,
            )
        if self.depth == 0:
            self._mark = self.clock()
        self.depth += 1
        self._metrics.admitted.inc()

    def release(self) -> None:
        now = self.clock()
        self.timer.add(now - self._mark, 1)
        self._mark = now
        self.depth -= 1

    async def ticket(self) -> AsyncIterator[None]:
        """FastAPI dependency holding one admission for the whole request."""
        self.admit()
        try:
            yield
        finally:
            self.release()

    def drain(self) -> dict[str, Any]:
        """Refuse new colorizations from now on; report what is still in flight."""
        self.draining = True
        return {"replica": _replica_id(self), "in_flight": self.depth}


class _AdmissionMetrics:
    """Queue depth, admitted and refused counts, the service-time estimate, on the replica's registry."""

    def __init__(self, registry: CollectorRegistry, admission: Admission) -> None:
        self.admitted = Counter(
            "colorize_admission_admitted", "Colorizations admitted by the latency budget", registry=registry
        )
        self.refused = Counter(
            "colorize_admission_refused",
            "Colorizations refused with 503: budget (expected wait over it), depth (hard bound), stopping",
            ["reason"],
            registry=registry,
        )
        for reason in ("budget", "depth", "stopping"):
            self.refused.labels(reason)  # exported at 0 from the start
        depth = Gauge("colorize_admission_queue_depth", "Colorizations admitted and not answered", registry=registry)
        depth.set_function(lambda: admission.depth)
        service = Gauge(
            "colorize_admission_service_seconds", "Measured seconds per colorization (queue drain)", registry=registry
        )
        service.set_function(lambda: admission.timer.seconds)
        wait = Gauge(
            "colorize_admission_expected_wait_seconds", "Queue depth x service time per image", registry=registry
        )
        wait.set_function(admission.expected_wait_s)


def _replica_id(admission: Admission) -> str:
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # outside a Serve replica (unit tests)
        return hex(id(admission))
