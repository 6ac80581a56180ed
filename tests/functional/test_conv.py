"""conv2d, pad and the im2col helpers: forward against a loop-free NumPy einsum over a padded
array, backward against finite differences in float64."""

import threading
import time

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.functional import conv as conv_module
from tinybnn.functional import direct_conv as direct_conv_module
from tinybnn.functional import im2col as im2col_module
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(2)


def reference_conv(x, w, b=None, stride=(1, 1), padding=(0, 0), pad_value=0.0):
    """y[n, o, a, b] = Σ_{c,i,j} xpad[n, c, a·sh + i, b·sw + j] · w[o, c, i, j] (+ bias)."""
    (sh, sw), (ph, pw) = stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    windows = sliding_window_view(xpad, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
    y = np.einsum("ncabij,ocij->noab", windows, w)
    return y if b is None else y + b[None, :, None, None]


# (N, C, O, H, W, kh, kw, stride, padding, pad_value)
CASES = [
    (2, 3, 4, 5, 5, 3, 3, (1, 1), (1, 1), 0.0),
    (2, 2, 3, 6, 7, 3, 3, (2, 2), (1, 1), 0.0),       # stride 2, non-square input
    (1, 3, 2, 5, 6, 2, 3, (1, 2), (0, 1), 0.0),       # non-square kernel, mixed stride
    (2, 2, 2, 4, 5, 3, 3, (1, 1), (1, 1), 1.0),       # pad with +1
    (2, 2, 3, 5, 4, 3, 3, (2, 2), (1, 1), -1.0),      # pad with -1, stride 2
    (2, 3, 2, 3, 4, 1, 1, (1, 1), (1, 1), 0.0),       # padding >= kernel: the col2im path
    (1, 2, 2, 7, 7, 3, 3, (3, 3), (2, 2), 0.0),       # stride 3, rows left over
    (3, 1, 2, 4, 4, 4, 4, (1, 1), (0, 0), 0.0),       # kernel as large as the input
    (2, 3, 3, 5, 6, 3, 3, (1, 1), (1, 1), 0.0),       # C = O, "same": buffers shared
    (2, 3, 3, 5, 5, 3, 3, (1, 1), (1, 1), 1.0),       # C = O, pad +1: not shared
    (2, 2, 3, 6, 5, 3, 3, (1, 1), (2, 1), 0.0),       # stride 1, padding 2 rows but 1 column
    (2, 2, 3, 5, 4, 3, 3, (1, 1), (0, 0), -1.0),      # no border: pad_value unused
    (2, 2, 3, 4, 6, 3, 2, (1, 1), (1, 0), -1.0),      # stride 1, non-square kernel, pad -1
]


@pytest.fixture(params=["one chunk", "one image per chunk"])
def chunking(request, monkeypatch):
    """Run each test with the whole batch in one chunk and with one image per chunk."""
    if request.param == "one image per chunk":
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)


@pytest.fixture(params=["direct when K is small", "always im2col"])
def forward_path(request, monkeypatch):
    """Run a test with conv2d's usual choice of forward path, and with im2col for every K."""
    if request.param == "always im2col":
        monkeypatch.setattr(direct_conv_module, "MAX_DIRECT_REDUCTION", 0)
        monkeypatch.setattr(direct_conv_module, "MAX_DIRECT_REDUCTION_LARGE", 0)


@pytest.mark.parametrize("case", CASES)
def test_conv2d_forward(case, chunking, forward_path):
    n, c, o, h, w, kh, kw, stride, padding, pad_value = case
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw))
    bias = rng.standard_normal(o)
    y = F.conv2d(tb.tensor(x), tb.tensor(weight), tb.tensor(bias), stride, padding, pad_value)
    np.testing.assert_allclose(y.data, reference_conv(x, weight, bias, stride, padding,
                                                      pad_value), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_conv2d_backward(case, chunking):
    n, c, o, h, w, kh, kw, stride, padding, pad_value = case
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw))
    bias = rng.standard_normal(o)
    gradcheck(lambda a, b, d: F.conv2d(a, b, d, stride, padding, pad_value), x, weight, bias)


def test_conv2d_without_bias_and_int_arguments():
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(tb.tensor(x), tb.tensor(w), stride=2, padding=1)
    np.testing.assert_allclose(y.data, reference_conv(x, w, None, (2, 2), (1, 1)), atol=1e-10)
    gradcheck(lambda a, b: F.conv2d(a, b, None, 2, 1), x, w)


