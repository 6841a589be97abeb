"""The GPU host's measurement script, rehearsed: every part runs on tiny inputs here, so a GPU session spends its
minutes measuring, never debugging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_run
from model import PredictorConfig


@pytest.mark.slow
def test_smoke_runs_every_part(tmp_path: Path) -> None:
    assert gpu_run.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_run-smoke.json").read_text())
    assert set(record["parts"]) == set(gpu_run.PARTS)
    for part, result in record["parts"].items():
        assert result["status"] == "ok", (part, result.get("stderr"))
        assert result["rows"], part
    network = record["parts"]["network"]["rows"]
    assert {row["working size"] for row in network} == {PredictorConfig.working_size, "full"}
    assert all(r["images/s"] > 0 for r in network)
    assert record["parts"]["bulk"]["rows"][0]["ok"] == 8
    assert all(row["errors"] == 0 for row in record["parts"]["api"]["rows"])
    assert "## api: ok" in (tmp_path / "gpu_run-smoke.md").read_text()


def test_unknown_parts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        gpu_run.main(["--smoke", "--parts", "network,typo", "--out", str(tmp_path)])
