"""Admission by latency budget: accept a colorization only if it should be answered within the budget.

Why here and not in Serve's queues: a bounded queue refuses by *count*, so the wait of an accepted request
grows with the service time (600 clients on 2 cores once waited 28 s before being served), and Serve's own
refusals are plain text. The ingress instead estimates how long the work already admitted ahead of a new
request will take, ``queue depth x measured service time per image``, adds the request's own service time, and
refuses at once (JSON 503 with ``Retry-After``) when that exceeds ``latency_budget_s``. An accepted request is
therefore expected to be answered within the budget, with one service time of slack for noise.

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


class TailRatio:
    """The 95th percentile of (actual time in the replica / predicted completion), by stochastic approximation,
    never below 1. Predictions from the mean drain rate are right on average; scaling them by this keeps the
    *tail* of accepted latencies near the budget when service times are noisy (shared cores, bunched batches)."""

    def __init__(self, quantile: float = 0.95, step: float = 0.05, low: float = 1.0, high: float = 3.0) -> None:
        self.quantile, self.step, self.low, self.high = quantile, step, low, high
        self.value = low

    def add(self, ratio: float) -> None:
        above = 1.0 if ratio > self.value else 0.0
        self.value = min(self.high, max(self.low, self.value + self.step * (above - (1.0 - self.quantile))))


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
        self.tail = TailRatio()
        self.clock = clock
        self.depth = 0
        self.draining = False
        self._mark = clock()  # start of the busy interval not yet accounted for
        self._metrics = _AdmissionMetrics(registry or CollectorRegistry(), self)

    def expected_wait_s(self) -> float:
        """How long the colorizations admitted so far should take to complete."""
        return self.depth * self.timer.seconds

    def admit(self) -> tuple[float, float]:
        """Take one colorization on, or raise :class:`OverloadedError` (a JSON 503 with ``Retry-After``).
        Returns (admission time, predicted completion) for :meth:`release`.

        The test is on the new request's expected completion, ``(depth + 1) x service time`` (what it adds
        itself counts too), scaled by the observed tail of actual over predicted times (:class:`TailRatio`)."""
        wait = self.expected_wait_s()
        predicted = wait + self.timer.seconds
        done = predicted * self.tail.value
        if self.draining:
            self._metrics.refused.labels("stopping").inc()
            raise ShuttingDownError(
                detail="the server is shutting down: retry shortly", retry_after_s=self.min_retry_after_s
            )
        if self.depth >= self.max_depth or (self.depth and done > self.budget_s):
            reason = "depth" if self.depth >= self.max_depth else "budget"
            self._metrics.refused.labels(reason).inc()
            retry = max(self.min_retry_after_s, math.ceil(done - self.budget_s))
            raise OverloadedError(
                detail=f"the colorizer is busy: {self.depth} requests ahead, about {wait:.1f} s of work, would "
                f"finish in {done:.1f} s, over the {self.budget_s:g} s latency budget; retry in {retry} s",
                retry_after_s=retry,
            )
        now = self.clock()
        if self.depth == 0:
            self._mark = now
        self.depth += 1
        self._metrics.admitted.inc()
        return now, predicted

    def release(self, admitted: tuple[float, float] | None = None) -> None:
        """One colorization answered (or failed, or abandoned); ``admitted`` is what :meth:`admit` returned."""
        now = self.clock()
        self.timer.add(now - self._mark, 1)
        self._mark = now
        self.depth -= 1
        if admitted is not None and admitted[1] > 0:
            self.tail.add((now - admitted[0]) / admitted[1])

    async def ticket(self) -> AsyncIterator[None]:
        """FastAPI dependency holding one admission for the whole request."""
        admitted = self.admit()
        try:
            yield
        finally:
            self.release(admitted)

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
        tail = Gauge(
            "colorize_admission_tail_ratio", "95th percentile of actual / predicted completion", registry=registry
        )
        tail.set_function(lambda: admission.tail.value)
        draining = Gauge(
            "colorize_admission_draining",
            "1 once a graceful stop has begun: new colorizations get 503",
            registry=registry,
        )
        draining.set_function(lambda: float(admission.draining))


def _replica_id(admission: Admission) -> str:
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # outside a Serve replica (unit tests)
        return hex(id(admission))
