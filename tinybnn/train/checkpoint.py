"""Checkpoints: one ``.npz`` file holding the arrays and a JSON description, never pickle.

File format (version 1)
-----------------------
A checkpoint is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` files) that
``np.load(path, allow_pickle=False)`` opens. Its entries:

=======================  ===================================================================
entry                    content
=======================  ===================================================================
``model/<name>``         every parameter and buffer of ``model.state_dict()``, by dotted name
``optimizer.<path>``     the arrays of ``optimizer.state_dict()`` (momentum buffers, ...)
``scheduler.<path>``     the arrays of ``scheduler.state_dict()``, if it has any
``__meta__``             uint8 array: the UTF-8 bytes of a JSON object, described below
=======================  ===================================================================

The JSON metadata lives *inside* the archive (rather than in a sidecar ``.json``) so that one
file is always complete: it is written to a temporary file in the same folder and renamed into
place with ``os.replace``, which replaces the old checkpoint atomically -- a crash while saving
leaves the previous checkpoint intact. The metadata::

    {"format": "tinybnn-checkpoint", "version": 1,
     "epoch": 5,                 # epochs completed; fit(resume_from=...) starts at this index
     "step": 115,                # optimizer steps completed
     "config": {...},            # how the run was built (model, data, optimizer, ...); free-form
     "model_keys": [...],        # the names of the model/... entries, in state_dict order
     "optimizer": {...} | null,  # optimizer.state_dict() with each array replaced by
     "optimizer_type": "SGD",    #   {"__array__": "<entry name>"}  (see optim.flatten_state)
     "scheduler": {...} | null,  # the same for the learning-rate schedule
     "history": [...],           # the History so far, one dict per epoch
     "rng": {...},               # states of the random generators (shuffling, augmentation)
     "tinybnn_version": "0.1.0"}

Reading a file that is missing, truncated, corrupt, or not a tinybnn checkpoint raises
:class:`~tinybnn.errors.CheckpointError` naming the file; so does restoring it into a model or
optimizer it does not fit.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import CheckpointError
from ..optim.optimizer import flatten_state, unflatten_state

FORMAT = "tinybnn-checkpoint"
VERSION = 1
META_KEY = "__meta__"
MODEL_PREFIX = "model/"

#: Errors that reading a damaged ``.npz`` can raise, from the zip layer up to the JSON parser.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


# ---------------------------------------------------------------------------------------------
# Writing files safely
# ---------------------------------------------------------------------------------------------


def atomic_write(path, write: Callable) -> None:
    """Write a file so that readers only ever see the old version or the complete new one.

    ``write(fh)`` writes the content into ``fh``, a binary file opened on a temporary file in the
    same folder as ``path`` (the same file system, so the rename below is atomic). The data is
    flushed to disk, then ``os.replace`` moves it over ``path``. If anything fails, the temporary
    file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private (0600); make it readable like others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def _json_bytes(meta: dict, path: Path) -> np.ndarray:
    """The metadata as a uint8 array of UTF-8 JSON bytes."""
    try:
        text = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save checkpoint {path}: its metadata is not plain JSON "
                              f"({e}); the config may only hold numbers, strings, booleans, None, "
                              f"lists and dicts") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch: int = 0,
                    config: dict | None = None, *, step: int = 0, history=None,
                    rng_states: dict | None = None) -> Path:
    """Save everything needed to evaluate ``model`` or to resume training into one ``.npz`` file.

    Args:
        path: the file to write (its folder must exist); replaced atomically if it exists.
        model: a :class:`~tinybnn.nn.Module`; its ``state_dict()`` is saved.
        optimizer, scheduler: saved through their ``state_dict()`` when given.
        epoch: the number of completed epochs.
        config: a JSON-able dict describing the run (``tinybnn eval`` rebuilds the model from it).
        step: the number of optimizer steps taken.
        history: the per-epoch metrics so far (a list of dicts).
        rng_states: ``{name: bit_generator.state}`` of the run's random generators.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    model_state = model.state_dict()
    for name, value in model_state.items():
        arrays[MODEL_PREFIX + name] = np.asarray(value)

    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "step": int(step),
        "config": dict(config or {}),
        "model_keys": list(model_state),
        "optimizer": None,
        "optimizer_type": None,
        "scheduler": None,
        "scheduler_type": None,
        "history": [dict(record) for record in (history or [])],
        "rng": dict(rng_states or {}),
        "tinybnn_version": _version(),
    }
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None or not hasattr(obj, "state_dict"):
            continue
        obj_arrays, obj_meta = flatten_state(obj.state_dict(), prefix=key)
        arrays.update(obj_arrays)
        meta[key] = obj_meta
        meta[f"{key}_type"] = type(obj).__name__

    arrays[META_KEY] = _json_bytes(meta, path)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))
    return path


def _version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """The content of a checkpoint file, as returned by :func:`load_checkpoint`.

    Attributes:
        path: the file it was read from.
        epoch: epochs completed when it was saved.
        step: optimizer steps completed.
        config: the run's configuration dict.
        model_state: ``{name: array}`` for ``model.load_state_dict``.
        optimizer_state, scheduler_state: for their ``load_state_dict``, or None if not saved.
        history: the per-epoch metrics up to ``epoch``.
        rng_states: ``{name: bit_generator.state}`` of the run's random generators.
        meta: the whole JSON metadata.
    """

    path: Path
    epoch: int
    step: int
    config: dict
    model_state: dict
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    history: list = field(default_factory=list)
    rng_states: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict, repr=False)

    def restore(self, model, optimizer=None, scheduler=None) -> None:
        """Load the saved states into ``model`` (and ``optimizer``, ``scheduler`` when given).

        Raises :class:`CheckpointError`, naming the file, when a state does not fit: another
        model or width, another optimizer, or an optimizer/schedule that was not saved.
        """
        try:
            model.load_state_dict(self.model_state)
            for name, obj, saved in (("optimizer", optimizer, self.optimizer_state),
                                     ("scheduler", scheduler, self.scheduler_state)):
                if obj is None:
                    continue
                if saved is None:
                    raise CheckpointError(f"it holds no {name} state, but a {name} "
                                          f"({type(obj).__name__}) was given to restore")
                saved_type = self.meta.get(f"{name}_type")
                if saved_type and saved_type != type(obj).__name__:
                    raise CheckpointError(f"its {name} is a {saved_type}, not a "
                                          f"{type(obj).__name__}; resume with the same {name}")
                obj.load_state_dict(saved)
        except CheckpointError as e:
            raise CheckpointError(f"checkpoint {self.path} does not fit: {e}") from None
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"checkpoint {self.path} does not fit: {type(e).__name__}: "
                                  f"{e}") from None


def read_npz(path: Path, kind: str, missing_hint: str, damaged_hint: str) -> dict[str, np.ndarray]:
    """Every entry of the ``.npz`` archive at ``path``, read eagerly (so that damage shows up
    here), without pickle. ``kind`` names the file in errors ("checkpoint", "exported model");
    the hints tell the user what to do when it is missing or damaged."""
    if not path.exists():
        raise CheckpointError(f"{kind} {path} does not exist; check the path ({missing_hint})")
    if not path.is_file():
        raise CheckpointError(f"{kind} {path} is not a file; give the .npz file itself")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} holds a single .npy array, not a tinybnn {kind} "
                                  f"(an .npz archive)")
        with archive:
            # Reading each member to its end also makes zipfile check its CRC-32.
            return {name: archive[name] for name in archive.files}
    except _READ_ERRORS as e:
        raise CheckpointError(f"{kind} {path} is corrupt or truncated ({type(e).__name__}: "
                              f"{e}); {damaged_hint}") from None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    return read_npz(path, "checkpoint", "a run directory keeps it as <run dir>/checkpoint.npz",
                    "it cannot be read -- use an intact copy or train again")


def read_json_meta(path: Path, arrays: dict[str, np.ndarray], kind: str, description: str):
    """Remove the ``__meta__`` entry (UTF-8 JSON bytes) from ``arrays`` and parse it.

    ``kind`` names the file in errors ("checkpoint"), ``description`` says what it should have
    been ("a tinybnn checkpoint")."""
    raw = arrays.pop(META_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path} is an .npz file but not {description}: it has no "
                              f"'{META_KEY}' metadata entry")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise CheckpointError(f"{kind} {path} has corrupt metadata ({e})") from None


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    meta = read_json_meta(path, arrays, "checkpoint", "a tinybnn checkpoint")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinybnn checkpoint (its metadata has no "
                              f"format: {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')}, this "
                              f"tinybnn reads version {VERSION}")
    return meta


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: naming ``path``, if the file is missing, truncated, corrupt, not a
            tinybnn checkpoint, or internally inconsistent.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    meta = _read_meta(path, arrays)
    try:
        model_keys = list(meta["model_keys"])
        stored = sorted(k[len(MODEL_PREFIX):] for k in arrays if k.startswith(MODEL_PREFIX))
        if sorted(model_keys) != stored:
            raise CheckpointError(f"the model entries {stored[:5]} do not match the names listed "
                                  f"in its metadata {model_keys[:5]}")
        model_state = {name: arrays[MODEL_PREFIX + name] for name in model_keys}
        optimizer_state = (unflatten_state(arrays, meta["optimizer"])
                           if meta.get("optimizer") is not None else None)
        scheduler_state = (unflatten_state(arrays, meta["scheduler"])
                           if meta.get("scheduler") is not None else None)
        return Checkpoint(path=path, epoch=int(meta["epoch"]), step=int(meta.get("step", 0)),
                          config=dict(meta.get("config") or {}), model_state=model_state,
                          optimizer_state=optimizer_state, scheduler_state=scheduler_state,
                          history=list(meta.get("history") or []),
                          rng_states=dict(meta.get("rng") or {}), meta=meta)
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {path} is inconsistent: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has incomplete metadata ({type(e).__name__}: "
                              f"{e})") from None
