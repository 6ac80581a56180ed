"""The run directory: everything one training run leaves on disk.

::

    runs/binary_mlp-digits-20250101-120000/
        config.json       how the run was built (model, data, optimizer, seed, ...)
        metrics.jsonl     one JSON line per finished epoch (the History)
        checkpoint.npz    the latest checkpoint (see tinybnn.train.checkpoint)
        curves.png        loss, accuracy and flip ratio per epoch

``config.json``, ``checkpoint.npz`` and ``curves.png`` are replaced atomically; ``metrics.jsonl``
is rewritten from the history when a run starts or resumes, then grows by one line per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import atomic_write


class RunDir:
    """Paths and writers of a run directory (created, with its parents, if missing)."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    CHECKPOINT = "checkpoint.npz"
    CURVES = "curves.png"

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def curves_path(self) -> Path:
        return self.path / self.CURVES

    def write_config(self, config: dict) -> None:
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        atomic_write(self.config_path, lambda fh: fh.write(text.encode("utf-8")))

    def write_metrics(self, history) -> None:
        """Replace ``metrics.jsonl`` by the given history (empty for a new run)."""
        text = "".join(json.dumps(record) + "\n" for record in history)
        atomic_write(self.metrics_path, lambda fh: fh.write(text.encode("utf-8")))

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
