"""Counts of storage retries across the cluster, for the run's summary.

Why an actor: retries happen inside Ray tasks on any node (fetch, upload, listing), but the summary is
written by the driver. Each worker reports a retried call to one small named actor of the run (no CPU
reserved), only when a retry happens, so the cost is nil on a healthy store; the driver reads the totals at
the end. Outside Ray (dry runs, unit tests) a tally counts in process.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pipelines.counts import Counts


class RetryTally:
    """A picklable handle on the run's counter. ``record(op)`` from any process; ``totals()`` in the driver."""

    def __init__(self, actor: Any = None) -> None:
        self._actor = actor
        self._local = Counts()
        self._lock = threading.Lock()

    @classmethod
    def start(cls, run_id: str) -> RetryTally:
        """A counter actor for this run (owned by the driver: it goes when the driver goes)."""
        import ray

        actor = ray.remote(num_cpus=0, max_restarts=0)(Counts).options(name=f"colorize-retries-{run_id}").remote()
        return cls(actor)

    def __getstate__(self) -> dict[str, Any]:
        return {"_actor": self._actor}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_actor"])  # type: ignore[misc]

    def record(self, operation: str) -> None:
        """One retried storage call. Waits for the actor (a few ms, only when a retry happens) so that no
        count is lost when the task ends right after."""
        if self._actor is None:
            with self._lock:
                self._local.add(operation)
            return
        import ray

        try:
            ray.get(self._actor.add.remote(operation), timeout=10)
        except Exception:  # counting must never fail an object
            with self._lock:
                self._local.add(operation)

    def totals(self) -> dict[str, int]:
        """Retries by operation (list, head, get, put, download, upload)."""
        counts = Counter(self._local.totals())
        if self._actor is not None:
            import ray

            counts.update(ray.get(self._actor.totals.remote(), timeout=30))
        return dict(sorted(counts.items()))

    def stop(self) -> None:
        if self._actor is not None:
            import ray

            ray.kill(self._actor)
