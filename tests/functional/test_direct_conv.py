"""The direct convolution forward (small reductions): against the NumPy einsum reference and the
im2col path, exact and in order for ±1 inputs, the same whatever the chunking, and conv2d's choice
between the two paths."""

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.functional import conv as conv_module
from tinybnn.functional import direct_conv as direct_module
from tinybnn.functional import parallel

from .test_conv import reference_conv

rng = np.random.default_rng(3)

# (N, C, O, H, W, kh, kw, stride, padding, pad_value): K = C·kh·kw from 1 to 32, so both the
# nine-term and the one-term passes run; odd O (the last channel paired with itself)
CASES = [
    (2, 3, 16, 8, 8, 3, 3, (1, 1), (1, 1), 0.0),      # the CIFAR stem, K = 27
    (2, 3, 5, 7, 9, 3, 3, (2, 2), (1, 1), 0.0),       # stride 2, odd sizes, odd O
    (3, 2, 4, 6, 5, 3, 2, (1, 2), (0, 1), 1.0),       # non-square kernel, mixed stride, pad +1
    (2, 3, 3, 5, 4, 3, 3, (2, 1), (1, 1), -1.0),      # pad -1, stride 2 rows only
    (1, 1, 2, 9, 7, 5, 5, (1, 1), (2, 2), -1.0),      # 5×5, K = 25: 2 passes of 9 and 7 of 1
    (2, 32, 3, 4, 5, 1, 1, (1, 1), (0, 0), 0.0),      # 1×1, K = 32
    (1, 2, 1, 7, 7, 3, 3, (3, 3), (2, 2), 1.0),       # stride 3, rows left over, O = 1
    (2, 1, 2, 3, 4, 3, 3, (1, 1), (2, 1), 0.0),       # padding 2 rows: a row of pure border
]


def direct(x, w, b, stride, padding, pad_value):
    """y from direct_conv_into on arrays."""
    (sh, sw), (ph, pw) = stride, padding
    oh = (x.shape[2] + 2 * ph - w.shape[2]) // sh + 1
    ow = (x.shape[3] + 2 * pw - w.shape[3]) // sw + 1
    y = np.empty((x.shape[0], w.shape[0], oh, ow), dtype=np.result_type(x, w))
    direct_module.direct_conv_into(x, w, b, y, stride, padding, pad_value)
    return y


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_direct_matches_reference_and_im2col(case, dtype, tol, monkeypatch):
    n, c, o, h, w, kh, kw, stride, padding, pad_value = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    expected = reference_conv(x, weight, bias, stride, padding, pad_value)
    y = direct(x, weight, bias, stride, padding, pad_value)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(direct(x, weight, None, stride, padding, pad_value),
                               expected - bias[:, None, None], rtol=tol, atol=tol)
    monkeypatch.setattr(direct_module, "MAX_DIRECT_REDUCTION", 0)          # the im2col path
    monkeypatch.setattr(direct_module, "MAX_DIRECT_REDUCTION_LARGE", 0)
    im2col = F.conv2d(tb.tensor(x), tb.tensor(weight), tb.tensor(bias), stride, padding, pad_value)
    np.testing.assert_allclose(y, im2col.data, rtol=tol, atol=tol)


def test_direct_mixed_dtypes_and_non_contiguous_input():
    x = np.asfortranarray(rng.standard_normal((2, 3, 6, 5)).astype(np.float32))
    w = rng.standard_normal((4, 3, 3, 3))                                   # float64
    y = direct(x, w, None, (1, 1), (1, 1), 0.0)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, reference_conv(x.astype(np.float64), w, None, (1, 1), (1, 1)),
                               rtol=1e-12, atol=1e-12)


