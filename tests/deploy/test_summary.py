"""The model summary: exact counts on a hand-computable model, and the papers' figures."""

import json

import numpy as np
import pytest

from tinybnn import nn
from tinybnn.deploy import summary
from tinybnn.models import resnet18, resnet20, vgg_small


def tiny_model():
    """input (1, 4, 4)
    conv 1→2 3×3 pad 1 (real)          18 float params,  2·4·4 outputs × 9        = 288 float MACs
    BN(2)                               4 float params
    binconv 2→4 3×3 pad 1 (W1A1)        72 binary params, 4·4·4 outputs × 18       = 1152 BOPs
    BN(4)                               8 float params
    flatten (64)
    binlinear 64→3 (W1A1)              192 binary params, 3 outputs × 64           = 192 BOPs
    linear 3→2 (+bias)                  8 float params,   2 outputs × 3            = 6 float MACs
    """
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, bias=False, rng=0), nn.BatchNorm2d(2),
        nn.BinaryConv2d(2, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4),
        nn.Flatten(), nn.BinaryLinear(64, 3, rng=0), nn.Linear(3, 2, rng=0))


def test_tiny_model_counts_exactly():
    s = summary(tiny_model(), (1, 4, 4))
    rows = {row.name: row for row in s.layers}
    assert [r.name for r in s.layers] == ["0", "1", "2", "3", "4", "5", "6"]
    assert rows["0"].params == {32: 18} and rows["0"].macs == {32: 288}
    assert rows["1"].params == {32: 4} and rows["1"].macs == {}
    assert rows["2"].params == {1: 72} and rows["2"].macs == {1: 1152}
    assert rows["2"].input_bits == 1 and rows["2"].weight_bits == 1
    assert rows["5"].params == {1: 192} and rows["5"].macs == {1: 192}
    assert rows["6"].params == {32: 8} and rows["6"].macs == {32: 6}
    assert rows["0"].output_shape == (-1, 2, 4, 4)
    assert rows["4"].output_shape == (-1, 64)
    assert rows["6"].output_shape == (-1, 2)

    assert s.total_params == 302
    assert s.binary_params == 264 and s.float_params == 38
    assert s.memory_bits == 264 + 38 * 32 == 1480
    assert s.memory_bytes == 185
    assert s.float32_memory_bytes == 302 * 4
    assert s.compression_ratio == pytest.approx(1208 / 185)
    assert s.binary_macs == 1344 and s.float_macs == 294
    assert s.ops == pytest.approx(1344 / 64 + 294)
    assert s.binarized_mac_ratio == pytest.approx(1344 / 1638)


def test_w1a32_layer_does_float_macs_with_one_bit_weights():
    model = nn.Sequential(nn.BinaryConv2d(2, 4, 3, padding=1, input_quantizer=None, rng=0))
    s = summary(model, (2, 5, 5))
    (row,) = s.layers
    assert row.params == {1: 72}
    assert row.input_bits == 32 and row.weight_bits == 1
    assert row.macs == {32: 4 * 25 * 18}          # max(32, 1) = 32-bit MACs
    assert s.binary_macs == 0


def test_stride_and_scales():
    # stride 2: output 4×3×3, each output 2·3·3 = 18 MACs; learnable α adds 4 float params
    model = nn.Sequential(nn.BinaryConv2d(2, 4, 3, stride=2, padding=1, scale="learnable",
                                          rng=0))
    s = summary(model, (2, 6, 6))
    assert s.layers[0].output_shape == (-1, 4, 3, 3)
    assert s.binary_macs == 4 * 9 * 18
    assert s.params_by_bits() == {1: 72, 32: 4}


def test_summary_leaves_the_model_unchanged():
    model = tiny_model().train()
    bn = model[1]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    summary(model, (1, 4, 4))
    assert model.training and bn.training
    after = model.state_dict()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_table_and_dict():
    s = summary(tiny_model(), (1, 4, 4))
    text = str(s)
    for word in ("Layer", "Outputs", "# 1-bit", "# 32-bit", "Memory", "1-bit MACs",
                 "32-bit MACs", "Total", "Compression ratio", "BinaryConv2d", "(-1,4,4,4)"):
        assert word in text
    d = s.to_dict()
    json.dumps(d)
    assert d["totals"]["params"] == 302 and d["totals"]["binary_macs"] == 1344
    assert len(d["layers"]) == 7 and d["layers"][2]["macs"] == {"1": 1152}


def test_unused_layer_has_no_shape():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(3, 3, rng=0), nn.Linear(3, 5, rng=0)

        def forward(self, x):
            return self.used(x)

    s = summary(TwoPaths(), (3,))
    rows = {r.name: r for r in s.layers}
    assert rows["used"].output_shape == (-1, 3) and rows["unused"].output_shape is None
    assert s.total_params == 12 + 20 and s.float_macs == 9


# ---------------------------------------------------------------------------------------------
# Real models against formulas and the papers
# ---------------------------------------------------------------------------------------------

def conv_macs(c_in, c_out, k, out_hw):
    return c_in * c_out * k * k * out_hw * out_hw


