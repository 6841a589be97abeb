"""Graceful stop of the API: tell every ingress replica to refuse new colorizations, wait for those in flight.

Why not just ``serve.shutdown()``: it tears the proxy down with the replicas, so a request that arrives while
stopping gets a plain-text error or a reset connection, and one in flight may be cut off. Draining first
makes every new request a JSON 503 (``ShuttingDownError``, with ``Retry-After``) while the accepted ones
finish, up to a grace period; only then is Serve shut down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

INGRESS = "ColorizeIngress"


@dataclass
class DrainResult:
    """What was still in flight, per replica, when draining ended (all zeros unless the grace ran out)."""

    in_flight: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not any(self.in_flight.values())


def _running_ingress_replicas(app: str) -> int:
    from ray import serve

    status = serve.status().applications.get(app)
    if status is None or INGRESS not in status.deployments:
        return 0
    states: dict[Any, int] = dict(status.deployments[INGRESS].replica_states)  # keyed by ReplicaState (a str enum)
    return int(states.get("RUNNING", 0))


def _drain_round(app: str, calls: int, timeout_s: float) -> dict[str, int]:
    """Call ``drain`` ``calls`` times; each call reaches one replica (Serve's router picks), so a few calls per
    replica reach them all. Returns the in-flight count each reached replica reported."""
    from ray import serve

    handle = serve.get_deployment_handle(INGRESS, app_name=app)
    reports: dict[str, int] = {}
    for _ in range(calls):
        answer = handle.drain.remote().result(timeout_s=timeout_s)
        reports[str(answer["replica"])] = int(answer["in_flight"])
    return reports


def drain_applications(apps: list[str], grace_s: float, poll_s: float = 0.2) -> DrainResult:
    """Put every ingress replica of ``apps`` in draining mode and wait until none has a colorization in
    flight, or ``grace_s`` has passed. Serve keeps running: the caller shuts it down (or deletes the apps)."""
    start = time.monotonic()
    deadline = start + grace_s
    latest: dict[str, dict[str, int]] = {app: {} for app in apps}
    while True:
        unreached = 0
        for app in apps:
            replicas = max(1, _running_ingress_replicas(app))
            reports = _drain_round(app, 4 * replicas, timeout_s=max(1.0, deadline - time.monotonic()))
            latest[app].update(reports)
            # Serve routes to the least busy replica, so a busy one may be reached only once it quietens.
            unreached += max(0, replicas - len(latest[app]))
        flat = {f"{app}/{replica}": n for app, seen in latest.items() for replica, n in seen.items()}
        if (not unreached and not any(flat.values())) or time.monotonic() >= deadline:
            return DrainResult(in_flight=flat, seconds=time.monotonic() - start)
        time.sleep(poll_s)
