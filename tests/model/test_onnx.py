"""ONNX export and the onnxruntime backend: the graph, its metadata, parity with PyTorch and the minimal runtime.

Tolerances, and why:

* a*b* straight from the network: ONNX Runtime sums fp32 products in another order (its own GEMM and
  convolution kernels) and folds batch norm into the convolution weights, so each of the ~20 layers differs
  by a few ulps and the differences compound. Measured: at most 8e-5 a*b* units on these inputs. Bound:
  ``AB_TOL`` = 0.01 a*b* units, 100x below the smallest colour difference anyone sees (ΔE*ab about 1) and
  still two orders of magnitude above the measurement, so a real mismatch (a wrong resize, a missing layer,
  a swapped input) cannot hide under it: those move a*b* by whole units.
* 8-bit output: a*b* that differ by 1e-4 can still fall on either side of a rounding boundary, so one level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import Colorizer, PredictorConfig
from model.checkpoint import load_checkpoint
from model.config import get_preset
from model.imageio import lightness_of
from model.network import FusionNetwork
from model.predictor import DEFAULT_WEIGHTS

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from model.export import export_onnx  # noqa: E402  (needs the optional extra checked above)
from model.onnx_backend import OnnxFusionNetwork  # noqa: E402

AB_TOL = 0.01  # a*b* units; see the module docstring
SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "onnx_colorize.py"
ONNX_RT = PredictorConfig(backend="onnxruntime")


def photo(width: int = 301, height: int = 213) -> Image.Image:
    """A real greyscale photo (scikit-image's astronaut), cropped to sides that are not multiples of 8."""
    from skimage.data import astronaut

    return Image.fromarray(astronaut()).convert("L").crop((40, 20, 40 + width, 20 + height))


def ab_units(x: torch.Tensor) -> torch.Tensor:
    return x * 256.0  # the network's [0, 1] output spans a*b* in [-128, 128]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Graphs exported on the fly go to a fresh cache, never the user's."""
    path = tmp_path_factory.mktemp("onnx-cache")
    old = os.environ.get("COLORIZE_ONNX_CACHE")
    os.environ["COLORIZE_ONNX_CACHE"] = str(path)
    yield path
    if old is None:
        del os.environ["COLORIZE_ONNX_CACHE"]
    else:
        os.environ["COLORIZE_ONNX_CACHE"] = old


@pytest.fixture(scope="module")
def shipped_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped checkpoint exported through the CLI, as a user would."""
    from colorize.cli import main

    path = tmp_path_factory.mktemp("export") / "default.onnx"
    assert main(["export", "--onnx", str(path)]) == 0
    return path


def test_backend_and_opset_are_checked() -> None:
    with pytest.raises(ValueError, match="backend"):
        PredictorConfig(backend="tensorflow")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(FusionNetwork(get_preset("test")), opset=17)  # Resize has no antialias before 18
    from colorize.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "--onnx", "x.onnx", "--opset", "12"])
    assert build_parser().parse_args(["image", "a.jpg", "--out", "o", "--backend", "onnxruntime"]).backend


def test_bulk_job_and_api_pass_the_backend_through(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from colorize.cli import build_parser
    from colorize.commands.archive import build_config
    from services.model_deployment import ModelArgs

    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    args = build_parser().parse_args(["archive", src, dst, "--backend", "onnxruntime"])
    config = build_config(args, args.src, args.dst)
    assert config.colorizer_factory().predictor.backend == "onnxruntime"  # what each inference actor builds
    assert ModelArgs.model_validate({"backend": "onnxruntime"}).spec().predictor.backend == "onnxruntime"
    with pytest.raises(ValidationError):
        ModelArgs.model_validate({"backend": "tf"})


@pytest.mark.slow
def test_exported_graph_is_valid_dynamic_and_carries_the_card(shipped_graph: Path) -> None:
    model = onnx.load(str(shipped_graph))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    card = json.loads(meta["card"])
    shipped = load_checkpoint(DEFAULT_WEIGHTS)
    global_dim = shipped.build().global_dim
    assert meta["name"] == card["name"] == shipped.card["name"] and meta["family"] == shipped.family
    assert meta["preset"] == "tiny"
    assert float(meta["chroma_gain"]) == card["chroma_gain"] == shipped.card["chroma_gain"]
    assert json.loads(meta["mean_ab"]) == card["mean_ab"]  # the training set's mean a*b*
    assert json.loads(meta["config"])["class_names"][:2] == ["buildings", "forest"]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims["lightness"] == ["batch", 1, "height", "width"]
    assert dims["global_vector"][1] == global_dim
    assert "Resize" in {n.op_type for n in model.graph.node}  # the global path's square copy is in the graph
    session = ort.InferenceSession(str(shipped_graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["lightness"]  # the style input is optional
    for shape in [(1, 1, 8, 8), (3, 1, 72, 200)]:  # batch, height and width all free
        ab, logits, vector = session.run(None, {"lightness": np.full(shape, 0.5, np.float32)})
        assert ab.shape == (shape[0], 2, shape[2] // 2, shape[3] // 2)
        assert logits.shape == (shape[0], 8) and vector.shape == (shape[0], global_dim)


def _parity(torch_colorizer: Colorizer, onnx_colorizer: Colorizer, image: Image.Image) -> None:
    """The same photo through both backends: a*b* from the network, global features, the 8-bit output,
    the scene labels, and style transfer with another image's global vector."""
    assert isinstance(onnx_colorizer.network, OnnxFusionNetwork)
    x = torch.from_numpy(lightness_of(image)[0] / 100.0)[None, None, :208, :296]  # L*/100, sides multiples of 8
    with torch.inference_mode():
        expected, expected_logits = torch_colorizer.network(x)
        got, logits = onnx_colorizer.network(x)
        assert got.shape == expected.shape and logits is not None and expected_logits is not None
        assert float(ab_units(got - expected).abs().max()) < AB_TOL
        assert float((logits - expected_logits).abs().max()) < 1e-3
    reference = photo(120, 96).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    vectors = [c.global_features([image, reference, photo(64, 64)]) for c in (torch_colorizer, onnx_colorizer)]
    assert np.abs(vectors[0] - vectors[1]).max() < 1e-3
    a, b = torch_colorizer.colorize(image), onnx_colorizer.colorize(image)
    assert a.rgb.shape == b.rgb.shape == (image.height, image.width, 3)
    assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max() <= 1
    assert [name for name, _ in a.labels] == [name for name, _ in b.labels]
    a, b = torch_colorizer.colorize(image, style=reference), onnx_colorizer.colorize(image, style=reference)
    assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max() <= 1
    assert b.labels == []  # a given global vector: no classification, as with torch


@pytest.mark.slow
def test_random_weights_match_torch_without_the_shipped_file(onnx_cache: Path) -> None:
    """A preset with random weights, exported on the fly by the predictor: no dependence on the shipped file."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        network = FusionNetwork(get_preset("test")).eval()
    torch_colorizer = Colorizer(network, trained=False)
    onnx_colorizer = Colorizer(network, trained=False, config=ONNX_RT)
    assert len(list(onnx_cache.glob("*.onnx"))) == 1  # exported once, into the cache
    _parity(torch_colorizer, onnx_colorizer, photo())
    assert onnx_colorizer.info()["parameters"] == torch_colorizer.info()["parameters"]


@pytest.mark.slow
def test_shipped_checkpoint_matches_torch(shipped_graph: Path) -> None:
    onnx_colorizer = Colorizer.from_pretrained(shipped_graph)  # an .onnx file picks the onnxruntime backend
    assert onnx_colorizer.config.backend == "onnxruntime"
    shipped = load_checkpoint(DEFAULT_WEIGHTS)
    assert onnx_colorizer.chroma_gain == shipped.card["chroma_gain"] and onnx_colorizer.trained
    assert onnx_colorizer.model_name == shipped.card["name"] and onnx_colorizer.family == shipped.family
    _parity(Colorizer.from_pretrained(), onnx_colorizer, photo())


@pytest.mark.slow
def test_cache_is_reused(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Colorizer.from_pretrained(preset="test", config=ONNX_RT)
    import model.export

    def no_second_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again instead of using the cache")

    monkeypatch.setattr(model.export, "export_onnx", no_second_export)
    again = Colorizer.from_pretrained(preset="test", config=ONNX_RT)
    plane = np.asarray(photo(64, 48), np.float32) / 2.55
    assert np.array_equal(first.predict_chroma([plane])[0].ab, again.predict_chroma([plane])[0].ab)


@pytest.mark.slow
def test_cli_image_runs_on_onnxruntime(shipped_graph: Path, tmp_path: Path) -> None:
    from colorize.cli import main

    photo().save(tmp_path / "old.png")
    for backend in ("torch", "onnxruntime"):
        argv = ["image", str(tmp_path / "old.png"), "--out", str(tmp_path / backend), "--backend", backend]
        assert main(argv) == 0
    a, b = (np.asarray(Image.open(tmp_path / name / "old.png")).astype(int) for name in ("torch", "onnxruntime"))
    assert np.abs(a - b).max() <= 1


# Runs a script with torch (and this project, and the exporter) made unimportable: sys.modules[name] = None
# makes `import name` raise ImportError, so the script can only have used onnxruntime, numpy and pillow.
NO_TORCH = (
    "import json, runpy, sys\n"
    "for name in ('torch', 'model', 'onnx', 'onnxscript', 'colorize'): sys.modules[name] = None\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "print(json.dumps(sorted({m.split('.')[0] for m, v in sys.modules.items() if v is not None})))\n"
)


@pytest.mark.slow
def test_minimal_runtime_colorizes_without_torch(shipped_graph: Path, tmp_path: Path) -> None:
    from model.color import rgb_to_lab

    grey = photo()
    grey.save(tmp_path / "old.png")
    argv = [sys.executable, "-I", "-c", NO_TORCH, str(SCRIPT), str(shipped_graph), "old.png", "colour.png"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"onnxruntime", "numpy", "PIL"} <= loaded and not loaded & {"torch", "model", "onnx"}
    out = np.asarray(Image.open(tmp_path / "colour.png").convert("RGB"))
    assert out.shape == (grey.height, grey.width, 3)
    lab = rgb_to_lab(torch.from_numpy(out.copy()).permute(2, 0, 1).float() / 255.0)
    lightness = lightness_of(grey)[0]
    assert float(np.abs(lab[0].numpy() - lightness).mean()) < 0.5  # the input's L* kept (8-bit rounding)
    assert float(lab[1:].norm(dim=0).mean()) > 3.0  # colour: the grey input has chroma 0
    script = SCRIPT.read_text()
    assert script[script.index("import sys") :] in (SCRIPT.parents[1] / "README.md").read_text()  # documented as is
    reference = Colorizer.from_pretrained(config=PredictorConfig(upsample="bilinear")).colorize(grey).rgb.astype(int)
    # The script upsamples chroma bilinearly (the predictor's default is luminance-guided, hence the reference's
    # setting) and clips out-of-gamut colours where the predictor lowers their chroma instead: rare pixels.
    assert float(np.abs(out.astype(int) - reference).mean()) < 0.5
