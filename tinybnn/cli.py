"""The command line: ``tinybnn train | eval | bench | summary | export``.

::

    tinybnn train                              # the main job: a binary MLP on the 8×8 digits
    tinybnn train --recipe resnet20-irnet      # a paper's CIFAR-10 setting
    tinybnn eval --checkpoint runs/<run>/checkpoint.npz
    tinybnn bench conv | train | kernels | infer | size     # e.g. bench infer --repeats 20
    tinybnn summary --model binary_mlp --data digits

Bad input -- an unknown model or data set, a bad number, a missing or corrupt checkpoint, an
output folder that cannot be written -- is reported on ONE line, ``tinybnn: error: ...``, and the
process exits with status 2, without a traceback. Every deliberate error of tinybnn is a
:class:`~tinybnn.errors.TinyBNNError`; :func:`main` turns them (and operating-system errors such as
a full disk) into that line.

The main job
------------
``tinybnn train`` without arguments trains ``binary_mlp`` (a full-precision first and last layer,
binary hidden layers with ``ste_sign`` on weights and activations; see
:func:`tinybnn.models.mlp.binary_mlp`) on scikit-learn's digits, which ship with scikit-learn (no
download). :data:`MAIN_JOB` holds its settings; it trains in about half a minute on two CPU cores
and reaches about 96 % test accuracy (see the measurements next to :data:`MAIN_JOB`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import math
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import numpy as np

from .backend import reuse_freed_memory
from .errors import CheckpointError, ConfigError, TinyBNNError
from .optim.schedule import MilestoneLR

PROG = "tinybnn"

#: Settings of ``tinybnn train`` without arguments. Measured with ``tinybnn train --seed S`` on a
#: shared two-core machine (load 3-7): final test accuracy 95.8, 95.8, 96.1, 94.7, 95.6 % for
#: seeds 0-4 (mean 95.6), 21-35 s wall time each. The digits test split holds writers never seen
#: in training, which caps MLPs: a full-precision MLP with these settings reaches 96.4 %,
#: scikit-learn's SVC 95.8 %, 3-NN 96.7 % (on a shuffled split this binary MLP reaches 99.3 %).
#: Among the settings tried (Adam/AdamW/SGD/Bop, lr 1e-3..1e-2, batch 8..64, width 128..1024,
#: depth 1..3, 20..60 epochs, label smoothing 0..0.2, crop augmentation) these had the best mean.
MAIN_JOB = {
    "model": "binary_mlp",
    "model_options": {"hidden": 512, "depth": 2},
    "data": "digits",
    "optimizer": "adamw",
    "lr": 1e-2,
    "weight_decay": 0.05,       # decoupled (AdamW); keeps the real-valued layers from overfitting
    "momentum": None,           # the optimizer's own default
    "nesterov": False,
    "batch_size": 16,           # small batches: batch-norm noise regularizes
    "epochs": 30,
    "schedule": "cosine",       # per batch, from lr to 0
    "warmup_epochs": 0,
    "milestones": [],
    "gamma": 0.1,
    "augment": [],
    "label_smoothing": 0.1,     # of the cross-entropy (0 with --recipe: the papers use none)
}


#: BLAS threads while ``train`` and ``eval`` run. The matrix products of a small MLP (a batch of 16
#: times a 512×512 weight) are too small to share: BLAS threads spend more time waiting for each
#: other than multiplying, and far more when another process is busy on the same cores (measured on
#: a busy 2-core machine: 5 epochs of the main job in 3.7 s with one thread, 12.8 s with two).
#: Convolutions are not slowed down: they split the batch over their own threads
#: (:mod:`tinybnn.functional.parallel`).
BLAS_THREADS = 1


def limited_blas_threads():
    """A context limiting BLAS to :data:`BLAS_THREADS` threads (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=BLAS_THREADS, user_api="blas")


# ---------------------------------------------------------------------------------------------
# Errors: one line, exit status 2
# ---------------------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    """Print ``tinybnn: error: <message>`` on one line to stderr and exit with status 2."""
    one_line = " ".join(str(message).split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse adds a usage line by default)."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see '{self.prog} --help')")


