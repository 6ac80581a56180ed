"""The quantizer registry: every name builds and runs, the listing, errors, sign(0) = +1."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import quant
from tinybnn.errors import ConfigError

EXPECTED = {
    "activation": ["identity_ste", "ste_sign", "approx_sign", "swish_sign", "ede", "recu_act",
                   "rsign", "heaviside", "dorefa_act", "elastic", "lsq", "slste", "plste",
                   "dlste"],
    "weight": ["xnor", "magnitude_aware", "irnet_weight", "recu_weight", "progressive", "lsq",
               "dorefa_weight", "ste_sign", "identity_ste", "ede", "slste", "plste", "dlste"],
}

# 1-bit quantizers whose output at an exact 0 must be the positive level
SIGN_LIKE = ["identity_ste", "ste_sign", "approx_sign", "swish_sign", "ede", "recu_act", "rsign",
             "heaviside", "elastic", "xnor", "magnitude_aware", "irnet_weight", "recu_weight",
             "progressive", "dorefa_weight", "slste", "plste", "dlste"]


def test_expected_names_are_registered_with_their_kinds():
    for kind, names in EXPECTED.items():
        assert set(names) <= set(quant.available(kind)), kind


def build(name, channels, axis, **options):
    q = quant.make_quantizer(name, **options)
    q.build(channels, axis)
    return q


@pytest.mark.parametrize("name", quant.available())
def test_every_name_builds_runs_forward_and_backward(name):
    rng = np.random.default_rng(0)
    x = tb.tensor(rng.standard_normal((2, 4, 3, 3)), requires_grad=True)
    axis = 0 if name in quant.available("weight") and name not in quant.available("activation") \
        else 1
    q = build(name, x.shape[axis], axis)
    assert isinstance(q, quant.Quantizer) and q.registry_name == name
    y = q(x)
    assert y.shape == x.shape
    y.backward(rng.standard_normal(y.shape))
    assert x.grad is not None and np.isfinite(x.grad).all()
    for p in q.parameters():
        assert p.grad is not None and np.isfinite(p.grad).all(), name


def test_unknown_name_lists_the_choices():
    with pytest.raises(ConfigError) as info:
        quant.make_quantizer("sgn")
    message = str(info.value)
    assert "sgn" in message
    for name in ("ste_sign", "approx_sign", "xnor", "recu_weight", "lsq"):
        assert name in message


def test_describe_lists_every_name_with_a_summary():
    rows = quant.describe()
    assert [r[0] for r in rows] == quant.available()
    for name, kind, summary in rows:
        assert kind in ("activation", "weight", "both")
        assert summary and "\n" not in summary, name
    assert {r[0] for r in quant.describe("weight")} == set(quant.available("weight"))


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ConfigError, match="already registered"):
        quant.register("xnor")(type("Other", (quant.Quantizer,), {}))


@pytest.mark.parametrize("name", SIGN_LIKE)
def test_sign_of_zero_is_the_positive_level(name):
    # rows symmetric around 0 with a 0 in the middle: the 0 survives every standardization
    rng = np.random.default_rng(1)
    a = rng.integers(1, 9, (4, 3)) / 8  # dyadic values: the row sums are exactly 0
    w = np.concatenate([-a, np.zeros((4, 1)), a[:, ::-1]], axis=1)  # (4, 7), w[:, 3] == 0
    is_weight = name in quant.available("weight") and name not in quant.available("activation")
    q = build(name, 4, 0) if is_weight else build(name, 7, 1)
    if name == "progressive":
        q.set_progress(200, 200)  # past the soft phase: the exact sign
    y = q(tb.tensor(w)).data
    assert (y[:, 3] > 0).all(), name
    assert set(np.unique(np.sign(y))) <= {-1.0, 0.0, 1.0}
    if q.levels == "pm1":
        assert (y != 0).all(), name
