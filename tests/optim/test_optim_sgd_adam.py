"""SGD, Adam, AdamW and AMSGrad against steps worked out by hand from their formulas.

Parameters are float64 here so that the hand arithmetic can be compared tightly; one test checks
that float32 parameters stay float32.
"""

import math

import numpy as np

from tinybnn.nn import Parameter
from tinybnn.optim import SGD, Adam, AdamW

EPS = 1e-8


def param(*values):
    return Parameter(np.array(values, dtype=np.float64))


def run(opt, p, grads):
    """Step ``opt`` once per gradient in ``grads``; return p.data after every step."""
    out = []
    for g in grads:
        p.grad = np.array(g, dtype=np.float64)
        opt.step()
        out.append(p.data.copy())
    return out


G1, G2, G3 = [0.5, 1.0], [-0.5, 2.0], [0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# SGD:  d = g + wd p ;  b_1 = d, b_t = mu b + (1 - damp) d ;  d = d + mu b (Nesterov) or b ;
#       p -= lr d
# ---------------------------------------------------------------------------------------------


def test_sgd_plain():
    p = param(1.0, -2.0)
    s1, s2 = run(SGD([p], lr=0.1), p, [G1, G2])
    np.testing.assert_allclose(s1, [1.0 - 0.05, -2.0 - 0.1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(s2, [0.95 + 0.05, -2.1 - 0.2], rtol=0, atol=1e-15)


def test_sgd_momentum_buffer_starts_at_first_gradient():
    p = param(1.0, -2.0)
    opt = SGD([p], lr=0.1, momentum=0.9)
    s1, s2, s3 = run(opt, p, [G1, G2, G3])
    # step 1: b = g1 = [0.5, 1]                    p = [1 - 0.05, -2 - 0.1]    = [0.95, -2.1]
    np.testing.assert_allclose(s1, [0.95, -2.1], atol=1e-15)
    # step 2: b = 0.9 [0.5, 1] + [-0.5, 2] = [-0.05, 2.9]       p = [0.955, -2.39]
    np.testing.assert_allclose(s2, [0.955, -2.39], atol=1e-15)
    # step 3: b = 0.9 [-0.05, 2.9] + 0 = [-0.045, 2.61]         p = [0.9595, -2.651]
    np.testing.assert_allclose(s3, [0.9595, -2.651], atol=1e-14)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [-0.045, 2.61], atol=1e-15)


def test_sgd_dampening_not_applied_on_first_step():
    p = param(1.0, -2.0)
    s1, s2 = run(SGD([p], lr=0.1, momentum=0.9, dampening=0.5), p, [G1, G2])
    # step 1: b = g1 (no dampening)                p = [0.95, -2.1]
    np.testing.assert_allclose(s1, [0.95, -2.1], atol=1e-15)
    # step 2: b = 0.9 [0.5, 1] + 0.5 [-0.5, 2] = [0.2, 1.9]     p = [0.93, -2.29]
    np.testing.assert_allclose(s2, [0.93, -2.29], atol=1e-15)


def test_sgd_nesterov():
    p = param(1.0, -2.0)
    s1, s2 = run(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [G1, G2])
    # step 1: b = [0.5, 1];  d = g + 0.9 b = [0.95, 1.9]          p = [0.905, -2.19]
    np.testing.assert_allclose(s1, [0.905, -2.19], atol=1e-15)
    # step 2: b = [-0.05, 2.9];  d = [-0.5 - 0.045, 2 + 2.61]    p = [0.9595, -2.651]
    np.testing.assert_allclose(s2, [0.9595, -2.651], atol=1e-14)


def test_sgd_weight_decay():
    p = param(1.0, -2.0)
    s1, s2 = run(SGD([p], lr=0.1, weight_decay=0.1), p, [G1, G2])
    # step 1: d = [0.5 + 0.1, 1 - 0.2] = [0.6, 0.8]              p = [0.94, -2.08]
    np.testing.assert_allclose(s1, [0.94, -2.08], atol=1e-15)
    # step 2: d = [-0.5 + 0.094, 2 - 0.208] = [-0.406, 1.792]    p = [0.9806, -2.2592]
    np.testing.assert_allclose(s2, [0.9806, -2.2592], atol=1e-14)


def test_sgd_weight_decay_enters_the_momentum_buffer():
    p = param(1.0, -2.0)
    s1, s2 = run(SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), p, [G1, G2])
    np.testing.assert_allclose(s1, [0.94, -2.08], atol=1e-15)
    # step 2: b = 0.9 [0.6, 0.8] + [-0.406, 1.792] = [0.134, 2.512]   p = [0.9266, -2.3312]
    np.testing.assert_allclose(s2, [0.9266, -2.3312], atol=1e-14)


def test_sgd_skips_parameters_without_gradient():
    p, q = param(1.0), param(3.0)
    opt = SGD([p, q], lr=0.1, momentum=0.9)
    p.grad = np.array([1.0])
    opt.step()
    assert q.data.tolist() == [3.0] and q not in opt.state
    np.testing.assert_allclose(p.data, [0.9])


def test_float32_parameters_stay_float32():
    for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
                 lambda ps: Adam(ps, amsgrad=True, weight_decay=0.01), lambda ps: AdamW(ps)):
        p = Parameter(np.ones(3, dtype=np.float32))
        opt = make([p])
        for _ in range(2):
            p.grad = np.full(3, 0.5, dtype=np.float32)
            opt.step()
        assert p.data.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_zero_grad():
    p = param(1.0, 2.0)
    p.grad = np.array([1.0, 1.0])
    opt = SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_step_closure_returns_loss():
    p = param(1.0)
    opt = SGD([p], lr=0.1)

    def closure():
        p.grad = np.array([2.0])
        return 42.0

    assert opt.step(closure) == 42.0
    np.testing.assert_allclose(p.data, [0.8])


