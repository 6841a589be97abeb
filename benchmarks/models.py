"""The models a quality benchmark compares, named on its command line.

``NAME=WEIGHTS`` loads a checkpoint as its card says; ``NAME=WEIGHTS@gain=1.4,neutral=0.1,size=512``
overrides the predictor settings that change colour (chroma gain, neutral-floor share, working size), so one
checkpoint can appear in several rows of the same table.
"""

from __future__ import annotations

from typing import Any

SETTINGS = {"gain": "chroma_gain", "neutral": "neutral", "size": "working_size"}


def load_models(specs: list[str]) -> dict[str, Any]:
    """``{name: Colorizer}`` on the CPU for each ``NAME=WEIGHTS[@key=value,...]``."""
    from model import Colorizer, PredictorConfig

    out = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, options = rest.partition("@")
        if not name or not path:
            raise SystemExit(f"expected NAME=WEIGHTS[@gain=G,neutral=S], got {spec!r}")
        settings: dict[str, float | int] = {}
        for item in filter(None, options.split(",")):
            key, _, value = item.partition("=")
            if key not in SETTINGS:
                raise SystemExit(f"{spec!r}: unknown setting {key!r}; have {sorted(SETTINGS)}")
            settings[SETTINGS[key]] = int(value) if key == "size" else float(value)
        out[name] = Colorizer.from_pretrained(path, config=PredictorConfig(device="cpu", **settings))  # type: ignore[arg-type]
    return out