def _describe_os_error(error: OSError) -> str:
    where = f" {error.filename}" if error.filename else ""
    return f"cannot access{where}: {error.strerror or error}"


# ---------------------------------------------------------------------------------------------
# Argument types: each turns a string into a checked value or explains what is wrong
# ---------------------------------------------------------------------------------------------


def _whole_number(text: str, minimum: int, requirement: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive whole number")


def nonnegative_int(text: str) -> int:
    return _whole_number(text, 0, "0 or more")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def dataset_name(text: str) -> str:
    from .data import dataset_info

    try:
        return dataset_info(text).name
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def model_name(text: str) -> str:
    from .models import available_models

    if text not in available_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose one of: "
                                         f"{', '.join(available_models())}")
    return text


def optimizer_name(text: str) -> str:
    from .optim import optimizer_names

    if text.lower() not in optimizer_names():
        raise argparse.ArgumentTypeError(f"unknown optimizer {text!r}; choose one of: "
                                         f"{', '.join(optimizer_names())}")
    return text.lower()


def quantizer_name(text: str) -> str:
    """A registered quantizer name, or "none" (the layer keeps real values: e.g. W1A32)."""
    from .quant import available

    if text.lower() == "none":
        return "none"
    if text not in available():
        raise argparse.ArgumentTypeError(f"unknown quantizer {text!r}; choose one of: "
                                         f"{', '.join(available())}, or none")
    return text


def recipe_name(text: str) -> str:
    from .models.recipes import available_recipes

    if text not in available_recipes():
        raise argparse.ArgumentTypeError(f"unknown recipe {text!r}; choose one of: "
                                         f"{', '.join(available_recipes())}")
    return text


# ---------------------------------------------------------------------------------------------
# Building blocks shared by train and eval
# ---------------------------------------------------------------------------------------------


def build_model(config: dict, input_shape, num_classes: int, rng=None):
    """The model a run's ``config`` describes: ``config["model"]`` built with
    ``config["model_options"]``, then wrapped by SURGE when ``config["surge"]`` is set."""
    from .models import make_model

    name, options = config["model"], dict(config.get("model_options") or {})
    if rng is not None:
        options["rng"] = rng  # every registered builder takes its initialisation Generator
    model = make_model(name, input_shape, num_classes, **options)
    if config.get("surge") is not None:
        model = apply_surge(model, config["surge"])
    return model


def model_from_checkpoint(path):
    """Rebuild the model a ``tinybnn train`` checkpoint was written from and restore its weights.

    Returns ``(model, checkpoint, dataset_info)``; CheckpointError when the file is not such a
    checkpoint."""
    from .data import dataset_info
    from .train import load_checkpoint

    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    if "model" not in config or "data" not in config:
        raise CheckpointError(f"checkpoint {checkpoint.path} does not say which model and data "
                              f"set it was trained on (no 'model'/'data' in its config); was it "
                              f"written by 'tinybnn train'?")
    info = dataset_info(config["data"])
    model = build_model(config, info.input_shape, info.num_classes)
    checkpoint.restore(model)
    return model, checkpoint, info


def surge_module():
    """The module ``tinybnn.surge``, or a ConfigError when this installation has none."""
    try:
        return importlib.import_module("tinybnn.surge")
    except ModuleNotFoundError as e:
        if e.name != "tinybnn.surge":
            raise
        raise ConfigError("SURGE is not available in this version of tinybnn (the module "
                          "tinybnn.surge is missing); run without --surge") from None


def apply_surge(model, eta: float):
    """Wrap ``model`` with SURGE's dual-path gradient compensation, AGS rate ``eta``."""
    wrapped = surge_module().wrap(model, eta=eta)
    return model if wrapped is None else wrapped


def _normalize(info):
    from .data import Normalize

    return Normalize(info.mean, info.std)


