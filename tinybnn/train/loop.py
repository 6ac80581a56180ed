"""The training loop: :func:`fit` trains a model epoch by epoch, :func:`evaluate` measures it.

One training step is the data flow of the design notes, written out::

    logits = model(Tensor(x))             # forward: each Function records itself
    loss = loss_fn(logits, y)             # a scalar Tensor
    optimizer.zero_grad()
    loss.backward()                       # every Function's backward, in reverse order
    clip_grad_norm_(params, grad_clip)    # optional
    optimizer.step()                      # update the (latent) weights in place
    scheduler.step()                      # only with schedule_unit="step"

An epoch is one pass over ``train_loader`` followed by :func:`evaluate` on ``test_loader``. Around
that, :func:`fit` advances the quantizers' schedules (:func:`~tinybnn.quant.advance_schedules`),
measures how many binary weights flip, keeps the :class:`~tinybnn.train.History`, calls the
callbacks, shows a progress bar, and -- given a ``run_dir`` -- writes the run directory
(:mod:`tinybnn.train.rundir`) with a checkpoint that ``fit(..., resume_from=...)`` continues from.

Resuming is exact: a run stopped after epoch k and resumed from its checkpoint gives the same
weights and metrics, bit for bit, as a run that never stopped. The checkpoint holds everything the
remaining epochs depend on: the parameters and buffers, the optimizer's state, the schedule's
state, the number of epochs and steps done, and the states of the random generators that shuffle
and augment the data (:func:`random_generators`).
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from ..autograd import Tensor, no_grad
from ..backend import get_array_module, reuse_freed_memory
from ..errors import CheckpointError, ConfigError
from ..functional import cross_entropy
from ..optim.bop import flip_ratio
from ..optim.clip import clip_grad_norm_
from ..quant.base import advance_schedules
from ..random import default_rng
from .callbacks import Callback, TrainState
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History, save_curves
from .losses import distillation_loss
from .metrics import RunningMean, count_correct
from .rundir import RunDir

SCHEDULE_UNITS = ("epoch", "step")
#: Drawing curves.png takes about 0.3 s, so before the last epoch it is redrawn (together with a
#: checkpoint) at most once per this many seconds.
CURVES_MIN_INTERVAL = 60.0


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def current_lr(optimizer) -> float | None:
    """The learning rate of the first parameter group that has one (Bop's groups have none)."""
    for group in optimizer.param_groups:
        if "lr" in group:
            return float(group["lr"])
    return None


def _on_model_device(model, x):
    """``x`` as a Tensor on the device of the model's parameters (CuPy if they live on a GPU)."""
    first = next(iter(model.parameters()), None)
    if first is not None:
        xp = get_array_module(first.data)
        if xp is not np:
            x = xp.asarray(x)
    return Tensor(x)


def _teacher_logits(teacher, x):
    """The teacher's logits of the batch ``x``, a constant: a Module runs (in eval mode, set by
    fit) on x on its own device without recording a graph; any other callable gets x as it is."""
    from ..nn import Module

    with no_grad():
        out = teacher(_on_model_device(teacher, x)) if isinstance(teacher, Module) else teacher(x)
    return out.data if isinstance(out, Tensor) else out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def evaluate(model, loader, loss_fn=cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over every batch of ``loader``.

    The model runs in eval mode (batch norm uses its running statistics, dropout is off) under
    ``no_grad``; its previous mode is restored afterwards. Both numbers are means over samples,
    so a smaller last batch counts for what it holds.

    Returns:
        ``(loss, accuracy)`` with accuracy a fraction in [0, 1].
    """
    was_training = model.training
    model.eval()
    loss_mean, correct, seen = RunningMean(), 0, 0
    try:
        with no_grad():
            for x, y in loader:
                logits = model(_on_model_device(model, x))
                labels = get_array_module(logits.data).asarray(y)
                loss_mean.update(loss_fn(logits, labels).item(), weight=len(y))
                correct += count_correct(logits, y)
                seen += len(y)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ConfigError("evaluate got a loader without any sample; check the data set split "
                          "and the batch size (drop_last=True drops a too small last batch)")
    return loss_mean.mean, correct / seen


# ---------------------------------------------------------------------------------------------
# Flip ratios of binary weights
# ---------------------------------------------------------------------------------------------


class FlipTracker:
    """Measures, for every binary weight tensor, the fraction of signs each step flips.

    For latent-weight optimizers (SGD, Adam, ...) the latent weights are copied before the step
    and compared with :func:`~tinybnn.optim.flip_ratio` after it. Bop knows how many weights it
    flipped; for the parameters it owns its own count (``last_flip_ratio``) is used instead.
    :meth:`epoch_means` averages the per-step ratios over the epoch, per parameter name.
    """

    def __init__(self, model, optimizer):
        self.binary = [(name, p) for name, p in model.named_parameters()
                       if getattr(p, "binary", False)]
        self.self_counted = self._self_counting_params(optimizer)
        self._before: dict[str, object] = {}
        self._sums = {name: 0.0 for name, _ in self.binary}
        self._steps = 0

    @staticmethod
    def _self_counting_params(optimizer) -> dict[int, tuple]:
        """``id(p) -> (optimizer, key)`` for parameters owned by an optimizer that counts its own
        flips (has ``last_flip_ratio``), with the key under which it reports them: the
        parameter's name when the optimizer knows it, else its index in that optimizer."""
        found = {}
        for opt in getattr(optimizer, "optimizers", [optimizer]):
            if not hasattr(opt, "last_flip_ratio"):
                continue
            index = 0
            for group in opt.param_groups:
                names = group.get("param_names")
                for i, p in enumerate(group["params"]):
                    found[id(p)] = (opt, names[i] if names else index)
                    index += 1
        return found

    def before_step(self) -> None:
        for name, p in self.binary:
            if id(p) not in self.self_counted:
                self._before[name] = p.data.copy()

    def after_step(self) -> None:
        for name, p in self.binary:
            if id(p) in self.self_counted:
                opt, key = self.self_counted[id(p)]
                ratio = opt.last_flip_ratio.get(key, 0.0)
            else:
                ratio = flip_ratio(self._before.pop(name), p.data)
            self._sums[name] += ratio
        self._steps += 1

    def epoch_means(self) -> dict[str, float]:
        """Mean flip ratio per step of each binary parameter since the last call; resets."""
        means = {name: total / self._steps if self._steps else 0.0
                 for name, total in self._sums.items()}
        self._sums = {name: 0.0 for name in self._sums}
        self._steps = 0
        return means


# ---------------------------------------------------------------------------------------------
# Random generators: what must be saved for an exact resume
# ---------------------------------------------------------------------------------------------


def random_generators(model, loader) -> dict[str, np.random.Generator]:
    """The random generators a training epoch draws from, by a stable name.

    - ``"default"``: tinybnn's default generator (used by layers built without an ``rng``);
    - ``"loader"``: the loader's shuffling generator;
    - ``"transform"``, ``"transform.0"``, ...: the generators of its (composed) transforms;
    - ``"model.<module name>"``: modules that keep their own ``rng`` (e.g. Dropout).
    """
    found: dict[str, np.random.Generator] = {"default": default_rng()}

    def visit(obj, name: str) -> None:
        rng = getattr(obj, "rng", None)
        if isinstance(rng, np.random.Generator):
            found[name] = rng
        for i, inner in enumerate(getattr(obj, "transforms", None) or ()):
            visit(inner, f"{name}.{i}")

    visit(loader, "loader")
    transform = getattr(loader, "transform", None)
    if transform is not None:
        visit(transform, "transform")
    for module_name, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator):
            found[f"model.{module_name}"] = rng
    return found


def capture_rng_states(generators: dict) -> dict:
    """``{name: state}``; a state is a dict of ints and strings (JSON-able)."""
    return {name: gen.bit_generator.state for name, gen in generators.items()}


def restore_rng_states(generators: dict, states: dict, path) -> None:
    """Put saved states back into the generators of the same names (others are left alone)."""
    for name, gen in generators.items():
        if name in states:
            try:
                gen.bit_generator.state = states[name]
            except (TypeError, ValueError, KeyError) as e:
                raise CheckpointError(f"checkpoint {path} holds an unusable state for the random "
                                      f"generator '{name}': {e}") from None


# ---------------------------------------------------------------------------------------------
# One epoch of training
# ---------------------------------------------------------------------------------------------


def train_one_epoch(model, loader, optimizer, state: TrainState, loss_fn=cross_entropy,
                    scheduler=None, schedule_unit: str = "epoch", grad_clip=None,
                    flips: FlipTracker | None = None, callbacks=(),
                    bar=None, teacher=None, distillation=None) -> tuple[float, float]:
    """One pass over ``loader`` in training mode, one optimizer step per batch.

    ``state.step`` counts the steps; ``flips`` (if given) measures the flip ratios; ``bar`` is a
    tqdm bar advanced per batch; each callback's ``on_step_end`` runs after every step. With a
    ``teacher`` the loss is ``distillation_loss(logits, teacher's logits, labels,
    **distillation)`` instead of ``loss_fn`` (see :func:`fit`).

    Returns:
        ``(mean training loss, training accuracy)`` over the epoch's samples, measured on the
        fly (each batch with the weights before its step).
    """
    model.train()
    loss_mean, correct, seen = RunningMean(), 0, 0
    for batch, (x, y) in enumerate(loader):
        lr = current_lr(optimizer)
        logits = model(_on_model_device(model, x))
        labels = get_array_module(logits.data).asarray(y)
        if teacher is None:
            loss = loss_fn(logits, labels)
        else:
            loss = distillation_loss(logits, _teacher_logits(teacher, x), labels,
                                     **(distillation or {}))
        loss_value = float(loss.item())
        if not math.isfinite(loss_value):
            raise ConfigError(f"the training loss became {loss_value} at epoch {state.epoch + 1}, "
                              f"batch {batch + 1}: training diverged; lower the learning rate "
                              f"(now {lr}) or use gradient clipping")

        optimizer.zero_grad()
        loss.backward()
        if grad_clip is not None:
            clip_grad_norm_(model.parameters(), grad_clip)
        if flips is not None:
            flips.before_step()
        optimizer.step()
        if flips is not None:
            flips.after_step()
        if scheduler is not None and schedule_unit == "step":
            scheduler.step()
        state.step += 1

        batch_correct = count_correct(logits, y)
        loss_mean.update(loss_value, weight=len(y))
        correct += batch_correct
        seen += len(y)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_mean.mean:.4f}", acc=f"{100 * correct / seen:.1f}%",
                            lr=f"{lr:.3g}" if lr is not None else "-", refresh=False)
        logs = {"loss": loss_value, "acc": batch_correct / len(y), "lr": lr, "batch": batch}
        for callback in callbacks:
            callback.on_step_end(state, logs)
    return loss_mean.mean, (correct / seen if seen else 0.0)


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _check_distillation(teacher, distillation, loss_fn):
    if teacher is None:
        if distillation is not None:
            raise ConfigError("distillation= options need a teacher= model to distil from")
        return
    if not callable(teacher):
        raise ConfigError(f"teacher must be a tinybnn Module or a callable returning logits, got "
                          f"{type(teacher).__name__}")
    if loss_fn is not cross_entropy:
        raise ConfigError("give either loss_fn= or teacher= (with a teacher the training loss is "
                          "distillation_loss; tune it with distillation={'alpha': .., "
                          "'temperature': ..})")
    unknown = set(distillation or {}) - {"alpha", "temperature"}
    if unknown:
        raise ConfigError(f"distillation= takes 'alpha' and 'temperature', got {sorted(unknown)}")


