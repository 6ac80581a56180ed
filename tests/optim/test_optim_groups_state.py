"""Parameter groups, configuration errors, and checkpoint round-trips of the Optimizer base."""

import json

import numpy as np
import pytest

from tinybnn.errors import CheckpointError, ConfigError
from tinybnn.nn import Linear, Parameter
from tinybnn.optim import SGD, Adam, AdamW, flatten_state, unflatten_state


def param(*values):
    return Parameter(np.array(values, dtype=np.float64))


# -- parameter groups ---------------------------------------------------------------------------


def test_groups_have_their_own_lr_and_weight_decay():
    a, b = param(1.0), param(2.0)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.01, "weight_decay": 0.5}],
              lr=0.1, momentum=0.0)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose(a.data, [1.0 - 0.1 * 1.0])                 # default lr
    np.testing.assert_allclose(b.data, [2.0 - 0.01 * (1.0 + 0.5 * 2.0)])  # own lr and L2
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[1]["momentum"] == 0.0                           # filled from defaults


def test_adam_groups():
    a, b = param(1.0), param(1.0)
    opt = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.2}])
    a.grad, b.grad = np.array([3.0]), np.array([3.0])
    opt.step()                                     # first Adam step moves by lr (sign of g)
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.8], rtol=1e-7)


def test_named_parameters_are_remembered():
    layer = Linear(3, 2)
    opt = SGD(layer.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["params"][0] is layer.weight


def test_add_param_group():
    a, b = param(1.0), param(2.0)
    opt = SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    with pytest.raises(ConfigError, match="appears in another parameter group"):
        opt.add_param_group({"params": [a]})


# -- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=-0.1), r"learning rate must be >= 0, got lr=-0.1"),
    (lambda p: SGD(p), r"SGD needs 'lr'"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.5), r"momentum must be >= 0"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), r"Nesterov momentum needs momentum > 0"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"Nesterov momentum needs .* dampening = 0"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), r"weight decay must be >= 0"),
    (lambda p: Adam(p, lr=-1.0), r"learning rate must be >= 0"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), r"beta1 must be in \[0, 1\), got betas\[0\]=1.0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), r"beta2 must be in \[0, 1\), got betas\[1\]=-0.1"),
    (lambda p: Adam(p, betas=0.9), r"betas must be a pair"),
    (lambda p: Adam(p, eps=-1e-8), r"eps must be >= 0"),
    (lambda p: AdamW(p, weight_decay=-0.1), r"weight decay must be >= 0"),
    (lambda p: Adam(p, lr="fast"), r"learning rate must be a number"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ConfigError, match=message):
        make([param(1.0)])


def test_bad_hyperparameter_in_a_group():
    with pytest.raises(ConfigError, match="learning rate must be >= 0"):
        SGD([{"params": [param(1.0)]}, {"params": [param(2.0)], "lr": -1}], lr=0.1)


def test_parameter_in_two_groups_is_an_error():
    a, b = param(1.0), Parameter(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match=r"parameter #2 \(shape \(2, 3\)\) appears in another "
                                          r"parameter group"):
        SGD([{"params": [a, b]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ConfigError, match="appears in the same group twice"):
        SGD([a, a], lr=0.1)
    with pytest.raises(ConfigError, match=r"parameter 'again' \(shape \(2, 3\)\) appears"):
        SGD([{"params": [("fc.w", b)]}, {"params": [("again", b)]}], lr=0.1)


def test_bad_params_argument():
    with pytest.raises(ConfigError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ConfigError, match="single tensor"):
        SGD(param(1.0), lr=0.1)
    with pytest.raises(ConfigError, match="got a Module"):
        SGD(Linear(2, 2), lr=0.1)
    with pytest.raises(ConfigError, match="can only optimize Tensors"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ConfigError, match="'params' entry"):
        SGD([{"lr": 0.1}], lr=0.1)


# -- checkpoints ------------------------------------------------------------------------------


def _setup(make, seed=0):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal((3, 2)).astype(np.float32)),
              Parameter(rng.standard_normal(4).astype(np.float32))]
    return params, make([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}])


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal((3, 2)).astype(np.float32),
            rng.standard_normal(4).astype(np.float32)]