def make_train_transform(augment, info, rng):
    """The training transform: the named augmentations in order, then normalization.

    ``random_crop`` pads each side by 1/8 of the image width (the usual 4 pixels on 32×32
    CIFAR images, as in the recipes) and cuts a window of the original size at random;
    ``horizontal_flip`` mirrors half of the images."""
    from .data import Compose, RandomCrop, RandomHorizontalFlip

    steps = []
    for name in augment:
        if name == "random_crop":
            # pad by 1/8 of the image side: 4 pixels for CIFAR's 32×32, 1 for the 8×8 digits
            padding = max(1, info.input_shape[-1] // 8)
            steps.append(RandomCrop(info.input_shape[1:], padding=padding, rng=rng))
        elif name == "horizontal_flip":
            steps.append(RandomHorizontalFlip(rng=rng))
        else:
            raise ConfigError(f"unknown augmentation {name!r}; use random_crop or "
                              f"horizontal_flip")
    steps.append(_normalize(info))
    return steps[0] if len(steps) == 1 else Compose(steps)


def make_optimizer_for(model, settings: dict):
    """The optimizer named in ``settings`` over the model's (named) parameters."""
    from .optim import make_optimizer

    name, options = settings["optimizer"], {}
    momentum = settings.get("momentum")
    if momentum is not None:
        if name == "sgd":
            options.update(momentum=momentum, nesterov=bool(settings.get("nesterov")))
        elif name in ("adam", "adamw"):
            options["betas"] = (momentum, 0.999)
    return make_optimizer(name, model, lr=settings["lr"],
                          weight_decay=settings.get("weight_decay"), **options)


def make_scheduler(optimizer, settings: dict, steps_per_epoch: int):
    """``(scheduler, unit)`` for the schedule named in ``settings``.

    - ``"constant"``: no schedule;
    - ``"cosine"``: :class:`~tinybnn.optim.CosineWarmup` stepped after every batch, linear warm-up
      over ``warmup_epochs``, then cosine from ``lr`` to 0 at the last batch;
    - ``"step"``: multiply the learning rate by ``gamma`` at each epoch in ``milestones``.
    """
    from .optim import schedule as schedules

    kind, epochs = settings["schedule"], settings["epochs"]
    warmup = settings.get("warmup_epochs") or 0
    if kind == "cosine":
        return schedules.CosineWarmup(optimizer, total_steps=epochs * steps_per_epoch,
                                      warmup_steps=warmup * steps_per_epoch), "step"
    if warmup:
        raise ConfigError(f"a warm-up is only available with the cosine schedule, not "
                          f"{kind!r}")
    if kind == "constant":
        return None, "epoch"
    if kind == "step":
        milestones = sorted(int(m) for m in settings.get("milestones") or ())
        if not milestones:
            raise ConfigError("the step schedule needs milestones (epochs where the learning rate "
                              "drops)")
        return MilestoneLR(optimizer, milestones, settings.get("gamma", 0.1)), "epoch"
    raise ConfigError(f"unknown schedule {kind!r}; use constant, cosine or step")


# ---------------------------------------------------------------------------------------------
# tinybnn train
# ---------------------------------------------------------------------------------------------


def _train_settings(args) -> tuple[dict, object]:
    """Merge the main job's defaults, the recipe (if any) and the explicit options, in that order
    of increasing priority. Returns ``(settings, recipe or None)``."""
    settings = {key: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for key, v in MAIN_JOB.items()}
    recipe = None
    if args.recipe is not None:
        from .models.recipes import get_recipe

        recipe = get_recipe(args.recipe)
        fields = recipe.to_dict()
        for key in ("model", "model_options", "data", "optimizer", "lr", "weight_decay",
                    "momentum", "nesterov", "batch_size", "epochs", "schedule", "warmup_epochs",
                    "milestones", "gamma", "augment"):
            settings[key] = fields[key]
        settings["label_smoothing"] = 0.0
    explicit = {"model": args.model, "data": args.data, "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
                "weight_decay": args.weight_decay}
    if args.model is not None and args.model != settings["model"]:
        settings["model_options"] = {}   # the defaults' options belong to the default model
    for key, value in explicit.items():
        if value is not None:
            settings[key] = value
    settings["model_options"].update(_quantizer_options(args))
    # a recipe's warm-up must fit into a run shortened with --epochs
    if settings["warmup_epochs"] and settings["warmup_epochs"] >= settings["epochs"]:
        settings["warmup_epochs"] = 0 if settings["epochs"] == 1 else settings["epochs"] - 1
    settings["seed"] = args.seed
    settings["surge"] = args.surge if args.surge is not None else (recipe.surge if recipe else None)
    settings["recipe"] = args.recipe
    settings["published_accuracy"] = recipe.published_accuracy if recipe else None
    return settings, recipe


def _quantizer_options(args) -> dict:
    """``--input-quantizer``/``--weight-quantizer`` as model options ("none" becomes None)."""
    options = {}
    for key in ("input_quantizer", "weight_quantizer"):
        value = getattr(args, key)
        if value is not None:
            options[key] = None if value == "none" else value
    return options


def _default_run_dir(model: str, data: str) -> Path:
    """``runs/<model>-<data>-<YYYYmmdd-HHMMSS>`` under the current folder, made unique."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{model}-{data}-{stamp}"
    path, n = base, 2
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


def _prepare_run_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".tinybnn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write the run directory {path}: {e.strerror or e}; choose "
                          f"another folder with --out") from None
    return path


def cmd_train(args) -> int:
    from . import manual_seed
    from .data import DataLoader, dataset_info, load_dataset
    from .functional import cross_entropy
    from .train import fit

    settings, recipe = _train_settings(args)
    if settings["surge"] is not None:
        surge_module()  # fail before loading any data
    info = dataset_info(settings["data"])
    out = _prepare_run_dir(Path(args.out) if args.out else
                           _default_run_dir(settings["model"], info.name))

    # One seed, three independent streams: initialisation, shuffling, augmentation.
    manual_seed(settings["seed"])
    init_rng, shuffle_rng, augment_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(settings["seed"]).spawn(3))

    train_x, train_y = load_dataset(info.name, "train")
    test_x, test_y = load_dataset(info.name, "test")
    train_loader = DataLoader(train_x, train_y, settings["batch_size"], shuffle=True,
                              rng=shuffle_rng,
                              transform=make_train_transform(settings["augment"], info,
                                                             augment_rng))
    test_loader = DataLoader(test_x, test_y, max(256, settings["batch_size"]),
                             transform=_normalize(info))

    model = build_model(settings, info.input_shape, info.num_classes, rng=init_rng)
    optimizer = make_optimizer_for(model, settings)
    scheduler, unit = make_scheduler(optimizer, settings, len(train_loader))

    print(f"training {settings['model']} on {info.name} ({len(train_y)} train / {len(test_y)} "
          f"test images): {settings['epochs']} epochs, {settings['optimizer']} lr "
          f"{settings['lr']:g}, batch {settings['batch_size']}, seed {settings['seed']}"
          + (f", recipe {recipe.name}" if recipe else ""), flush=True)
    loss_fn = functools.partial(cross_entropy, label_smoothing=settings["label_smoothing"])
    started = time.perf_counter()
    with limited_blas_threads():
        history = fit(model, train_loader, test_loader, optimizer, settings["epochs"],
                      scheduler=scheduler, schedule_unit=unit, loss_fn=loss_fn, run_dir=out,
                      progress=not args.no_progress, config=settings)
    seconds = time.perf_counter() - started

    accuracy = 100 * history.last["test_acc"]
    line = f"final test accuracy: {accuracy:.1f}%"
    if recipe is not None:
        published = (f"{recipe.published_accuracy:.1f}%" if recipe.published_accuracy is not None
                     else "none reported")
        line += f"  (published: {published}, recipe {recipe.name})"
    print(f"{line}  (run dir: {out}, {seconds:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------------
# tinybnn eval
# ---------------------------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from .data import DataLoader, load_dataset
    from .train import evaluate

    model, checkpoint, info = model_from_checkpoint(args.checkpoint)
    test_x, test_y = load_dataset(info.name, "test")
    loader = DataLoader(test_x, test_y, args.batch_size, transform=_normalize(info))
    with limited_blas_threads():
        loss, accuracy = evaluate(model, loader)
    print(f"test accuracy: {100 * accuracy:.1f}%  (loss {loss:.4f}; {checkpoint.config['model']} on "
          f"{info.name}, epoch {checkpoint.epoch}, {checkpoint.path})")
    return 0


# ---------------------------------------------------------------------------------------------
# tinybnn bench
# ---------------------------------------------------------------------------------------------


#: ``tinybnn bench WHAT`` -> (module, function) of the benchmark
BENCHMARKS = {
    "conv": ("tinybnn.bench", "bench_conv"),
    "train": ("tinybnn.bench_train", "bench_train"),
    "kernels": ("tinybnn.kernels.bench", "bench_kernels"),
    "infer": ("tinybnn.deploy.bench", "bench_infer"),
    "size": ("tinybnn.deploy.bench", "model_size_report"),
}


def format_result(result, module=None) -> str:
    """A benchmark's result as text: the module's own ``format_table`` if it has one, else a
    string as it is, a dict as ``key: value`` lines, a list of dicts as a table."""
    if module is not None and hasattr(module, "format_table"):
        return module.format_table(result)
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        width = max(map(len, result), default=0)
        return "\n".join(f"{key:<{width}}  {_cell(value)}" for key, value in result.items())
    if isinstance(result, list) and result and all(isinstance(row, dict) for row in result):
        columns = list(dict.fromkeys(key for row in result for key in row))
        cells = [columns] + [[_cell(row.get(c)) for c in columns] for row in result]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        return "\n".join("  ".join(text.rjust(w) for text, w in zip(line, widths))
                         for line in cells)
    return str(result)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _option_type(parameter):
    """The type a ``--option`` value of this keyword parameter is read as: that of its default
    (bool, int, float or str), int for an ``int | None`` parameter, None when it takes no
    value from the command line (e.g. a list of shapes)."""
    default = parameter.default
    if isinstance(default, (bool, int, float, str)):
        return type(default)
    if default is None and "int" in str(parameter.annotation):
        return int
    return None


def bench_options(what: str, function, tokens: list[str]) -> dict:
    """The keyword arguments of a benchmark function from ``--name value`` tokens (``--name`` /
    ``--no-name`` for a boolean), e.g. ``tinybnn bench infer --batch-size 128 --repeats 20``.
    Names are the function's parameters with dashes; values are converted to the type of the
    parameter's default. Anything else is a ConfigError naming the options that exist."""
    import inspect

    types = {name.replace("_", "-"): (name, kind) for name, parameter in
             inspect.signature(function).parameters.items()
             if (kind := _option_type(parameter)) is not None}
    accepted = ", ".join(f"--{name}" for name in types) or "no options"
    options, rest = {}, list(tokens)
    while rest:
        token = rest.pop(0)
        name = token[2:] if token.startswith("--") else None
        negated = name is not None and name.startswith("no-") and name[3:] in types
        if name is None or (name not in types and not negated):
            raise ConfigError(f"tinybnn bench {what} takes {accepted}; got {token!r}")
        key, kind = types[name[3:] if negated else name]
        if kind is bool:
            options[key] = not negated
            continue
        if not rest:
            raise ConfigError(f"tinybnn bench {what}: {token} needs a value")
        text = rest.pop(0)
        try:
            options[key] = kind(text)
        except ValueError:
            raise ConfigError(f"tinybnn bench {what}: {token} takes {kind.__name__} values, "
                              f"got {text!r}") from None
    return options


def cmd_bench(args) -> int:
    module_name, function_name = BENCHMARKS[args.what]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ConfigError(f"the {args.what} benchmark is not available in this version of tinybnn "
                          f"({module_name} is missing)") from None
    function = getattr(module, function_name)
    result = function(**bench_options(args.what, function, args.options))
    print(format_result(result, module))
    return 0


# ---------------------------------------------------------------------------------------------
# tinybnn summary
# ---------------------------------------------------------------------------------------------


def cmd_summary(args) -> int:
    from .data import dataset_info
    from .deploy import summary

    info = dataset_info(args.data)
    options = _quantizer_options(args)
    model = build_model({"model": args.model, "model_options": options}, info.input_shape,
                        info.num_classes)
    print(summary(model, info.input_shape))
    return 0


# ---------------------------------------------------------------------------------------------
# tinybnn export  (the export itself lives in tinybnn.deploy.export, written by the deploy issue)
# ---------------------------------------------------------------------------------------------


def add_export_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "export", help="export a trained checkpoint to a bit-packed inference model")
    parser.add_argument("--checkpoint", required=True, help="the checkpoint.npz of a run")
    parser.add_argument("--out", help="the file to write (default: next to the checkpoint)")
    parser.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    try:
        from .deploy import export_command
    except ImportError:
        raise ConfigError("tinybnn export is not available in this version of tinybnn "
                          "(tinybnn.deploy.export is missing)") from None
    print(export_command(args.checkpoint, args.out))
    return 0