class _teacher_in_eval_mode:
    """Context: a Module teacher in eval mode (its batch norms use their running statistics),
    its own mode restored afterwards; other teachers are left alone."""

    def __init__(self, teacher):
        from ..nn import Module

        self.module = teacher if isinstance(teacher, Module) else None

    def __enter__(self):
        if self.module is not None:
            self.was_training = self.module.training
            self.module.eval()

    def __exit__(self, *exc):
        if self.module is not None:
            self.module.train(self.was_training)
        return False


def _check_fit_arguments(epochs, schedule_unit, grad_clip, checkpoint_every, callbacks):
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if schedule_unit not in SCHEDULE_UNITS:
        raise ConfigError(f"schedule_unit must be 'epoch' (scheduler.step() after each epoch) or "
                          f"'step' (after each batch), got {schedule_unit!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ConfigError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer))
                                         or checkpoint_every < 0):
        raise ConfigError(f"checkpoint_every must be an integer >= 0 (0: only at the end), got "
                          f"{checkpoint_every!r}")
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise ConfigError(f"callbacks must be instances of tinybnn.train.Callback, got "
                              f"{type(callback).__name__}")


def fit(model, train_loader, test_loader, optimizer, epochs: int, scheduler=None,
        schedule_unit: str = "epoch", loss_fn=cross_entropy, grad_clip: float | None = None,
        callbacks=(), run_dir=None, progress: bool = True, checkpoint_every: int = 1,
        resume_from=None, config: dict | None = None, teacher=None,
        distillation: dict | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs, evaluating on ``test_loader`` after each.

    Args:
        model: the :class:`~tinybnn.nn.Module` to train (in place).
        train_loader, test_loader: iterables of ``(x, y)`` NumPy batches with ``len()``
            (:class:`~tinybnn.data.DataLoader`).
        optimizer: an optimizer over the model's parameters (``tinybnn.optim``).
        epochs: the total number of epochs, counting those done before a resume.
        scheduler: a learning-rate schedule with ``step()``, or None.
        schedule_unit: ``"epoch"`` calls ``scheduler.step()`` after every epoch, ``"step"``
            after every optimizer step.
        loss_fn: ``loss_fn(logits, labels) -> scalar Tensor``; default cross-entropy.
        grad_clip: clip the global gradient norm to this value before each step (None: off).
        callbacks: :class:`~tinybnn.train.Callback` instances.
        run_dir: a folder for ``config.json``, ``metrics.jsonl``, ``checkpoint.npz`` and
            ``curves.png`` (created if missing); None writes nothing.
        progress: show a tqdm progress bar per epoch (loss, accuracy, learning rate).
        checkpoint_every: write the checkpoint every this many epochs; the last epoch is always
            written; 0 writes only at the end. Needs ``run_dir``. ``curves.png`` is drawn with
            the last checkpoint, and before that at most every ``CURVES_MIN_INTERVAL`` seconds.
        resume_from: a checkpoint path; training continues at the epoch after the one it holds,
            with the exact state it was saved in (same results as an uninterrupted run, given
            the same model, loaders, optimizer and schedule construction).
        config: a JSON-able dict describing the run, stored in ``config.json`` and in the
            checkpoint (``tinybnn eval`` rebuilds the model from it). On resume, defaults to the
            checkpoint's config.
        teacher: knowledge distillation (Hinton et al., 2015; BNext trains this way): a trained
            :class:`~tinybnn.nn.Module` (run in eval mode during fit, then put back in its
            mode; never updated, no graph recorded) or any callable from an input batch to
            (N, C) logits. The training loss becomes :func:`~tinybnn.train.distillation_loss` of
            the model's and the teacher's logits and the labels; ``loss_fn`` must then be left
            at its default, and the test loss stays the cross-entropy.
        distillation: keyword arguments of ``distillation_loss`` (``alpha``, ``temperature``;
            defaults 0.5 and 4.0); only with a ``teacher``.

    Returns:
        The :class:`~tinybnn.train.History`, one record per epoch (those restored from the
        checkpoint included).
    """
    callbacks = list(callbacks)
    reuse_freed_memory()                # every step frees and reallocates the same arrays
    _check_fit_arguments(epochs, schedule_unit, grad_clip, checkpoint_every, callbacks)
    _check_distillation(teacher, distillation, loss_fn)
    history = History()
    state = TrainState(model=model, optimizer=optimizer, scheduler=scheduler, epochs=int(epochs),
                       history=history)
    generators = random_generators(model, train_loader)

    start = 0
    if resume_from is not None:
        checkpoint = load_checkpoint(resume_from)
        checkpoint.restore(model, optimizer, scheduler)
        restore_rng_states(generators, checkpoint.rng_states, checkpoint.path)
        history.extend(checkpoint.history)
        start, state.step = checkpoint.epoch, checkpoint.step
        if config is None:
            config = checkpoint.config
    config = dict(config or {})

    run = RunDir(run_dir) if run_dir is not None else None
    if run is not None:
        run.write_config(config)
        run.write_metrics(history)

    flips = FlipTracker(model, optimizer)
    last_drawn = time.perf_counter()
    for callback in callbacks:
        callback.on_fit_begin(state)

    for epoch in range(start, epochs):
        state.epoch = epoch
        advance_schedules(model, epoch, epochs)
        for callback in callbacks:
            callback.on_epoch_begin(state)
        started = time.perf_counter()
        lr = current_lr(optimizer)

        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, leave=True, dynamic_ncols=True)
        try:
            with _teacher_in_eval_mode(teacher):
                train_loss, train_acc = train_one_epoch(
                    model, train_loader, optimizer, state, loss_fn=loss_fn, scheduler=scheduler,
                    schedule_unit=schedule_unit, grad_clip=grad_clip, flips=flips,
                    callbacks=callbacks, bar=bar, teacher=teacher, distillation=distillation)
            if scheduler is not None and schedule_unit == "epoch":
                scheduler.step()
            test_loss, test_acc = evaluate(model, test_loader, loss_fn)
            bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{100 * train_acc:.1f}%",
                            lr=f"{lr:.3g}" if lr is not None else "-",
                            test_acc=f"{100 * test_acc:.1f}%")
        finally:
            bar.close()

        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": lr,
            "seconds": time.perf_counter() - started,
            "flip_ratio": flips.epoch_means(),
        }
        history.append(record)
        if run is not None:
            run.append_metrics(record)
        for callback in callbacks:
            callback.on_epoch_end(state, record)

        last = epoch + 1 == epochs or state.stop_training
        due = bool(checkpoint_every) and (epoch + 1) % checkpoint_every == 0
        if run is not None and (last or due):
            save_checkpoint(run.checkpoint_path, model, optimizer, scheduler, epoch=epoch + 1,
                            config=config, step=state.step, history=history,
                            rng_states=capture_rng_states(generators))
            if last or time.perf_counter() - last_drawn >= CURVES_MIN_INTERVAL:
                save_curves(history, run.curves_path)
                last_drawn = time.perf_counter()
        if state.stop_training:
            break

    for callback in callbacks:
        callback.on_fit_end(state)
    return history
