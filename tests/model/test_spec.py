"""ModelSpec: the one description of which model runs and how, shared by the CLI, the bulk job and the API."""

from __future__ import annotations

import pickle

import pytest

from model import ImageLimits, ModelSpec, PredictorConfig


def test_a_spec_is_a_picklable_factory_of_the_predictor_it_describes() -> None:
    spec = ModelSpec(preset="test", predictor=PredictorConfig(device="cpu", working_size=64, upsample="bilinear"))
    assert pickle.loads(pickle.dumps(spec)) == spec  # what a Ray actor receives
    colorizer = spec()  # __call__ is build(): the actor calls it once to load the model
    assert not colorizer.trained
    assert colorizer.config == spec.predictor
    assert str(colorizer.device) == "cpu"


def test_flat_keys_round_trip_and_unset_keys_keep_predictor_defaults() -> None:
    assert ModelSpec.from_dict({}) == ModelSpec()
    spec = ModelSpec.from_dict({"weights": "w.safetensors", "working_size": None, "limits": {"max_pixels": 10}})
    assert spec.weights == "w.safetensors" and spec.predictor.working_size is None
    assert spec.predictor.limits == ImageLimits(max_pixels=10)
    assert spec.predictor.upsample == PredictorConfig().upsample
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.with_predictor(max_batch_size=4).predictor.max_batch_size == 4
    with pytest.raises(ValueError, match="unknown model settings"):
        ModelSpec.from_dict({"working_sise": 512})
    with pytest.raises(ValueError, match="precision"):
        ModelSpec.from_dict({"precision": "fp8"})
