"""Training recipes: the papers' CIFAR-10 settings as named, read-only data objects.

A :class:`Recipe` says *what* to train and *how*: the model (a name from the model registry and its
options, e.g. which estimator binarizes the activations), the optimizer and its hyperparameters,
the learning-rate schedule, the data set and augmentation, and the accuracy the paper reports for
that setting. It does nothing by itself; the training loop (``tinybnn train --recipe NAME``) reads
the fields. Look them up by name::

    >>> from tinybnn.models.recipes import get_recipe, available_recipes
    >>> r = get_recipe("resnet20-irnet")
    >>> r.model, dict(r.model_options)
    ('resnet20', {'variant': 'w1a1', 'input_quantizer': 'ede', 'weight_quantizer': 'irnet_weight'})
    >>> r.optimizer, r.lr, r.epochs, r.published_accuracy
    ('sgd', 0.1, 400, 86.5)

To try a variation (fewer epochs, another batch size) derive a new recipe; the registered one is
never modified::

    short = get_recipe("resnet20-recu").replace(epochs=20)

Where the numbers come from
---------------------------
Every CIFAR-10 ResNet-20 W1A1 recipe uses the Bi-Real-style ResNet-20 of IR-Net and ReCU (every
binary 3×3 convolution has its own shortcut; first convolution and classifier in full precision;
see :func:`tinybnn.models.resnet.resnet20`). The hyperparameters are the ones each paper (or its
released code) reports for CIFAR-10; where a paper reports no CIFAR-10 setting, the recipe uses
IR-Net's (the setting most later CIFAR-10 BNN papers follow) and says so in ``source``. Published
accuracies are Top-1 in percent, from Table 1 of SURGE (which collects IR-Net's, ReCU's and
DoReFa's CIFAR-10 numbers) unless ``source`` says otherwise; ``None`` means none of the project's
sources reports that exact configuration, so there is nothing to compare against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import ConfigError

#: learning-rate schedules a recipe may name (what the training loop must implement)
SCHEDULES = ("constant", "cosine", "step")
#: optimizers a recipe may name
OPTIMIZERS = ("sgd", "adam", "adamw")
#: augmentations a recipe may name: ``random_crop`` cuts a window of the image's own size at a
#: random place of the image padded by ``crop_padding`` zero pixels on each side
#: (``RandomCrop(H, padding=crop_padding)``), ``horizontal_flip`` mirrors each image with
#: probability ½. With ``crop_padding = 4`` on 32×32 images this is the standard CIFAR
#: augmentation of He et al. 2016, used by every paper below.
AUGMENTATIONS = ("random_crop", "horizontal_flip")


def _frozen_mapping(options: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(options or {}))


@dataclass(frozen=True)
class Recipe:
    """One training setting, as a plain read-only record.

    Fields:
        name: the registry name, ``"<model>-<method>"`` (e.g. ``"resnet20-recu"``).
        model: the model's registry name (:func:`tinybnn.models.make_model`).
        model_options: keyword options for the model builder (``variant``, ``input_quantizer``,
            ``weight_quantizer``, ``scale``, ...), a read-only mapping; pass ``dict(...)`` of it
            to the builder. A quantizer is a registry name, or a dict ``{"name": ..., option:
            value}`` for a quantizer with options (``{"name": "dorefa_act", "bits": 1}``).
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: the peak learning rate (reached at the end of the warm-up).
        weight_decay: the L2 coefficient (coupled for SGD/Adam, decoupled for AdamW), applied to
            every parameter.
        momentum: SGD's momentum μ (for Adam/AdamW: β1).
        batch_size: images per training step.
        epochs: passes over the training set, warm-up included.
        schedule: the learning-rate schedule after the warm-up: ``"cosine"`` (from ``lr`` to 0 at
            the last epoch), ``"step"`` (``lr`` × ``gamma`` at each epoch in ``milestones``) or
            ``"constant"``.
        warmup_epochs: epochs of linear warm-up from 0 to ``lr`` before the schedule (0: none).
        data: the data set's registry name (:func:`tinybnn.data.load_dataset`).
        augment: training-time augmentations, in order, names from :data:`AUGMENTATIONS`; they
            are applied before the normalization.
        published_accuracy: Top-1 test accuracy (%) the source reports for this setting, or
            ``None`` when no source reports it.
        source: the paper (and table) the setting and the accuracy come from, and any choice
            tinybnn had to make.
        milestones: epochs at which the ``"step"`` schedule multiplies the learning rate by
            ``gamma`` (empty for the other schedules).
        gamma: the ``"step"`` schedule's factor.
        nesterov: Nesterov momentum (SGD only).
        crop_padding: zero pixels added on each side before ``random_crop`` (4 for CIFAR).
        surge: SURGE's adaptive-scaler rate η (``tinybnn.surge.wrap(model, eta=surge)``), or
            ``None`` for no SURGE.
    """

    name: str
    model: str
    model_options: Mapping[str, Any]
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    batch_size: int
    epochs: int
    schedule: str
    warmup_epochs: int
    data: str
    augment: tuple[str, ...]
    published_accuracy: float | None
    source: str
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    nesterov: bool = False
    crop_padding: int = 4
    surge: float | None = None

    def __post_init__(self):
        # A frozen dataclass may still set its fields here, through object.__setattr__.
        object.__setattr__(self, "model_options", _frozen_mapping(self.model_options))
        object.__setattr__(self, "augment", tuple(self.augment))
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"recipe {self.name!r}: unknown optimizer {self.optimizer!r}; "
                              f"use one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"recipe {self.name!r}: unknown schedule {self.schedule!r}; "
                              f"use one of {', '.join(SCHEDULES)}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"recipe {self.name!r}: unknown augmentation {unknown[0]!r}; "
                              f"use names from {', '.join(AUGMENTATIONS)}")
        if not (0 <= self.warmup_epochs < self.epochs):
            raise ConfigError(f"recipe {self.name!r}: warmup_epochs must be in [0, epochs), got "
                              f"{self.warmup_epochs} of {self.epochs}")
        if self.batch_size <= 0 or self.lr <= 0:
            raise ConfigError(f"recipe {self.name!r}: batch_size and lr must be positive")

    def replace(self, **changes) -> "Recipe":
        """A copy with some fields changed (``recipe.replace(epochs=10)``); checked again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready values (for checkpoint metadata and logs)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

_RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Make ``recipe`` available under ``recipe.name``; names are unique."""
    if recipe.name in _RECIPES:
        raise ConfigError(f"recipe name {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def available_recipes() -> list[str]:
    """The registered recipe names, sorted."""
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe registered as ``name``; :class:`ConfigError` listing the names otherwise."""
    if not isinstance(name, str) or name not in _RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose one of: "
                          f"{', '.join(available_recipes())}")
    return _RECIPES[name]


# ---------------------------------------------------------------------------------------------
# CIFAR-10 recipes
# ---------------------------------------------------------------------------------------------

_CIFAR = dict(data="cifar10", augment=("random_crop", "horizontal_flip"))

# IR-Net's CIFAR-10 setting (Qin et al. 2020, "Forward and Backward Information Retention for
# Accurate Binary Neural Networks", Sec. 4; released code): SGD, momentum 0.9, lr 0.1 with cosine
# decay, weight decay 1e-4, batch 128, 400 epochs.
_IRNET_TRAINING = dict(optimizer="sgd", lr=0.1, weight_decay=1e-4, momentum=0.9, batch_size=128,
                       epochs=400, schedule="cosine", warmup_epochs=0, **_CIFAR)

# ReCU's CIFAR-10 setting (Xu et al. 2021, "ReCU: Reviving the Dead Weights in Binary Neural
# Networks", Sec. 4; also SURGE's, Sec. 6.1): SGD, momentum 0.9, lr 0.1, cosine to 0 after a
# 5-epoch linear warm-up, weight decay 5e-4, batch 256, 600 epochs.
_RECU_TRAINING = dict(optimizer="sgd", lr=0.1, weight_decay=5e-4, momentum=0.9, batch_size=256,
                      epochs=600, schedule="cosine", warmup_epochs=5, **_CIFAR)

_NO_CIFAR_SETTING = ("reports no CIFAR-10 setting; tinybnn trains it with IR-Net's "
                     "(SGD 0.9, lr 0.1 cosine, wd 1e-4, batch 128, 400 epochs)")