def test_conv2d_gradient_of_weight_only():
    x = tb.tensor(rng.standard_normal((2, 2, 5, 5)))              # no requires_grad
    w = tb.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    g = rng.standard_normal((2, 3, 5, 5))
    F.conv2d(x, w, padding=1).backward(g)
    # dW[o, c, i, j] = Σ_{n,a,b} g[n, o, a, b] · xpad[n, c, a + i, b + j]
    xpad = np.pad(x.data, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(xpad, (3, 3), axis=(2, 3))
    np.testing.assert_allclose(w.grad, np.einsum("noab,ncabij->ocij", g, windows), atol=1e-10)
    assert x.grad is None


@pytest.mark.parametrize("stride, pad_value", [(1, 0.0), (1, -1.0), (2, 1.0)])
def test_conv2d_gradient_of_input_only(stride, pad_value):
    x, w = rng.standard_normal((3, 2, 6, 5)), rng.standard_normal((4, 2, 3, 3))
    g = rng.standard_normal(reference_conv(x, w, None, (stride,) * 2, (1, 1)).shape)
    grads = []
    for w_needs_grad in (False, True):
        xt, wt = tb.tensor(x, requires_grad=True), tb.tensor(w, requires_grad=w_needs_grad)
        F.conv2d(xt, wt, stride=stride, padding=1, pad_value=pad_value).backward(g)
        grads.append(xt.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
    gradcheck(lambda a: F.conv2d(a, tb.tensor(w), None, stride, 1, pad_value), x)


def test_conv2d_keeps_float32():
    x = tb.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = tb.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, reference_conv(x.data, w.data, None, (1, 1), (1, 1)),
                               rtol=1e-4, atol=1e-4)


def test_conv2d_errors_name_the_problem():
    x = tb.tensor(np.zeros((2, 3, 5, 5)))
    with pytest.raises(tb.ShapeError, match=r"3 channels.*expects 4"):
        F.conv2d(x, tb.tensor(np.zeros((8, 4, 3, 3))))
    with pytest.raises(tb.ShapeError, match="N, C, H, W"):
        F.conv2d(tb.tensor(np.zeros((3, 5, 5))), tb.tensor(np.zeros((8, 3, 3, 3))))
    with pytest.raises(tb.ShapeError, match="does not fit"):
        F.conv2d(x, tb.tensor(np.zeros((8, 3, 7, 7))))
    with pytest.raises(tb.ShapeError, match="bias"):
        F.conv2d(x, tb.tensor(np.zeros((8, 3, 3, 3))), tb.tensor(np.zeros(3)))
    with pytest.raises(tb.ConfigError, match="stride"):
        F.conv2d(x, tb.tensor(np.zeros((8, 3, 3, 3))), stride=0)


# --- im2col / col2im -----------------------------------------------------------------------

# (H, W, kh, kw, stride, padding): every branch of the compiled loops, including planes with no
# pixel inside the image (padding >= kernel) and rows of "same" convolutions read as one run
UNFOLD_CASES = [
    (6, 5, 3, 2, (1, 1), (1, 1)), (6, 5, 3, 2, (2, 1), (1, 0)), (6, 5, 3, 2, (2, 2), (0, 0)),
    (8, 8, 3, 3, (1, 1), (1, 1)), (7, 6, 3, 3, (2, 2), (1, 1)), (5, 7, 5, 3, (1, 1), (2, 1)),
    (3, 4, 1, 1, (1, 1), (2, 1)), (1, 1, 3, 3, (1, 1), (1, 1)), (2, 3, 4, 4, (1, 3), (2, 2)),
    (7, 7, 3, 3, (3, 3), (2, 2)),
]


@pytest.mark.parametrize("h, w, kh, kw, stride, padding", UNFOLD_CASES)
@pytest.mark.parametrize("pad_value", [0.0, -1.0])
def test_im2col_columns_are_the_patches(h, w, kh, kw, stride, padding, pad_value):
    x = rng.standard_normal((2, 3, h, w))
    cols, (oh, ow) = F.conv2d_im2col(x, kh, kw, stride, padding, pad_value)
    (sh, sw), (ph, pw) = stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    windows = sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    expected = windows.transpose(1, 4, 5, 0, 2, 3).reshape(3 * kh * kw, 2 * oh * ow)
    np.testing.assert_array_equal(cols, expected)
    # float32, and a non-contiguous input (copied before the compiled loops read it)
    x32 = np.asfortranarray(x.astype(np.float32))
    cols32, _ = F.conv2d_im2col(x32, kh, kw, stride, padding, pad_value)
    np.testing.assert_array_equal(cols32, expected.astype(np.float32))


@pytest.mark.parametrize("h, w, kh, kw, stride, padding", UNFOLD_CASES)
def test_col2im_is_the_adjoint_of_im2col(h, w, kh, kw, stride, padding):
    # <im2col(x), c> = <x, col2im(c)> for every x and c (zero border)
    x = rng.standard_normal((2, 3, h, w))
    cols, _ = F.conv2d_im2col(x, kh, kw, stride, padding)
    c = rng.standard_normal(cols.shape)
    back = F.conv2d_col2im(c, x.shape, kh, kw, stride, padding)
    assert back.shape == x.shape
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-10)


def test_im2col_matmul_is_conv2d():
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    cols, (oh, ow) = F.conv2d_im2col(x, 3, 3, stride=2, padding=1)
    y = (w.reshape(4, -1) @ cols).reshape(4, 2, oh, ow).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(y, reference_conv(x, w, None, (2, 2), (1, 1)), atol=1e-10)


