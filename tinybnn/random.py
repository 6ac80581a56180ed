"""The one source of randomness: an explicit :class:`numpy.random.Generator`.

Every random choice in tinybnn (initialisation, dropout, shuffling, augmentation) takes an ``rng``
argument; when it is ``None`` the default generator below is used. ``tinybnn.manual_seed(s)`` reseeds
it, so the same seed gives the same result.
"""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator and return it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_rng() -> np.random.Generator:
    """The current default generator."""
    return _default


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` itself if it is a Generator, a new Generator if it is an int seed, else the default."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    from .errors import ConfigError

    raise ConfigError(f"rng must be None, an int seed or a numpy.random.Generator, got "
                      f"{type(rng).__name__}")