_W1A1 = dict(variant="w1a1")

register_recipe(Recipe(
    name="resnet20-fp", model="resnet20", model_options=dict(variant="fp"),
    optimizer="sgd", lr=0.1, weight_decay=1e-4, momentum=0.9, batch_size=128, epochs=164,
    schedule="step", milestones=(82, 123), warmup_epochs=0, **_CIFAR,
    published_accuracy=92.1,
    source=("He et al. 2016, 'Deep Residual Learning for Image Recognition', Sec. 4.2: lr 0.1 "
            "divided by 10 at 32k and 48k iterations of 64k (= epochs 82, 123 of 164 at batch "
            "128), wd 1e-4, momentum 0.9 (He et al. report 91.25); accuracy: the real-valued "
            "ResNet-20 of SURGE Table 1 (92.1)")))

register_recipe(Recipe(
    name="resnet20-irnet", model="resnet20",
    model_options=dict(_W1A1, input_quantizer="ede", weight_quantizer="irnet_weight"),
    **_IRNET_TRAINING, published_accuracy=86.5,
    source=("Qin et al. 2020 (IR-Net): Libra-PB weights + EDE on weights and activations, "
            "Bi-Real-style ResNet-20; accuracy: SURGE Table 1 (86.5)")))

register_recipe(Recipe(
    name="resnet20-irnet-w1a32", model="resnet20",
    model_options=dict(variant="w1a32", weight_quantizer="irnet_weight"),
    **_IRNET_TRAINING, published_accuracy=90.8,
    source="Qin et al. 2020 (IR-Net), ResNet-20 with 1-bit weights and 32-bit activations (90.8)"))

register_recipe(Recipe(
    name="resnet20-recu", model="resnet20",
    model_options=dict(_W1A1, input_quantizer="recu_act", weight_quantizer="recu_weight"),
    **_RECU_TRAINING, published_accuracy=87.4,
    source=("Xu et al. 2021 (ReCU): ReCU weights (τ 0.85 → 0.99) and standardized activations "
            "with the ApproxSign backward; accuracy: SURGE Table 1 (87.4; the ReCU paper reports "
            "87.5, 88.0 finetuned)")))

register_recipe(get_recipe("resnet20-recu").replace(
    name="resnet20-recu-surge", surge=0.01, published_accuracy=88.0,
    source=("SURGE (Sec. 5, Table 1): ReCU's CIFAR-10 setting with the dual-path gradient "
            "compensator on every binary layer and the adaptive gradient scaler, η = 0.01")))

register_recipe(Recipe(
    name="resnet20-bireal", model="resnet20",
    model_options=dict(_W1A1, input_quantizer="approx_sign", weight_quantizer="magnitude_aware"),
    **_IRNET_TRAINING, published_accuracy=None,
    source=("Liu et al. 2018 (Bi-Real Net): ApproxSign activations, magnitude-aware weights, "
            "a shortcut around every binary convolution; Bi-Real " + _NO_CIFAR_SETTING)))

register_recipe(Recipe(
    name="resnet20-xnor", model="resnet20",
    model_options=dict(_W1A1, input_quantizer="ste_sign", weight_quantizer="xnor"),
    **_IRNET_TRAINING, published_accuracy=None,
    source=("Rastegari et al. 2016 (XNOR-Net): α·sign(W) with α = mean|W| per output channel, "
            "clipped-STE sign activations (the activation scaling map K is left out, as in "
            "IR-Net's and ReCU's re-implementations); XNOR-Net " + _NO_CIFAR_SETTING +
            "; the only CIFAR-10 figure in the sources is VGG-Small (89.8, SURGE Table 1)")))

register_recipe(Recipe(
    name="resnet20-dorefa", model="resnet20",
    model_options=dict(_W1A1, input_quantizer={"name": "dorefa_act", "bits": 1},
                       weight_quantizer={"name": "dorefa_weight", "bits": 1}),
    **_IRNET_TRAINING, published_accuracy=79.3,
    source=("Zhou et al. 2016 (DoReFa-Net) at 1 bit: weights E·sign(W) with E = mean|W| per "
            "layer (straight-through), activations round(clip(x, 0, 1)) in {0, 1}; accuracy: "
            "SURGE Table 1 (79.3)")))