# ---------------------------------------------------------------------------------------------
# Adam:  m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2 ;
#        p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
# ---------------------------------------------------------------------------------------------


def test_adam_two_steps_with_bias_correction():
    p = param(1.0, -1.0)
    opt = Adam([p], lr=0.1)
    s1, s2 = run(opt, p, [[0.5, -2.0], [1.0, 0.0]])
    # step 1: m = [0.05, -0.2], v = [0.00025, 0.004]; 1-b1 = 0.1, 1-b2 = 0.001
    #         sqrt(v)/sqrt(0.001) = [0.5, 2]; step size 0.1/0.1 = 1
    expected1 = [1.0 - 0.05 / (0.5 + EPS), -1.0 + 0.2 / (2.0 + EPS)]
    np.testing.assert_allclose(s1, expected1, rtol=1e-12)
    # step 2: m = 0.9 m + 0.1 g = [0.145, -0.18]; v = 0.999 v + 0.001 g^2 = [0.00124975, 0.003996]
    #         1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
    bc2 = math.sqrt(0.001999)
    expected2 = [expected1[0] - (0.1 / 0.19) * 0.145 / (math.sqrt(0.00124975) / bc2 + EPS),
                 expected1[1] - (0.1 / 0.19) * -0.18 / (math.sqrt(0.003996) / bc2 + EPS)]
    np.testing.assert_allclose(s2, expected2, rtol=1e-12)
    assert opt.state[p]["step"] == 2
    np.testing.assert_allclose(opt.state[p]["exp_avg"], [0.145, -0.18], rtol=1e-12)
    np.testing.assert_allclose(opt.state[p]["exp_avg_sq"], [0.00124975, 0.003996], rtol=1e-12)


