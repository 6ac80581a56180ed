"""CIFAR ResNets: ResNet-20 and ResNet-18, full precision and binary.

ResNet-20 (He et al. 2016, Sec. 4.2)
------------------------------------
A 3×3 stem convolution with 16 channels, three stages of three basic blocks with 16, 32 and 64
channels (the second and third stages halve the resolution in their first block), global average
pooling and a fully connected classifier: 1 + 3·3·2 + 1 = 20 layers with weights.

The full-precision block (``variant="fp"``) is He et al.'s::

    x ─ conv3×3 ─ BN ─ ReLU ─ conv3×3 ─ BN ─(+)─ ReLU ─▶
    └──────────────── shortcut ────────────┘

The binary block (``variant="w1a1"`` or ``"w1a32"``) is the Bi-Real-style block of IR-Net and
ReCU's binary ResNet-20: *every* binary convolution has its own shortcut, so the real-valued
activations bypass each sign() and its information loss::

    x ─ binconv3×3 ─ BN ─(+)─ hardtanh ─▶ y ─ binconv3×3 ─ BN ─(+)─ hardtanh ─▶
    └──── shortcut ──────┘                └──────── identity ────┘

i.e. ``out = hardtanh(BN(binconv(x)) + shortcut(x))`` (a :class:`BinaryConvUnit`); the binary
convolution binarizes its input with ``input_quantizer`` and its weights with
``weight_quantizer``. Shortcuts that change size are parameter-free: AvgPool2d(2) followed by
zero channel padding in the binary ResNet-20 (the ReCU digest), every-other-pixel subsampling
and zero padding (He et al.'s option A) in the full-precision one. The first convolution and the
classifier are real-valued in every variant; the binary variants put a BatchNorm1d between the
pooled features and the classifier and use hardtanh after the stem (IR-Net, ReCU). All
convolution and linear weights start from Kaiming-normal N(0, 2/fan_in).

Parameter counts (biases only in the classifier, batch norms with γ and β): ResNet-20 fp 269,722
("0.27M", He et al. Table 6); the binary variants add the 128 parameters of BatchNorm1d(64), and
267,264 of their parameters are the latent weights of the 18 binary convolutions.

ResNet-18 on CIFAR
------------------
The ImageNet ResNet-18 (He et al. 2016, Table 1: stages of [2, 2, 2, 2] basic blocks with 64, 128,
256, 512 channels) with the CIFAR stem used by the CIFAR BNN papers: a 3×3 stride-1 convolution and
no max-pool, so a 32×32 image reaches the last stage at 4×4. Shortcuts that change size are a 1×1
convolution + BN (option B; fp) or AvgPool2d(2) + real 1×1 convolution + BN (Bi-Real Net,
ReActNet, BNext; binary variants). The fp model has 11,173,962 parameters ("11.17M") for 10
classes. With ``stem="imagenet"`` (7×7 stride-2 convolution, BN, ReLU, 3×3 stride-2 max-pool)
it is the ImageNet ResNet-18 of 11,689,512 parameters for 1000 classes, which lets the model
summary be checked against Bi-Real Net's published BOPs/FLOPs.
"""

from __future__ import annotations

from .. import nn
from ..errors import ConfigError
from ..nn.module import Module
from .common import (AUTO, Binarization, GlobalAvgPool, activation, kaiming_normal_,
                     make_binarization, shortcut)
from .registry import register_model