register_recipe(Recipe(
    name="resnet20-bnn", model="resnet20",
    model_options=dict(_W1A1, input_quantizer="ste_sign", weight_quantizer="ste_sign"),
    **_IRNET_TRAINING, published_accuracy=None,
    source=("Hubara et al. 2016 (BNN): sign weights and activations with the clipped STE, no "
            "scaling factors; BNN " + _NO_CIFAR_SETTING)))

# ResNet-18 and VGG-Small on CIFAR-10, ReCU's setting (SURGE Table 1 accuracies).
register_recipe(Recipe(
    name="resnet18-fp", model="resnet18", model_options=dict(variant="fp"),
    **_RECU_TRAINING, published_accuracy=94.8,
    source="real-valued ResNet-18 of SURGE Table 1 (94.8), trained with ReCU's setting"))

register_recipe(Recipe(
    name="resnet18-irnet", model="resnet18",
    model_options=dict(_W1A1, input_quantizer="ede", weight_quantizer="irnet_weight"),
    **_IRNET_TRAINING, published_accuracy=91.5,
    source="Qin et al. 2020 (IR-Net), ResNet-18 on CIFAR-10; accuracy: SURGE Table 1 (91.5)"))

register_recipe(Recipe(
    name="resnet18-recu", model="resnet18",
    model_options=dict(_W1A1, input_quantizer="recu_act", weight_quantizer="recu_weight"),
    **_RECU_TRAINING, published_accuracy=92.8,
    source="Xu et al. 2021 (ReCU), ResNet-18 on CIFAR-10; accuracy: SURGE Table 1 (92.8)"))

register_recipe(Recipe(
    name="vgg_small-fp", model="vgg_small", model_options=dict(variant="fp"),
    **_RECU_TRAINING, published_accuracy=94.1,
    source="real-valued VGG-Small of SURGE Table 1 (94.1), trained with ReCU's setting"))

register_recipe(Recipe(
    name="vgg_small-irnet", model="vgg_small",
    model_options=dict(_W1A1, input_quantizer="ede", weight_quantizer="irnet_weight"),
    **_IRNET_TRAINING, published_accuracy=90.4,
    source="Qin et al. 2020 (IR-Net), VGG-Small on CIFAR-10; accuracy: SURGE Table 1 (90.4)"))

register_recipe(Recipe(
    name="vgg_small-recu", model="vgg_small",
    model_options=dict(_W1A1, input_quantizer="recu_act", weight_quantizer="recu_weight"),
    **_RECU_TRAINING, published_accuracy=92.2,
    source="Xu et al. 2021 (ReCU), VGG-Small on CIFAR-10; accuracy: SURGE Table 1 (92.2)"))

register_recipe(Recipe(
    name="vgg_small-xnor", model="vgg_small",
    model_options=dict(_W1A1, input_quantizer="ste_sign", weight_quantizer="xnor"),
    **_IRNET_TRAINING, published_accuracy=89.8,
    source=("Rastegari et al. 2016 (XNOR-Net), VGG-Small on CIFAR-10; accuracy: SURGE Table 1 "
            "(89.8); training setting: IR-Net's")))

# A small recipe that finishes in seconds on a laptop CPU: the binary CNN on the 8×8 scikit-learn
# digits (no download). Settings chosen by tinybnn (no paper); tests/models/test_models.py trains
# exactly this and reaches 96.7-97.5 % test accuracy over five seeds.
register_recipe(Recipe(
    name="binary_cnn-digits", model="binary_cnn", model_options=dict(input_quantizer="approx_sign"),
    optimizer="adam", lr=1e-2, weight_decay=0.0, momentum=0.9, batch_size=32, epochs=10,
    schedule="cosine", warmup_epochs=0, data="digits", augment=("random_crop",), crop_padding=1,
    published_accuracy=None,
    source=("tinybnn's own setting for the 8×8 scikit-learn digits: W1A1 hidden convolutions with "
            "ApproxSign activations, Adam lr 1e-2 with cosine decay, batch 32, 10 epochs, random "
            "1-pixel shifts; >= 95 % test accuracy (tests/models/test_models.py)")))
