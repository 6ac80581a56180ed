"""Training: the loop, losses, metrics, callbacks, checkpoints and the run directory.

::

    from tinybnn.train import fit

    history = fit(model, train_loader, test_loader, optimizer, epochs=10, run_dir="runs/demo")
    print(history.last["test_acc"])

Modules:

- :mod:`~tinybnn.train.loop`        -- ``fit``, ``evaluate``, ``train_one_epoch``, flip ratios;
- :mod:`~tinybnn.train.losses`      -- ``cross_entropy``, ``distillation_loss``;
- :mod:`~tinybnn.train.metrics`     -- ``accuracy``, ``count_correct``, ``RunningMean``;
- :mod:`~tinybnn.train.callbacks`   -- ``Callback`` and the ``TrainState`` it receives;
- :mod:`~tinybnn.train.history`     -- ``History`` and ``save_curves`` (``curves.png``);
- :mod:`~tinybnn.train.checkpoint`  -- ``save_checkpoint``, ``load_checkpoint`` (``.npz`` + JSON);
- :mod:`~tinybnn.train.rundir`      -- ``RunDir``: the files a run leaves behind;
- :mod:`~tinybnn.train.hypergradient` -- ``GreedyHypergradient``: learns GSTE shapes (a).
"""

from .callbacks import Callback, TrainState
from .checkpoint import Checkpoint, atomic_write, load_checkpoint, save_checkpoint
from .history import History, save_curves
from .hypergradient import GreedyHypergradient
from .loop import FlipTracker, evaluate, fit, train_one_epoch
from .losses import cross_entropy, distillation_loss
from .metrics import RunningMean, accuracy, count_correct
from .rundir import RunDir

__all__ = [
    "Callback",
    "Checkpoint",
    "FlipTracker",
    "GreedyHypergradient",
    "History",
    "RunDir",
    "RunningMean",
    "TrainState",
    "accuracy",
    "atomic_write",
    "count_correct",
    "cross_entropy",
    "distillation_loss",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "save_curves",
    "train_one_epoch",
]
