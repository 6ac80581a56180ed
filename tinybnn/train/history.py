"""The metrics history of a training run, and its plot.

:func:`~tinybnn.train.fit` returns a :class:`History`: a list with one dict per epoch ::

    {"epoch": 3,                    # 1-based, as shown in the progress bar
     "train_loss": 0.41,            # mean over the epoch's training samples (training mode)
     "train_acc": 0.88,             # fraction in [0, 1]
     "test_loss": 0.35,             # evaluate(model, test_loader): eval mode, no_grad
     "test_acc": 0.91,
     "lr": 0.001,                   # learning rate at the start of the epoch (first group with one)
     "seconds": 1.7,                # wall time of the epoch, evaluation included
     "flip_ratio": {"3.weight": 0.004, ...}}   # per binary weight: mean fraction flipped per step

Each record is plain JSON (it is what ``metrics.jsonl`` holds, one line per epoch).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


class History(list):
    """A list of per-epoch metric dicts (see the module docstring), with a few helpers."""

    def column(self, key: str) -> list:
        """The values of one metric, epoch by epoch: ``history.column("test_acc")``."""
        return [record.get(key) for record in self]

    @property
    def last(self) -> dict:
        """The record of the last epoch (an empty dict before the first one)."""
        return self[-1] if self else {}

    def best(self, key: str = "test_acc", mode: str = "max") -> dict:
        """The record with the largest (``mode="max"``) or smallest (``"min"``) value of ``key``."""
        if not self:
            return {}
        pick = max if mode == "max" else min
        return pick(self, key=lambda record: record[key])

    def to_jsonl(self) -> str:
        """One JSON object per line, one line per epoch."""
        return "".join(json.dumps(record) + "\n" for record in self)

    @classmethod
    def from_jsonl(cls, text: str) -> "History":
        """Read back what :meth:`to_jsonl` wrote."""
        return cls(json.loads(line) for line in text.splitlines() if line.strip())


def save_curves(history, path) -> None:
    """Plot loss, accuracy and (for binary networks) flip ratios per epoch into a PNG file.

    Uses Matplotlib's object-oriented API with the Agg canvas, so it needs no display and leaves
    the global backend (``pyplot``, notebooks) untouched. The file is written to a temporary name
    first and renamed into place.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .checkpoint import atomic_write

    epochs = [record["epoch"] for record in history]
    layers = sorted({name for record in history for name in record.get("flip_ratio", {})})
    panels = 3 if layers else 2
    fig = Figure(figsize=(4.2 * panels, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]

    loss_ax, acc_ax = axes[0], axes[1]
    loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_ax.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    loss_ax.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train")
    acc_ax.plot(epochs, [100 * r["test_acc"] for r in history], "s-", label="test")
    acc_ax.set(title="accuracy", xlabel="epoch", ylabel="%")
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)

    if layers:
        flip_ax = axes[2]
        for name in layers:
            values = [r.get("flip_ratio", {}).get(name, math.nan) for r in history]
            # a ratio of exactly 0 has no place on a log axis: draw it as a gap
            flip_ax.plot(epochs, [v if v and v > 0 else math.nan for v in values], ".-",
                         label=name)
        flip_ax.set(title="flip ratio per step", xlabel="epoch", yscale="log")
        flip_ax.legend(fontsize="small")
        flip_ax.grid(alpha=0.3)

    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100))
