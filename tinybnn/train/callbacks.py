"""Callbacks: code that :func:`~tinybnn.train.fit` runs at fixed points of training.

Write a subclass of :class:`Callback` and override the hooks you need; each receives the
:class:`TrainState` (the model, the optimizer, where training is, the history so far)::

    class StopAt99(Callback):
        def on_epoch_end(self, state, record):
            if record["test_acc"] >= 0.99:
                state.stop_training = True      # fit returns after this epoch

    fit(model, train_loader, test_loader, optimizer, epochs=20, callbacks=[StopAt99()])

The order of calls in one run of ``fit``::

    on_fit_begin
    for each epoch:   on_epoch_begin, then for each batch: on_step_end, then on_epoch_end
    on_fit_end
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Where training is, shared with every callback.

    Attributes:
        model, optimizer, scheduler: what ``fit`` trains with.
        epochs: the total number of epochs of the run.
        epoch: the current epoch, 0-based (``epoch + 1`` is the number shown in the progress bar).
        step: optimizer steps taken so far over the whole run (also across a resume).
        history: the :class:`~tinybnn.train.History` of the finished epochs.
        stop_training: set it to True to end ``fit`` after the current epoch.
    """

    model: Any
    optimizer: Any
    scheduler: Any
    epochs: int
    epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    stop_training: bool = False


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_fit_begin(self, state: TrainState) -> None:
        """Before the first epoch (after a checkpoint given to ``resume_from`` is loaded)."""

    def on_epoch_begin(self, state: TrainState) -> None:
        """At the start of epoch ``state.epoch``, before its first batch."""

    def on_step_end(self, state: TrainState, logs: dict) -> None:
        """After each optimizer step. ``logs`` holds ``loss`` and ``acc`` of the batch, the
        ``lr`` it was trained with, and ``batch`` (its 0-based index within the epoch)."""

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        """After the epoch's evaluation. ``record`` is the epoch's entry of the history."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last epoch (or the one where ``state.stop_training`` was set)."""
