"""Bop: m_t = (1 - gamma) m_{t-1} + gamma g_t ; flip w where w * m_t > tau. And flip_ratio."""

import numpy as np
import pytest

from tinybnn.autograd import Tensor
from tinybnn.errors import ConfigError, ShapeError
from tinybnn.nn import Parameter
from tinybnn.optim import SGD, Bop, flip_ratio


def binary(*values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype), binary=True)


def test_defaults_are_larqs():
    opt = Bop([binary(1.0)])
    assert opt.defaults == {"threshold": 1e-8, "gamma": 1e-4}
    assert "lr" not in opt.param_groups[0]


def test_weights_become_signs_when_handed_to_bop():
    w = binary(0.3, -0.2, 0.0, -0.0, 5.0, dtype=np.float32)
    Bop([w])
    assert w.data.tolist() == [1.0, -1.0, 1.0, 1.0, 1.0]     # sign(0) = +1 (also for -0.0)
    assert w.data.dtype == np.float32


def test_flip_exactly_where_w_times_m_exceeds_threshold():
    w = binary(1, -1, 1, -1, 1, -1)
    opt = Bop([w], gamma=0.5, threshold=0.1)

    # step 1: m = 0.5 g = [0.5, -0.5, -0.5, 0.5, 0.1, -0.15]
    #         w m      = [0.5,  0.5, -0.5, -0.5, 0.1,  0.15]  -> flip 0, 1, 5 (0.1 is not > 0.1)
    w.grad = np.array([1.0, -1.0, -1.0, 1.0, 0.2, -0.3])
    opt.step()
    np.testing.assert_allclose(opt.state[w]["momentum"], [0.5, -0.5, -0.5, 0.5, 0.1, -0.15])
    assert w.data.tolist() == [-1, 1, 1, -1, 1, 1]
    assert opt.last_flip_ratio == {0: 0.5} and opt.last_flips == 3

    # step 2: g = 0: m = [0.25, -0.25, -0.25, 0.25, 0.05, -0.075]
    #         w m = [-0.25, -0.25, -0.25, -0.25, 0.05, -0.075] -> no flip
    w.grad = np.zeros(6)
    opt.step()
    assert w.data.tolist() == [-1, 1, 1, -1, 1, 1]
    assert opt.last_flip_ratio == {0: 0.0}

    # step 3: g = [0, 0, -1, 1, 1, 0]: m = 0.5 m + 0.5 g = [0.125, -0.125, -0.625, 0.625, 0.525,
    #         -0.0375];  w m = [-0.125, -0.125, -0.625, -0.625, 0.525, -0.0375] -> flip 4 only
    w.grad = np.array([0.0, 0.0, -1.0, 1.0, 1.0, 0.0])
    opt.step()
    np.testing.assert_allclose(opt.state[w]["momentum"],
                               [0.125, -0.125, -0.625, 0.625, 0.525, -0.0375])
    assert w.data.tolist() == [-1, 1, 1, -1, -1, 1]
    assert opt.last_flip_ratio == {0: pytest.approx(1 / 6)}


def test_larq_default_threshold_and_gamma():
    # gamma = 1e-4: after one step m = 1e-4 g; flips need w * 1e-4 g > 1e-8, i.e. w g > 1e-4
    w = binary(1, 1, -1, -1)
    opt = Bop([w])
    w.grad = np.array([2e-4, 5e-5, -2e-4, 2e-4])
    opt.step()
    assert w.data.tolist() == [-1, 1, 1, -1]


def test_named_parameters_key_the_flip_ratio_and_missing_grads_are_skipped():
    a, b, c = binary(1, 1, 1, 1), binary(-1, -1), binary(1.0)
    opt = Bop([("conv.weight", a), ("fc.weight", b), ("skip", c)], gamma=1.0, threshold=0.0)
    a.grad = np.array([1.0, -1.0, 1.0, -1.0])       # w g > 0 at 0 and 2
    b.grad = np.array([-1.0, -1.0])                  # both flip
    opt.step()
    assert opt.last_flip_ratio == {"conv.weight": 0.5, "fc.weight": 1.0}
    assert c not in opt.state and c.data.tolist() == [1.0]
    assert opt.total_flip_ratio == pytest.approx(4 / 6)
    opt.zero_grad()
    assert opt.total_flip_ratio == pytest.approx(4 / 6)   # describes the last step, not the grads


def test_float32_flip():
    w = binary(1, -1, dtype=np.float32)
    opt = Bop([w], gamma=1.0, threshold=0.0)
    w.grad = np.array([1.0, 1.0], dtype=np.float32)
    opt.step()
    assert w.data.tolist() == [-1.0, -1.0] and w.data.dtype == np.float32


def test_rejects_non_binary_parameters():
    real = Parameter(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match=r"Bop only trains binary weights, but parameter #1 "
                                          r"\(shape \(4, 3\)\) is not marked binary=True"):
        Bop([binary(1.0), real])
    with pytest.raises(ConfigError, match=r"parameter 'bn.weight' \(shape \(4, 3\)\)"):
        Bop([("bn.weight", real)])
    with pytest.raises(ConfigError, match="Bop only trains binary weights"):
        Bop([Tensor(np.ones(2), requires_grad=True)])


@pytest.mark.parametrize("kw, message", [
    ({"threshold": -1.0}, "Bop threshold must be >= 0"),
    ({"gamma": 1.5}, r"Bop gamma must be in \[0, 1\]"),
])
def test_bad_bop_hyperparameters(kw, message):
    with pytest.raises(ConfigError, match=message):
        Bop([binary(1.0)], **kw)


def test_bop_state_round_trip():
    def make():
        w = binary(1, -1, 1, -1, 1)
        return w, Bop([w], gamma=0.3, threshold=0.05)

    grads = [np.array(g) for g in ([0.2, -0.1, 0.3, 0.2, -0.4], [0.1, 0.1, 0.1, 0.1, 0.1],
                                   [0.3, -0.3, 0.0, 0.2, 0.2], [0.5, 0.5, -0.5, -0.5, 0.5])]
    w, opt = make()
    for g in grads[:2]:
        w.grad = g
        opt.step()
    saved_w, state = w.data.copy(), opt.state_dict()
    for g in grads[2:]:
        w.grad = g
        opt.step()
    w2, opt2 = make()
    w2.data[...] = saved_w
    opt2.load_state_dict(state)
    for g in grads[2:]:
        w2.grad = g
        opt2.step()
    np.testing.assert_array_equal(w.data, w2.data)
    np.testing.assert_array_equal(opt.state[w]["momentum"], opt2.state[w2]["momentum"])


# -- flip_ratio -------------------------------------------------------------------------------


def test_flip_ratio_counts_sign_changes_with_sign0_plus_one():
    before = np.array([0.0, 1.0, -1.0, 2.0])
    after = np.array([-1e-3, 1.0, 1.0, 3.0])          # 0 (+1) -> -, and -1 -> +1
    assert flip_ratio(before, after) == 0.5
    assert flip_ratio(Tensor(before), Tensor(before)) == 0.0
    assert flip_ratio(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ShapeError, match=r"shapes \(4,\) and \(2,\)"):
        flip_ratio(before, np.zeros(2))


def test_flip_ratio_of_a_latent_weight_optimizer():
    w = Parameter(np.array([0.05, -0.05, 1.0]), binary=True)
    opt = SGD([w], lr=0.1)
    before = w.data.copy()
    w.grad = np.array([1.0, 1.0, 1.0])                 # -> [-0.05, -0.15, 0.9]
    opt.step()
    assert flip_ratio(before, w.data) == pytest.approx(1 / 3)