# --- pad -----------------------------------------------------------------------------------

def test_pad_int_pads_height_and_width():
    x = rng.standard_normal((2, 3, 4, 5))
    y = F.pad(tb.tensor(x), 2, value=-1.0)
    np.testing.assert_array_equal(y.data, np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)),
                                                 constant_values=-1.0))
    gradcheck(lambda a: F.pad(a, 2, value=-1.0), x)


def test_pad_tuple_follows_torch_order_and_negative_crops():
    x = rng.standard_normal((2, 3, 4, 5))
    y = F.pad(tb.tensor(x), (1, 2, 0, 3))  # W: left 1 right 2; H: top 0 bottom 3
    np.testing.assert_array_equal(y.data, np.pad(x, ((0, 0), (0, 0), (0, 3), (1, 2))))
    cropped = F.pad(tb.tensor(x), (-1, 0, 1, -2))
    np.testing.assert_array_equal(cropped.data,
                                  np.pad(x[:, :, :-2, 1:], ((0, 0), (0, 0), (1, 0), (0, 0))))
    gradcheck(lambda a: F.pad(a, (-1, 0, 1, -2, 2, 0)), x)


def test_pad_errors():
    with pytest.raises(tb.ConfigError, match="even length"):
        F.pad(tb.tensor(np.zeros((2, 3))), (1, 2, 3))


# --- against PyTorch (only when it is installed) -------------------------------------------

def test_conv2d_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal((3, 5, 5, 4)).astype(np.float32)
    xt, wt, bt = (tb.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=2, padding=1)
    y.backward(g)
    tx, tw, tbias = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tbias, stride=2, padding=1)
    ty.backward(torch.tensor(g))
    for ours, theirs in ((y.data, ty), (xt.grad, tx.grad), (wt.grad, tw.grad),
                         (bt.grad, tbias.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-4)


# --- the CPU machinery: col2im without Numba, chunks on threads ------------------------------

def test_im2col_and_col2im_without_numba_match(monkeypatch):
    x = rng.standard_normal((2, 3, 5, 4))
    cols, _ = F.conv2d_im2col(x, 3, 2, stride=2, padding=1, pad_value=-1.0)   # OH = OW = 3
    back = F.conv2d_col2im(cols, x.shape, 3, 2, stride=2, padding=1)
    monkeypatch.setattr(im2col_module, "_compiled", lambda loops: None)
    np.testing.assert_array_equal(F.conv2d_im2col(x, 3, 2, 2, 1, -1.0)[0], cols)
    np.testing.assert_allclose(F.conv2d_col2im(cols, x.shape, 3, 2, stride=2, padding=1), back,
                               rtol=1e-12)
    x, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3))
    for stride in (1, 2):
        gradcheck(lambda a, b: F.conv2d(a, b, None, stride, 1), x, w)


def test_threads_give_the_same_result(monkeypatch):
    from tinybnn.functional import parallel

    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)           # one image per chunk
    x = rng.standard_normal((7, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(parallel, "NUM_THREADS", threads)
        xt, wt = tb.tensor(x, requires_grad=True), tb.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=2, padding=1)
        y.backward(np.ones(y.shape, np.float32))
        results.append((y.data, xt.grad, wt.grad))
    for one, three in zip(*results):
        np.testing.assert_allclose(one, three, rtol=1e-6, atol=1e-6)


def test_map_chunks_keeps_order_and_raises(monkeypatch):
    from tinybnn.functional import parallel

    monkeypatch.setattr(parallel, "NUM_THREADS", 2)
    assert parallel.map_chunks(lambda a, b: (a, b), 10, 4) == [(0, 4), (4, 8), (8, 10)]

    def fail(a, b):
        raise ValueError(f"chunk {a}")

    with pytest.raises(ValueError, match="chunk"):
        parallel.map_chunks(fail, 4, 1)


def test_map_chunks_runs_on_the_calling_thread_and_waits_for_all_chunks(monkeypatch):
    from tinybnn.functional import parallel

    monkeypatch.setattr(parallel, "NUM_THREADS", 2)
    threads, done = set(), []

    def work(a, b):
        threads.add(threading.get_ident())
        time.sleep(0.005)
        if a == 0:
            raise ValueError("chunk 0")
        done.append(a)

    with pytest.raises(ValueError, match="chunk 0"):
        parallel.map_chunks(work, 6, 1)
    assert threading.get_ident() in threads and len(threads) == 2
    assert sorted(done) == [1, 2, 3, 4, 5]          # none still running after the error


def test_workspaces_are_not_shared_between_paddings():
    # both pad to (2, 3, 7, 7) with zeros, but with borders of different widths
    w = rng.standard_normal((2, 3, 3, 3))
    for size, padding in [(5, 1), (3, 2), (5, 1)]:
        x = rng.standard_normal((2, 3, size, size))
        y = F.conv2d(tb.tensor(x), tb.tensor(w), padding=padding)
        np.testing.assert_allclose(y.data, reference_conv(x, w, None, (1, 1), (padding,) * 2),
                                   atol=1e-10)