class BinaryConvUnit(Module):
    """One binary convolution with its own shortcut (Bi-Real Net, Liu et al. 2018):

        out = act(BN(binconv(x)) + shortcut(x))

    Shapes: x (N, in, H, W) -> (N, out, H/stride, W/stride). ``conv`` is a 3×3 binary
    convolution (padding 1) of the given :class:`Binarization`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 binarization: Binarization, shortcut_kind: str, act: str = "hardtanh",
                 rng=None):
        super().__init__()
        self.conv = binarization.conv(in_channels, out_channels, 3, stride=stride, padding=1,
                                      rng=rng)
        self.bn = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut(in_channels, out_channels, stride, shortcut_kind, rng=rng)
        self.act = activation(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)) + self.shortcut(x))


class BinaryBasicBlock(Module):
    """Two :class:`BinaryConvUnit` s: the first may downsample, the second keeps the size."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 binarization: Binarization, shortcut_kind: str, act: str = "hardtanh",
                 rng=None):
        super().__init__()
        self.unit1 = BinaryConvUnit(in_channels, out_channels, stride, binarization,
                                    shortcut_kind, act, rng)
        self.unit2 = BinaryConvUnit(out_channels, out_channels, 1, binarization,
                                    shortcut_kind, act, rng)

    def forward(self, x):
        return self.unit2(self.unit1(x))


