"""A named counter, kept in its own light module: the retry counter actor of an archive run imports only
this (a few MB), not :mod:`pipelines.archive` with torch and the model (about 300 MB more per process)."""

from __future__ import annotations

from collections import Counter


class Counts:
    """Counts by name; the state of :class:`pipelines.archive.retry_tally.RetryTally`'s actor."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def totals(self) -> dict[str, int]:
        return dict(self.counts)
