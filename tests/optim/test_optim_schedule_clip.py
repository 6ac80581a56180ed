"""Learning-rate schedules against their formulas, and clip_grad_norm_ against numpy norms."""

import math

import numpy as np
import pytest

from tinybnn.errors import CheckpointError, ConfigError
from tinybnn.nn import Parameter
from tinybnn.optim import SGD, CosineWarmup, LinearDecay, StepLR, clip_grad_norm_


def sgd(*lrs):
    groups = [{"params": [Parameter(np.zeros(1))], "lr": lr} for lr in lrs]
    return SGD(groups, lr=lrs[0])


def trace(sched, steps):
    """lr of the first group at t = 0, 1, ..., steps."""
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


# -- CosineWarmup: t < W: base (t+1)/(W+1);  t >= W: min + (base-min)(1+cos(pi p))/2,
#                  p = min(1, (t-W)/(T-W))


def test_cosine_warmup_values():
    lrs = trace(CosineWarmup(sgd(1.0), total_steps=10, warmup_steps=4, min_lr=0.1), 12)
    assert lrs[0] == pytest.approx(0.2)            # 1/5: near zero but not zero
    assert lrs[1] == pytest.approx(0.4)
    assert lrs[3] == pytest.approx(0.8)
    assert lrs[4] == pytest.approx(1.0)            # end of warm-up: the base value
    assert lrs[5] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 6)) / 2)
    assert lrs[7] == pytest.approx(0.55)           # half way: p = 3/6
    assert lrs[10] == pytest.approx(0.1)           # cosine end value = min_lr
    assert lrs[12] == pytest.approx(0.1)           # and it stays there
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_cosine_without_warmup_and_several_groups():
    opt = sgd(0.4, 0.1)
    sched = CosineWarmup(opt, total_steps=4)
    assert sched.get_last_lr() == [0.4, 0.1]       # t = 0: the base values
    sched.step()                                   # p = 1/4: factor (1 + cos(pi/4))/2
    factor = (1 + math.cos(math.pi / 4)) / 2
    assert sched.get_last_lr() == [pytest.approx(0.4 * factor), pytest.approx(0.1 * factor)]
    assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
    for _ in range(3):
        sched.step()
    assert sched.get_last_lr() == [pytest.approx(0.0, abs=1e-15)] * 2


def test_warmup_equal_to_total():
    lrs = trace(CosineWarmup(sgd(1.0), total_steps=2, warmup_steps=2, min_lr=0.0), 3)
    assert lrs == [pytest.approx(v) for v in (1 / 3, 2 / 3, 0.0, 0.0)]


def test_the_optimizer_uses_the_scheduled_lr():
    p = Parameter(np.array([1.0]))
    opt = SGD([p], lr=1.0)
    CosineWarmup(opt, total_steps=10, warmup_steps=3)   # t = 0: lr = 1/4
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.75])


# -- StepLR: base gamma^floor(t / s) ;  LinearDecay: base (1 - (1 - f) min(t, T)/T)


def test_step_lr():
    lrs = trace(StepLR(sgd(1.0), step_size=3, gamma=0.1), 7)
    assert lrs == [pytest.approx(v) for v in (1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01)]


def test_linear_decay():
    lrs = trace(LinearDecay(sgd(1.0), total_steps=4, end_factor=0.2), 6)
    assert lrs == [pytest.approx(v) for v in (1.0, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2)]


def test_schedule_state_round_trip():
    opt = sgd(0.5, 0.05)
    sched = CosineWarmup(opt, total_steps=20, warmup_steps=2)
    for _ in range(7):
        sched.step()
    state = sched.state_dict()
    assert state == {"last_step": 7, "base_lrs": [0.5, 0.05], "key": "lr"}

    resumed_opt = sgd(0.5, 0.05)
    resumed_opt.param_groups[0]["lr"] = sched.get_last_lr()[0]   # as restored by the optimizer
    resumed = CosineWarmup(resumed_opt, total_steps=20, warmup_steps=2)
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == sched.get_last_lr()
    for _ in range(5):
        sched.step()
        resumed.step()
        assert resumed.get_last_lr() == sched.get_last_lr()
    with pytest.raises(CheckpointError, match="schedule state has 2 parameter groups, the "
                                              "optimizer has 1"):
        CosineWarmup(sgd(0.1), total_steps=20).load_state_dict(state)