# ---------------------------------------------------------------------------------------------
# The parser and main
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="tinybnn: train, evaluate, benchmark and "
                           "inspect Binary Neural Networks.")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = subcommands.add_parser(
        "train", help="train a model (default: the binary MLP on digits)",
        description="Train a model. Without options: the binary MLP on the 8x8 digits "
                    f"({MAIN_JOB['epochs']} epochs, under a minute).")
    train.add_argument("--data", type=dataset_name, help="data set (default: digits)")
    train.add_argument("--model", type=model_name, help="model name (default: binary_mlp)")
    train.add_argument("--epochs", type=positive_int, help="number of epochs")
    train.add_argument("--batch-size", type=positive_int, help="training batch size")
    train.add_argument("--lr", type=positive_float, help="(peak) learning rate")
    train.add_argument("--optimizer", type=optimizer_name, help="sgd, adam, adamw or bop")
    train.add_argument("--weight-decay", type=nonnegative_float, help="weight decay")
    train.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    train.add_argument("--out", help="run directory (default: runs/<model>-<data>-<time>)")
    train.add_argument("--recipe", type=recipe_name,
                       help="a named training recipe (model, optimizer, schedule, epochs, "
                            "augmentation); other options override its fields")
    train.add_argument("--surge", type=positive_float, metavar="ETA",
                       help="train with SURGE gradient compensation, AGS rate ETA (e.g. 0.01)")
    train.add_argument("--input-quantizer", type=quantizer_name,
                       help="estimator for the binary layers' inputs (e.g. ste_sign, none)")
    train.add_argument("--weight-quantizer", type=quantizer_name,
                       help="estimator for the binary layers' weights")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    train.set_defaults(handler=cmd_train)

    evaluate = subcommands.add_parser("eval", help="evaluate a checkpoint on its test split")
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint.npz")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.set_defaults(handler=cmd_eval)

    bench = subcommands.add_parser("bench", help="run a benchmark and print its table")
    bench.add_argument("what", choices=tuple(BENCHMARKS))
    bench.add_argument("options", nargs=argparse.REMAINDER,
                       help="the benchmark function's keyword arguments as --name value, e.g. "
                            "tinybnn bench infer --repeats 20 (a wrong one lists them)")
    bench.set_defaults(handler=cmd_bench)

    summary = subcommands.add_parser("summary", help="parameters, memory and MACs of a model")
    summary.add_argument("--model", type=model_name, required=True)
    summary.add_argument("--data", type=dataset_name, default="digits",
                         help="data set whose input shape and classes to use (default digits)")
    summary.add_argument("--input-quantizer", type=quantizer_name)
    summary.add_argument("--weight-quantizer", type=quantizer_name)
    summary.set_defaults(handler=cmd_summary)

    add_export_parser(subcommands)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Errors exit with status 2 after one line on stderr (``SystemExit``).
    """
    args = build_parser().parse_args(argv)
    reuse_freed_memory()                # the command is this whole process: allocate for speed
    try:
        return int(args.handler(args) or 0)
    except TinyBNNError as e:
        _fail(str(e))
    except OSError as e:
        _fail(_describe_os_error(e))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":  # python -m tinybnn.cli
    sys.exit(main())
