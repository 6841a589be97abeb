"""Colorize one image with an exported graph, using only onnxruntime, numpy and pillow (no PyTorch, no project
code): ``python onnx_colorize.py model.onnx old.jpg colour.png``. Export with ``colorize export --onnx``."""

import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
model, source, target = sys.argv[1:4]
ort.set_default_logger_severity(3)  # the graph's optional style input (an initializer) is intended: no warning
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
gain, neutral = float(meta.get("chroma_gain", 1.0)), float(meta.get("neutral", 0.0))  # the card's settings
srgb = np.asarray(Image.open(source).convert("RGB"), np.float64) / 255.0
y = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4) @ RGB_TO_XYZ[1]  # luminance
lightness = np.where(y > (6 / 29) ** 3, 116 * np.cbrt(y) - 16, y * 24389 / 27)  # CIE L*, kept as it is
h, w = lightness.shape
x = np.pad(lightness, ((0, -h % 8), (0, -w % 8)), mode="edge")[None, None] / 100.0  # sides: multiples of 8
ab_half = (session.run(["ab"], {"lightness": x.astype(np.float32)})[0][0] * 2.0 - 1.0) * 128.0
if neutral > 0:  # remove the tint shared by the least colourful pixels (model/neutral.py)
    step = max(1, int((ab_half[0].size / 16384) ** 0.5))
    sample = ab_half[:, ::step, ::step].reshape(2, -1)
    k = max(1, round(neutral * sample.shape[1]))
    ab_half = ab_half - sample[:, np.argsort(np.hypot(*sample))[:k]].mean(axis=1)[:, None, None]
ab_half = ab_half * gain
ab = [np.asarray(Image.fromarray(c).resize((c.shape[1] * 2, c.shape[0] * 2), Image.BILINEAR))[:h, :w] for c in ab_half]
fy = (lightness + 16) / 116
f = np.stack([fy + ab[0] / 500, fy, fy - ab[1] / 200], axis=-1)
xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]  # D65 white
linear = np.clip(xyz @ np.linalg.inv(RGB_TO_XYZ).T, 0.0, 1.0)
out = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
Image.fromarray((out * 255 + 0.5).astype(np.uint8)).save(target)