@pytest.mark.parametrize("make, message", [
    (lambda o: CosineWarmup(o, total_steps=5, warmup_steps=6),
     r"warmup_steps \(6\) is longer than total_steps \(5\)"),
    (lambda o: CosineWarmup(o, total_steps=0), "total_steps must be a positive integer, got 0"),
    (lambda o: CosineWarmup(o, total_steps=5, min_lr=-1.0), "min_lr must be >= 0"),
    (lambda o: StepLR(o, step_size=2.5), "step_size must be a positive integer"),
    (lambda o: LinearDecay(o, total_steps=3, end_factor=2.0), r"end_factor must be in \[0, 1\]"),
    (lambda o: StepLR(o, step_size=2, key="gamma"), "no parameter group of SGD has a 'gamma'"),
])
def test_schedule_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make(sgd(0.1))


# -- clip_grad_norm_ --------------------------------------------------------------------------


def _params_with_grads():
    rng = np.random.default_rng(3)
    ps = [Parameter(np.zeros((3, 4), np.float32)), Parameter(np.zeros(5, np.float32)),
          Parameter(np.zeros(2, np.float32))]
    ps[0].grad = rng.standard_normal((3, 4)).astype(np.float32)
    ps[1].grad = rng.standard_normal(5).astype(np.float32)      # ps[2] has no gradient
    return ps


def test_clip_grad_norm_global_l2():
    ps = _params_with_grads()
    flat = np.concatenate([ps[0].grad.ravel(), ps[1].grad.ravel()]).astype(np.float64)
    expected = np.linalg.norm(flat)
    before = [p.grad.copy() for p in ps[:2]]
    total = clip_grad_norm_(ps, max_norm=expected / 2)
    assert total == pytest.approx(expected, rel=1e-6)
    coef = (expected / 2) / (expected + 1e-6)
    for p, g in zip(ps[:2], before):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-6)
    after = np.linalg.norm(np.concatenate([p.grad.ravel() for p in ps[:2]]).astype(np.float64))
    assert after == pytest.approx(expected / 2, rel=1e-5)
    assert ps[2].grad is None


def test_clip_grad_norm_leaves_small_gradients_alone():
    ps = _params_with_grads()
    before = [p.grad.copy() for p in ps[:2]]
    total = clip_grad_norm_(ps, max_norm=1e3)
    for p, g in zip(ps[:2], before):
        np.testing.assert_array_equal(p.grad, g)
    assert total < 1e3


def test_clip_grad_norm_inf_and_single_tensor():
    ps = _params_with_grads()
    expected = max(np.abs(ps[0].grad).max(), np.abs(ps[1].grad).max())
    assert clip_grad_norm_(ps, 1e3, norm_type=float("inf")) == pytest.approx(expected)
    p = Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [3.0 / (5 + 1e-6), 4.0 / (5 + 1e-6)])
    assert clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0
    with pytest.raises(ConfigError, match="max_norm must be >= 0"):
        clip_grad_norm_(ps, -1.0)


def test_milestone_lr_multiplies_by_gamma_at_each_milestone():
    import numpy as np

    from tinybnn.nn import Parameter
    from tinybnn.optim import SGD, MilestoneLR

    opt = SGD([Parameter(np.zeros(2, np.float32))], lr=0.1)
    schedule = MilestoneLR(opt, milestones=[3, 1], gamma=0.5)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        schedule.step()
    assert seen == pytest.approx([0.1, 0.05, 0.05, 0.025])