def test_adam_l2_weight_decay_is_added_to_the_gradient():
    p = param(1.0)
    s1, s2 = run(Adam([p], lr=0.1, weight_decay=0.5), p, [[0.2], [0.2]])
    # step 1: g = 0.2 + 0.5*1 = 0.7; m = 0.07, v = 0.00049 -> corrected 0.7 and sqrt(0.49) = 0.7
    expected1 = 1.0 - 0.1 * 0.7 / (0.7 + EPS)
    np.testing.assert_allclose(s1, [expected1], rtol=1e-12)
    # step 2: g = 0.2 + 0.5*p1; m = 0.9*0.07 + 0.1 g; v = 0.999*0.00049 + 0.001 g^2
    g = 0.2 + 0.5 * expected1
    m, v = 0.9 * 0.07 + 0.1 * g, 0.999 * 0.00049 + 0.001 * g * g
    expected2 = expected1 - (0.1 / 0.19) * m / (math.sqrt(v) / math.sqrt(0.001999) + EPS)
    np.testing.assert_allclose(s2, [expected2], rtol=1e-12)


def test_adamw_decay_is_decoupled():
    p = param(1.0)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    s1, s2 = run(opt, p, [[0.2], [-0.2]])
    # step 1: p = 1 * (1 - 0.1*0.5) = 0.95, then Adam: m = 0.02, v = 0.00004 -> 0.2 / 0.2
    expected1 = 0.95 - 0.1 * 0.2 / (0.2 + EPS)
    np.testing.assert_allclose(s1, [expected1], rtol=1e-12)
    # step 2: p = p1 * 0.95; m = 0.018 - 0.02 = -0.002; v = 0.999*0.00004 + 0.001*0.04
    v = 0.999 * 0.00004 + 0.001 * 0.04
    expected2 = expected1 * 0.95 - (0.1 / 0.19) * -0.002 / (math.sqrt(v) / math.sqrt(0.001999)
                                                            + EPS)
    np.testing.assert_allclose(s2, [expected2], rtol=1e-12)
    # the moments saw the raw gradient only (no decay term in them)
    np.testing.assert_allclose(opt.state[p]["exp_avg"], [-0.002], rtol=1e-12)


def test_adamw_default_weight_decay():
    assert AdamW([param(1.0)]).defaults["weight_decay"] == 1e-2
    assert Adam([param(1.0)]).defaults["weight_decay"] == 0.0


def test_amsgrad_uses_running_max_of_second_moment():
    grads = [[1.0], [0.0], [0.0]]
    p, q = param(0.0), param(0.0)
    ams = Adam([p], lr=0.1, amsgrad=True)
    plain = Adam([q], lr=0.1)
    a1, a2, a3 = run(ams, p, grads)
    b1, b2, b3 = run(plain, q, grads)
    # step 1: m = 0.1, v = 0.001 = v_max; corrected: 1 / 1
    e1 = -0.1 / (1.0 + EPS)
    np.testing.assert_allclose([a1[0], b1[0]], [e1, e1], rtol=1e-12)
    # step 2: m = 0.09, v = 0.000999 < v_max = 0.001
    bc2 = math.sqrt(0.001999)
    e2_ams = e1 - (0.1 / 0.19) * 0.09 / (math.sqrt(0.001) / bc2 + EPS)
    e2_plain = e1 - (0.1 / 0.19) * 0.09 / (math.sqrt(0.000999) / bc2 + EPS)
    np.testing.assert_allclose(a2, [e2_ams], rtol=1e-12)
    np.testing.assert_allclose(b2, [e2_plain], rtol=1e-12)
    # step 3: m = 0.081, v = 0.000998001, v_max still 0.001; 1 - 0.9^3 = 0.271, 1-0.999^3
    bc1, bc2 = 1 - 0.9 ** 3, math.sqrt(1 - 0.999 ** 3)
    e3_ams = e2_ams - (0.1 / bc1) * 0.081 / (math.sqrt(0.001) / bc2 + EPS)
    np.testing.assert_allclose(a3, [e3_ams], rtol=1e-12)
    np.testing.assert_allclose(ams.state[p]["max_exp_avg_sq"], [0.001], rtol=1e-12)
    assert "max_exp_avg_sq" not in plain.state[q]
