"""The recipe registry: lookup, errors, immutability, and that every recipe builds its model."""

import dataclasses
import json

import numpy as np
import pytest

from tinybnn.errors import ConfigError
from tinybnn.models import available_models, make_model
from tinybnn.models.recipes import (AUGMENTATIONS, OPTIMIZERS, SCHEDULES, Recipe,
                                    available_recipes, get_recipe)
from tinybnn.quant import available as available_quantizers

REQUIRED = ["resnet20-irnet", "resnet20-recu", "resnet20-bireal", "resnet20-xnor",
            "resnet20-dorefa", "resnet20-bnn", "resnet20-fp"]


def test_required_recipes_are_registered():
    names = available_recipes()
    assert names == sorted(names)
    for name in REQUIRED:
        assert name in names


def test_get_recipe_returns_the_recipe():
    r = get_recipe("resnet20-irnet")
    assert isinstance(r, Recipe) and r.name == "resnet20-irnet"
    assert r.model == "resnet20" and r.model_options["variant"] == "w1a1"
    # IR-Net's CIFAR-10 setting (baselines digest)
    assert (r.optimizer, r.lr, r.weight_decay, r.batch_size, r.epochs, r.schedule) == \
        ("sgd", 0.1, 1e-4, 128, 400, "cosine")
    assert r.published_accuracy == 86.5


def test_recu_recipe_matches_the_paper_setting():
    r = get_recipe("resnet20-recu")
    assert (r.batch_size, r.epochs, r.weight_decay, r.warmup_epochs, r.schedule) == \
        (256, 600, 5e-4, 5, "cosine")
    assert r.published_accuracy == 87.4
    assert r.model_options["weight_quantizer"] == "recu_weight"


def test_published_accuracies_from_the_digests():
    expected = {"resnet20-fp": 92.1, "resnet20-irnet": 86.5, "resnet20-recu": 87.4,
                "resnet20-dorefa": 79.3, "resnet18-recu": 92.8, "vgg_small-xnor": 89.8}
    for name, acc in expected.items():
        assert get_recipe(name).published_accuracy == acc


@pytest.mark.parametrize("bad", ["resnet20-nope", "", None, 3])
def test_unknown_recipe_lists_the_names(bad):
    with pytest.raises(ConfigError) as info:
        get_recipe(bad)
    message = str(info.value)
    assert "unknown recipe" in message
    for name in REQUIRED:
        assert name in message


def test_recipes_are_read_only():
    r = get_recipe("resnet20-recu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    with pytest.raises(TypeError):
        r.model_options["variant"] = "fp"
    short = r.replace(epochs=10)
    assert short.epochs == 10 and get_recipe("resnet20-recu").epochs == 600


def test_bad_fields_are_rejected():
    r = get_recipe("resnet20-bnn")
    with pytest.raises(ConfigError, match="schedule"):
        r.replace(schedule="exponential")
    with pytest.raises(ConfigError, match="optimizer"):
        r.replace(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="augmentation"):
        r.replace(augment=("cutmix",))
    with pytest.raises(ConfigError, match="warmup"):
        r.replace(warmup_epochs=r.epochs)


@pytest.mark.parametrize("name", available_recipes())
def test_every_recipe_is_consistent(name):
    r = get_recipe(name)
    assert r.model in available_models()
    assert r.optimizer in OPTIMIZERS and r.schedule in SCHEDULES
    assert all(a in AUGMENTATIONS for a in r.augment)
    assert r.source
    for role in ("input_quantizer", "weight_quantizer"):
        q = r.model_options.get(role)
        q = q["name"] if isinstance(q, dict) else q
        assert q is None or q in available_quantizers(), f"{name}: unknown {role} {q!r}"
    if r.schedule == "step":
        assert r.milestones and all(0 < m < r.epochs for m in r.milestones)
    assert r.published_accuracy is None or 0 < r.published_accuracy < 100
    json.dumps(r.to_dict())  # plain data


@pytest.mark.parametrize("name", [n for n in available_recipes() if n.startswith("resnet20")]
                         + ["binary_cnn-digits"])
def test_recipe_models_build_and_run(name):
    r = get_recipe(name)
    shape = (1, 8, 8) if r.data == "digits" else (3, 32, 32)
    model = make_model(r.model, input_shape=shape, num_classes=10, rng=0, **r.model_options)
    from tinybnn import Tensor, no_grad

    with no_grad():
        out = model(Tensor(np.random.default_rng(0).standard_normal((2, *shape))
                           .astype(np.float32)))
    assert out.shape == (2, 10)
    assert np.all(np.isfinite(out.data))


def test_surge_recipe_is_recu_plus_surge_and_reaches_the_cli_settings():
    from tinybnn.cli import _train_settings, build_parser

    surge, recu = get_recipe("resnet20-recu-surge"), get_recipe("resnet20-recu")
    assert surge.surge == 0.01 and recu.surge is None
    assert surge.published_accuracy == 88.0
    assert dict(surge.model_options) == dict(recu.model_options)
    args = build_parser().parse_args(["train", "--recipe", "resnet20-recu-surge"])
    settings, _ = _train_settings(args)
    assert settings["surge"] == 0.01
    args = build_parser().parse_args(["train", "--recipe", "resnet20-recu-surge", "--surge", "0.001"])
    assert _train_settings(args)[0]["surge"] == 0.001
