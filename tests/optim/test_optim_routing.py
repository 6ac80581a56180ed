"""Routed / CaseOptimizer / bop_with (one optimizer per parameter) and make_optimizer."""

import json

import numpy as np
import pytest

from tinybnn.errors import CheckpointError, ConfigError
from tinybnn.nn import Module, Parameter
from tinybnn.optim import (SGD, Adam, AdamW, Bop, CaseOptimizer, CosineWarmup, Routed, bop_with,
                           flatten_state, make_optimizer, optimizer_names, unflatten_state)


class TinyBNN(Module):
    """One binary weight matrix and two real-valued parameters."""

    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((3, 4)).astype(np.float32), binary=True)
        self.scale = Parameter(np.ones(3, dtype=np.float32))
        self.bias = Parameter(np.zeros(3, dtype=np.float32))


def set_grads(model, step):
    rng = np.random.default_rng(50 + step)
    for p in model.parameters():
        p.grad = rng.standard_normal(p.shape).astype(np.float32)


# -- Routed -----------------------------------------------------------------------------------


def test_routed_steps_and_zeroes_every_optimizer():
    w = Parameter(np.array([1.0, -1.0]), binary=True)
    b = Parameter(np.array([0.5]))
    opt = Routed([Bop([w], gamma=1.0, threshold=0.0), SGD([b], lr=0.1)])
    w.grad, b.grad = np.array([1.0, 1.0]), np.array([2.0])
    opt.step()
    assert w.data.tolist() == [-1.0, -1.0]
    np.testing.assert_allclose(b.data, [0.3])
    assert len(opt.param_groups) == 2 and "lr" not in opt.param_groups[0]
    assert opt.last_flip_ratio == {0: 0.5}
    assert set(map(id, opt.state)) == {id(w), id(b)}
    opt.zero_grad()
    assert w.grad is None and b.grad is None


def test_two_optimizers_claiming_one_parameter_is_an_error():
    w = Parameter(np.ones((2, 5)), binary=True)
    b = Parameter(np.zeros(7))
    with pytest.raises(ConfigError, match=r"parameter #0 \(shape \(2, 5\)\) of optimizer 1 "
                                          r"\(SGD\) is also claimed by optimizer 0 \(Bop\)"):
        Routed([Bop([w]), SGD([w, b], lr=0.1)])


def test_routed_checks_every_parameter_is_handled():
    model = TinyBNN()
    with pytest.raises(ConfigError, match=r"parameter 'bias' \(shape \(3,\)\) is handled by no "
                                          r"optimizer"):
        Routed([Bop([model.weight]), Adam([model.scale])], params=model)
    Routed([Bop([model.weight]), Adam([model.scale, model.bias])], params=model)


def test_routed_state_round_trip_and_type_check(tmp_path):
    def make(seed):
        model = TinyBNN(seed)
        return model, bop_with(model, other="adam", lr=0.01, gamma=0.5, threshold=0.01)

    model, opt = make(0)
    for s in range(3):
        set_grads(model, s)
        opt.step()
    saved = {k: v.copy() for k, v in model.state_dict().items()}
    arrays, meta = flatten_state(opt.state_dict())
    meta = json.loads(json.dumps(meta))
    for s in range(3, 6):
        set_grads(model, s)
        opt.step()

    model2, opt2 = make(1)
    model2.load_state_dict(saved)
    opt2.load_state_dict(unflatten_state(arrays, meta))
    for s in range(3, 6):
        set_grads(model2, s)
        opt2.step()
    for (name, a), (_, b) in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)

    sgd_version = bop_with(TinyBNN(), other="sgd", lr=0.1)
    with pytest.raises(CheckpointError, match=r"saved from \['Bop', 'Adam'\], but this routed "
                                              r"optimizer is \['Bop', 'SGD'\]"):
        sgd_version.load_state_dict(opt.state_dict())


def test_schedule_over_routed_leaves_bop_alone():
    model = TinyBNN()
    opt = bop_with(model, lr=0.1)
    sched = CosineWarmup(opt, total_steps=4, warmup_steps=1)
    assert sched.get_last_lr() == [pytest.approx(0.05)]             # warm-up: 0.1 * 1/2
    assert "lr" not in opt.optimizers[0].param_groups[0]
    gamma_sched = CosineWarmup(opt, total_steps=2, key="gamma")    # decays Bop's gamma
    gamma_sched.step()
    assert opt.optimizers[0].param_groups[0]["gamma"] == pytest.approx(0.5e-4)


# -- CaseOptimizer ----------------------------------------------------------------------------