def _steps(params, opt, steps):
    for s in steps:
        for p, g in zip(params, _grads(s)):
            p.grad = g
        opt.step()


def _through_npz_and_json(state, tmp_path):
    """Write a state dict as .npz + JSON and read it back, as the checkpoint code will."""
    arrays, meta = flatten_state(state, prefix="optimizer")
    np.savez(tmp_path / "opt.npz", **arrays)
    (tmp_path / "opt.json").write_text(json.dumps(meta))
    with np.load(tmp_path / "opt.npz") as npz:                   # allow_pickle stays False
        loaded = {k: npz[k] for k in npz.files}
    return unflatten_state(loaded, json.loads((tmp_path / "opt.json").read_text()))


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True, weight_decay=1e-3),
    lambda ps: AdamW(ps, lr=0.01, betas=(0.8, 0.99)),
])
def test_state_dict_round_trip_gives_identical_steps(make, tmp_path):
    params, opt = _setup(make)
    _steps(params, opt, range(3))
    saved_params = [p.data.copy() for p in params]
    state = _through_npz_and_json(opt.state_dict(), tmp_path)
    _steps(params, opt, range(3, 6))                             # the uninterrupted run

    fresh_params, fresh = _setup(make, seed=1)                  # other values, other defaults
    for p, saved in zip(fresh_params, saved_params):
        p.data[...] = saved
    fresh.param_groups[1]["lr"] = 123.0                          # restored from the checkpoint
    fresh.load_state_dict(state)
    _steps(fresh_params, fresh, range(3, 6))                     # the resumed run
    for a, b in zip(params, fresh_params):
        np.testing.assert_array_equal(a.data, b.data)
    assert fresh.param_groups[1]["lr"] == 0.05
    assert type(fresh.param_groups[0].get("betas", ())) is tuple


def test_state_dict_is_plain_and_copied():
    params, opt = _setup(lambda ps: Adam(ps))
    _steps(params, opt, range(2))
    state = opt.state_dict()
    assert sorted(state) == ["param_groups", "state"]
    assert state["param_groups"][1]["params"] == [1] and state["param_groups"][0]["params"] == [0]
    assert state["param_groups"][0]["betas"] == [0.9, 0.999]
    assert state["state"][0]["step"] == 2 and isinstance(state["state"][0]["step"], int)
    json.dumps(flatten_state(state)[1])                         # the metadata is JSON-able
    state["state"][0]["exp_avg"][...] = 99.0
    assert not np.any(opt.state[params[0]]["exp_avg"] == 99.0)


def test_flatten_state_paths():
    arrays, meta = flatten_state({"state": {0: {"m": np.ones(2), "step": 3}}}, prefix="opt")
    assert list(arrays) == ["opt.state.0.m"]
    assert meta == {"state": {"0": {"m": {"__array__": "opt.state.0.m"}, "step": 3}}}
    with pytest.raises(CheckpointError, match="missing the array 'opt.state.0.m'"):
        unflatten_state({}, meta)
    with pytest.raises(CheckpointError, match="cannot store a object"):
        flatten_state({"x": object()})


def test_load_state_dict_mismatches():
    params, opt = _setup(lambda ps: SGD(ps, lr=0.1, momentum=0.9))
    _steps(params, opt, range(1))
    state = opt.state_dict()
    other = SGD([Parameter(np.zeros((3, 2), np.float32))], lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match="has 2 parameter groups, this SGD has 1"):
        other.load_state_dict(state)
    wrong_shape = SGD([{"params": [Parameter(np.zeros((2, 3), np.float32))]},
                       {"params": [Parameter(np.zeros(4, np.float32))]}], lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match=r"'momentum_buffer' of parameter #0 \(shape "
                                              r"\(2, 3\)\) has shape \(3, 2\)"):
        wrong_shape.load_state_dict(state)
    with pytest.raises(CheckpointError, match="not a SGD state"):
        opt.load_state_dict({"weights": 1})