def test_direct_adds_terms_in_order_exactly_for_sign_inputs():
    # ±1 inputs make every product exact; weights of very different sizes make the float32 sum
    # depend on the order of the terms: it must be the order (c, i, j), pixel by pixel
    x = np.where(rng.standard_normal((2, 3, 6, 7)) >= 0, 1.0, -1.0).astype(np.float32)
    w = (rng.standard_normal((5, 3, 3, 3)) * 10.0 ** rng.integers(-4, 5, (5, 3, 3, 3)))
    w = w.astype(np.float32)
    for (sh, sw), pad_value in [((1, 1), -1.0), ((2, 2), 1.0), ((1, 2), 0.0)]:
        xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=pad_value)
        y = direct(x, w, None, (sh, sw), (1, 1), pad_value)
        expected = np.zeros(y.shape, dtype=np.float32)
        oh, ow = y.shape[2:]
        for c in range(3):
            for i in range(3):
                for j in range(3):
                    window = xpad[:, None, c, i:i + sh * oh:sh, j:j + sw * ow:sw]
                    expected += w[None, :, c, i, j, None, None] * window
        np.testing.assert_array_equal(y, expected)


def test_direct_sums_of_signs_are_exact_integers():
    x = np.where(rng.standard_normal((3, 3, 9, 8)) >= 0, 1.0, -1.0).astype(np.float32)
    w = np.where(rng.standard_normal((7, 3, 3, 3)) >= 0, 1.0, -1.0).astype(np.float32)
    y = direct(x, w, None, (1, 1), (1, 1), -1.0)
    exact = reference_conv(x.astype(np.int64), w.astype(np.int64), None, (1, 1), (1, 1), -1)
    np.testing.assert_array_equal(y, exact)


@pytest.mark.parametrize("threads, chunk_bytes", [(1, None), (3, 1)])
def test_conv2d_takes_the_direct_path_with_any_chunking(threads, chunk_bytes, monkeypatch):

    monkeypatch.setattr(parallel, "NUM_THREADS", threads)
    if chunk_bytes is not None:
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes)       # one image per chunk
    chunks = []

    def counted(x, *args):
        chunks.append(len(x))
        direct_module.direct_conv_into(x, *args)

    monkeypatch.setattr(conv_module, "direct_conv_into", counted)
    x = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    y = F.conv2d(tb.tensor(x), tb.tensor(w), padding=1)
    assert sum(chunks) == 5 and (chunk_bytes is None or max(chunks) == 1)
    # bit-identical to one call on the whole batch, whatever the threads and chunks
    np.testing.assert_array_equal(y.data, direct(x, w, None, (1, 1), (1, 1), 0.0))


def test_conv2d_uses_im2col_for_large_reductions_and_without_numba(monkeypatch):
    assert direct_module.uses_direct(np, 3, 3, 3)
    assert not direct_module.uses_direct(np, 4, 3, 3)                       # K = 36
    # ResNet-20's 16->16 convolutions on 32x32 planes (K = 144): direct at stride 1 only
    assert direct_module.uses_direct(np, 16, 3, 3, (1, 1), 32 * 32)
    assert not direct_module.uses_direct(np, 16, 3, 3, (2, 2), 32 * 32)
    assert not direct_module.uses_direct(np, 16, 3, 3, (1, 1), 16 * 16)
    assert not direct_module.uses_direct(np, 32, 3, 3, (1, 1), 32 * 32)     # K = 288
    monkeypatch.setattr(direct_module, "_compiled", lambda loops, **options: None)
    assert not direct_module.uses_direct(np, 3, 3, 3)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(tb.tensor(x), tb.tensor(w), stride=2, padding=1)
    np.testing.assert_allclose(y.data, reference_conv(x, w, None, (2, 2), (1, 1)), atol=1e-12)


def test_large_plane_rule_matches_im2col_on_a_resnet20_layer(monkeypatch):
    """The 16->16 3x3 convolution on a 32x32 plane takes the direct loop; its result equals the
    im2col path's up to float32 rounding, and is exact for ±1 inputs (binary layers)."""
    x = np.sign(rng.standard_normal((2, 16, 32, 32))).astype(np.float32)
    w = np.sign(rng.standard_normal((16, 16, 3, 3))).astype(np.float32)
    calls = []
    monkeypatch.setattr(conv_module, "direct_conv_into",
                        lambda *a: calls.append(1) or direct_module.direct_conv_into(*a))
    y = F.conv2d(tb.tensor(x), tb.tensor(w), padding=1, pad_value=-1.0).data
    assert calls
    np.testing.assert_array_equal(y, reference_conv(x.astype(np.float64), w.astype(np.float64),
                                                    None, (1, 1), (1, 1), -1.0))