class BasicBlock(Module):
    """He et al.'s basic block: act(BN(conv(act(BN(conv(x))))) + shortcut(x)).

    Shapes: x (N, in, H, W) -> (N, out, H/stride, W/stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 binarization: Binarization, shortcut_kind: str, act: str = "relu", rng=None):
        super().__init__()
        self.conv1 = binarization.conv(in_channels, out_channels, 3, stride=stride, padding=1,
                                       rng=rng)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation(act)
        self.conv2 = binarization.conv(out_channels, out_channels, 3, padding=1, rng=rng)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut(in_channels, out_channels, stride, shortcut_kind, rng=rng)
        self.act2 = activation(act)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(Module):
    """A ResNet of basic blocks, built by :func:`resnet20` and :func:`resnet18`.

    stem (conv, BN, act [, max-pool]) -> stages -> global average pool [-> BatchNorm1d] -> fc.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes).

    Attributes:
        conv1, bn1, act1: the real-valued stem; ``pool1`` the max-pool of the ImageNet stem.
        layer1 ... layerK: the stages, each a Sequential of blocks.
        pool: global average pooling.
        bn_fc: BatchNorm1d before the classifier (binary variants), or an Identity.
        fc: the real-valued classifier.
        binarization: the :class:`Binarization` of the hidden convolutions.
    """

    def __init__(self, widths, depths, num_classes: int, binarization: Binarization,
                 in_channels: int = 3, shortcut_kind: str = "avgpool", act: str = "hardtanh",
                 block: str = "bireal", bn_before_fc: bool = True, stem: str = "cifar",
                 rng=None):
        super().__init__()
        self.binarization = binarization
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False,
                                   rng=rng)
        elif stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False,
                                   rng=rng)
        else:
            raise ConfigError(f"unknown stem {stem!r}; use 'cifar' (3x3 stride 1) or 'imagenet' "
                              f"(7x7 stride 2 + 3x3 max-pool)")
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = activation(act)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else None

        blocks = {"bireal": BinaryBasicBlock, "basic": BasicBlock}
        if block not in blocks:
            raise ConfigError(f"unknown block {block!r}; use 'bireal' or 'basic'")
        width = widths[0]
        self.num_stages = len(widths)
        for i, (out_width, depth) in enumerate(zip(widths, depths)):
            stage = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                stage.append(blocks[block](width, out_width, stride, binarization,
                                           shortcut_kind, act, rng))
                width = out_width
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))

        self.pool = GlobalAvgPool()
        self.bn_fc = nn.BatchNorm1d(width) if bn_before_fc else nn.Identity()
        self.fc = nn.Linear(width, num_classes, rng=rng)
        kaiming_normal_(self, rng)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        if self.pool1 is not None:
            x = self.pool1(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.bn_fc(self.pool(x)))


def _architecture_defaults(b: Binarization, shortcut_kind, act, bn_before_fc, fp_shortcut,
                           binary_shortcut):
    """The options that depend on the precision unless given explicitly."""
    if shortcut_kind is None:
        shortcut_kind = binary_shortcut if b.binary else fp_shortcut
    if act is None:
        act = "hardtanh" if b.binary else "relu"
    if bn_before_fc is None:
        bn_before_fc = b.binary
    return shortcut_kind, act, bn_before_fc


def resnet20(num_classes: int = 10, variant: str = "w1a1", input_quantizer=AUTO,
             weight_quantizer=AUTO, scale=None, pad_value: float = 0.0, in_channels: int = 3,
             shortcut: str | None = None, act: str | None = None,
             bn_before_fc: bool | None = None, rng=None) -> ResNet:
    """CIFAR ResNet-20 (16/32/64 channels, [3, 3, 3] blocks); see the module docstring.

    Args:
        num_classes: outputs of the classifier.
        variant: ``"w1a1"`` (Bi-Real-style binary blocks), ``"w1a32"`` (same blocks, real
            activations) or ``"fp"`` (He et al.'s blocks).
        input_quantizer, weight_quantizer: estimators of the binary convolutions, names from
            :mod:`tinybnn.quant` (``"auto"``: ``"ste_sign"`` where the variant binarizes).
        scale: per-channel scaling of the binary convolutions (None, "mean_abs", "learnable").
        pad_value: what the binary convolutions pad with (0, +1, −1).
        in_channels: image channels.
        shortcut: override the downsampling shortcut ("avgpool", "subsample", "conv",
            "avgpool_conv"); default "avgpool" (binary) or "subsample" (fp).
        act: override the activation ("hardtanh" for binary, "relu" for fp).
        bn_before_fc: override the BatchNorm1d before the classifier (on for binary).
        rng: the Generator for the initialisation.

    Shapes: x (N, in_channels, 32, 32) -> (N, num_classes) (any H, W ≥ 4 work).
    """
    b = make_binarization(variant, input_quantizer, weight_quantizer, scale, pad_value)
    shortcut, act, bn_before_fc = _architecture_defaults(b, shortcut, act, bn_before_fc,
                                                         "subsample", "avgpool")
    return ResNet((16, 32, 64), (3, 3, 3), num_classes, b, in_channels=in_channels,
                  shortcut_kind=shortcut, act=act, block="bireal" if b.binary else "basic",
                  bn_before_fc=bn_before_fc, rng=rng)


def resnet18(num_classes: int = 10, variant: str = "w1a1", input_quantizer=AUTO,
             weight_quantizer=AUTO, scale=None, pad_value: float = 0.0, in_channels: int = 3,
             stem: str = "cifar", shortcut: str | None = None, act: str | None = None,
             bn_before_fc: bool | None = None, rng=None) -> ResNet:
    """ResNet-18 (64/128/256/512 channels, [2, 2, 2, 2] blocks) with the CIFAR stem (or the
    ImageNet one, ``stem="imagenet"``); options as :func:`resnet20`. Default shortcuts:
    "avgpool_conv" (binary) or "conv" (fp). Binary variants use Bi-Real-style blocks.

    Shapes: x (N, in_channels, 32, 32) -> (N, num_classes) (224×224 for the ImageNet stem).
    """
    b = make_binarization(variant, input_quantizer, weight_quantizer, scale, pad_value)
    shortcut, act, bn_before_fc = _architecture_defaults(b, shortcut, act, bn_before_fc,
                                                         "conv", "avgpool_conv")
    return ResNet((64, 128, 256, 512), (2, 2, 2, 2), num_classes, b, in_channels=in_channels,
                  shortcut_kind=shortcut, act=act, block="bireal" if b.binary else "basic",
                  bn_before_fc=bn_before_fc, stem=stem, rng=rng)


def _channels(input_shape) -> int:
    if len(input_shape) != 3:
        raise ConfigError(f"a CNN needs images of shape (C, H, W), got input_shape "
                          f"{tuple(input_shape)}")
    return int(input_shape[0])


@register_model("resnet20")
def _build_resnet20(input_shape=(3, 32, 32), num_classes: int = 10, **options) -> ResNet:
    return resnet20(num_classes=num_classes, in_channels=_channels(input_shape), **options)


@register_model("resnet18")
def _build_resnet18(input_shape=(3, 32, 32), num_classes: int = 10, **options) -> ResNet:
    return resnet18(num_classes=num_classes, in_channels=_channels(input_shape), **options)