def test_resnet20_w1a1_counts():
    s = summary(resnet20(variant="w1a1", rng=0), (3, 32, 32))
    # binary 3x3 convs: stage 1 six 16→16 at 32², stage 2 16→32 + five 32→32 at 16², stage 3 …
    bops = (6 * conv_macs(16, 16, 3, 32) + conv_macs(16, 32, 3, 16) + 5 * conv_macs(32, 32, 3, 16)
            + conv_macs(32, 64, 3, 8) + 5 * conv_macs(64, 64, 3, 8))
    flops = conv_macs(3, 16, 3, 32) + 64 * 10
    assert s.binary_macs == bops == 40_108_032
    assert s.float_macs == flops
    binary = 6 * 2304 + (16 * 32 * 9 + 5 * 32 * 32 * 9) + (32 * 64 * 9 + 5 * 64 * 64 * 9)
    assert s.binary_params == binary == 267_264
    assert s.total_params == 269_722 + 128          # + BatchNorm1d(64) before the classifier
    float_params = 269_850 - 267_264
    assert s.compression_ratio == pytest.approx(269_850 * 32 / (267_264 + 32 * float_params))
    assert 24 < s.compression_ratio < 25            # the real stem, BNs and classifier weigh


def test_resnet20_fp_counts():
    s = summary(resnet20(variant="fp", rng=0), (3, 32, 32))
    assert s.binary_macs == 0 and s.binary_params == 0
    assert s.total_params == 269_722                 # "0.27M", He et al. 2016, Table 6
    assert s.float_macs == 40_108_032 + conv_macs(3, 16, 3, 32) + 640   # ≈ 41M
    assert s.compression_ratio == 1.0


def test_resnet18_cifar_fp_parameters():
    # He et al. 2016 ResNet-18 with the CIFAR stem: 11,173,962 parameters ("11.17M"/"11.2M" in
    # the CIFAR BNN papers, e.g. BNext Sec. 4 lists ResNet-18 at 11.2M)
    model = resnet18(variant="fp", rng=0)
    assert model.num_parameters() == 11_173_962
    s = summary(model, (3, 32, 32))
    assert s.total_params == 11_173_962


def test_resnet18_imagenet_against_bireal():
    """The ImageNet ResNet-18 binarized as Bi-Real Net (Liu et al. 2018) does: binary 3×3
    convolutions, real 7×7 stem, real 1×1 downsampling convolutions and classifier.

    Exact counts first (formula), then the rounded figures of the papers: Bi-Real Net's
    memory/FLOPs comparison gives Bi-Real Net-18 33.6 Mbit and 1.63e8 "FLOPs" (= BOPs/64 + FLOPs,
    our OPs); ReActNet (Liu et al. 2020) lists Bi-Real Net-18 at 1.68e9 BOPs."""
    s = summary(resnet18(num_classes=1000, variant="w1a1", stem="imagenet", bn_before_fc=False,
                         rng=0), (3, 224, 224))
    # 3×3 binary convolutions: stage 1 at 56², then 28², 14², 7² (the first of each halves)
    bops = 4 * conv_macs(64, 64, 3, 56)
    for c, hw in ((128, 28), (256, 14), (512, 7)):
        bops += conv_macs(c // 2, c, 3, hw) + 3 * conv_macs(c, c, 3, hw)
    flops = (conv_macs(3, 64, 7, 112) + conv_macs(64, 128, 1, 28) + conv_macs(128, 256, 1, 14)
             + conv_macs(256, 512, 1, 7) + 512 * 1000)
    assert s.binary_macs == bops == 1_676_279_808
    assert s.float_macs == flops
    assert s.binary_macs == pytest.approx(1.68e9, rel=0.005)
    assert s.ops == pytest.approx(1.63e8, rel=0.015)
    assert s.memory_bits / 1e6 == pytest.approx(33.6, rel=0.01)


def test_resnet18_imagenet_fp_against_he_et_al():
    s = summary(resnet18(num_classes=1000, variant="fp", stem="imagenet", rng=0), (3, 224, 224))
    assert s.total_params == 11_689_512               # torchvision's resnet18
    assert s.float_macs == pytest.approx(1.81e9, rel=0.005)   # He et al. Table 1: 1.8e9 FLOPs
    assert s.memory_bits / 1e6 == pytest.approx(374.1, rel=0.001)   # Bi-Real Net's 374.1 Mbit


def test_vgg_small_counts():
    s = summary(vgg_small(variant="w1a1", rng=0), (3, 32, 32))
    bops = (conv_macs(128, 128, 3, 32) + conv_macs(128, 256, 3, 16) + conv_macs(256, 256, 3, 16)
            + conv_macs(256, 512, 3, 8) + conv_macs(512, 512, 3, 8))
    assert s.binary_macs == bops
    assert s.float_macs == conv_macs(3, 128, 3, 32) + 8192 * 10
    assert s.total_params == 4_660_106


def test_summary_counts_every_parameter_of_the_recipe_models():
    """Quantizer parameters (ReCU's α) are counted with their layer; nothing is lost or doubled."""
    from tinybnn.models import get_recipe, make_model

    for name in ("resnet20-recu", "resnet20-irnet", "resnet20-dorefa", "resnet20-bireal"):
        r = get_recipe(name)
        model = make_model(r.model, (3, 32, 32), 10, rng=0, **r.model_options)
        s = summary(model, (3, 32, 32))
        assert s.total_params == model.num_parameters(), name
        assert s.binary_macs == 40_108_032, name