def test_case_optimizer_routes_by_predicate():
    model = TinyBNN()
    opt = CaseOptimizer(model, (lambda p: p.binary, lambda ps: Bop(ps)),
                        default=lambda ps: Adam(ps, lr=1e-3))
    bop, adam = opt.optimizers
    assert isinstance(bop, Bop) and isinstance(adam, Adam)
    assert bop.param_groups[0]["param_names"] == ["weight"]
    assert adam.param_groups[0]["param_names"] == ["scale", "bias"]


def test_case_optimizer_overlapping_predicates():
    model = TinyBNN()
    with pytest.raises(ConfigError, match=r"parameter 'weight' \(shape \(3, 4\)\) is claimed by "
                                          r"cases \[0, 1\]"):
        CaseOptimizer(model, (lambda p: p.binary, Bop),
                      (lambda p: p.ndim == 2, lambda ps: SGD(ps, lr=0.1)),
                      default=lambda ps: Adam(ps))


def test_case_optimizer_unclaimed_without_default():
    model = TinyBNN()
    with pytest.raises(ConfigError, match=r"parameter 'scale' \(shape \(3,\)\) is claimed by no "
                                          r"case and there is no default"):
        CaseOptimizer(model, (lambda p: p.binary, Bop))


# -- bop_with ---------------------------------------------------------------------------------


def test_bop_with_splits_binary_and_real():
    model = TinyBNN()
    opt = bop_with(model, other="sgd", lr=0.05, gamma=1e-3, threshold=1e-6, weight_decay=1e-4)
    bop, sgd = opt.optimizers
    assert [p for p in bop.param_groups[0]["params"]] == [model.weight]
    assert bop.param_groups[0]["gamma"] == 1e-3 and bop.param_groups[0]["threshold"] == 1e-6
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["lr"] == 0.05
    assert sgd.param_groups[0]["weight_decay"] == 1e-4
    assert set(np.unique(model.weight.data)) <= {-1.0, 1.0}
    set_grads(model, 0)
    opt.step()
    assert list(opt.last_flip_ratio) == ["weight"]


def test_bop_with_all_binary_and_none_binary():
    w = Parameter(np.ones(3), binary=True)
    assert len(bop_with([w]).optimizers) == 1
    with pytest.raises(ConfigError, match="no parameter is marked binary=True"):
        bop_with([Parameter(np.ones(3))])
    with pytest.raises(ConfigError, match="'rmsprop' is not one of 'adam', 'adamw', 'sgd'"):
        bop_with([w], other="rmsprop")


# -- make_optimizer ---------------------------------------------------------------------------


def test_make_optimizer_names():
    model = TinyBNN()
    assert optimizer_names() == ["adam", "adamw", "bop", "sgd"]
    sgd = make_optimizer("sgd", model.parameters(), lr=0.1)
    assert isinstance(sgd, SGD) and sgd.param_groups[0]["momentum"] == 0.9
    assert make_optimizer("SGD", model.parameters(), 0.1, momentum=0.0).defaults["momentum"] == 0
    adam = make_optimizer("adam", model, lr=1e-3, weight_decay=5e-4, amsgrad=True)
    assert isinstance(adam, Adam) and adam.param_groups[0]["amsgrad"]
    assert adam.param_groups[0]["param_names"] == ["weight", "scale", "bias"]
    adamw = make_optimizer("adamw", model.parameters(), lr=1e-3)
    assert isinstance(adamw, AdamW) and adamw.defaults["weight_decay"] == 1e-2
    assert make_optimizer("adamw", model.parameters(), 1e-3, weight_decay=0.0).defaults[
        "weight_decay"] == 0.0
    bop = make_optimizer("bop", model, lr=1e-3, gamma=1e-3)
    assert isinstance(bop, Routed) and [type(o) for o in bop.optimizers] == [Bop, Adam]
    assert bop.optimizers[0].param_groups[0]["gamma"] == 1e-3


def test_make_optimizer_errors():
    model = TinyBNN()
    with pytest.raises(ConfigError, match="unknown optimizer 'lamb'; choose one of adam, adamw, "
                                          "bop, sgd"):
        make_optimizer("lamb", model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match=r"optimizer 'adam' does not take option\(s\) "
                                          r"\['momentum'\]"):
        make_optimizer("adam", model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ConfigError, match=r"optimizer 'adam' does not take option\(s\) "
                                          r"\['momentum'\]"):
        make_optimizer("bop", model, lr=0.1, momentum=0.9)     # Adam gets the other options
    with pytest.raises(ConfigError, match="learning rate must be >= 0"):
        make_optimizer("sgd", model.parameters(), lr=-1.0)
