"""Gradient metrics: how similar two gradients are, how much of a gradient the estimator zeroed.

Every function takes NumPy/CuPy arrays or Tensors (their ``.data`` is used) and returns a Python
float (or a NumPy array for the per-step helpers). Norms and dot products are computed in float64.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from ..backend import to_numpy


def _array(a) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.data
    return np.asarray(to_numpy(a), dtype=np.float64)


def norm(a) -> float:
    """‖a‖₂ over all elements (the Frobenius norm of a matrix)."""
    return float(np.sqrt((_array(a) ** 2).sum()))


def cosine_similarity(a, b) -> float:
    """cos∠(a, b) = ⟨a, b⟩ / (‖a‖ ‖b‖) of two arrays of the same shape, seen as flat vectors.

    1 means the same direction, 0 orthogonal, −1 opposite. Returns NaN when either is all zero
    (the angle is undefined). The paper's Fig. F plots it between the main and auxiliary weight
    gradients of SURGE.
    """
    a, b = _array(a), _array(b)
    if a.shape != b.shape:
        raise ValueError(f"cosine_similarity needs arrays of the same shape, got {a.shape} and "
                         f"{b.shape}")
    na, nb = np.sqrt((a * a).sum()), np.sqrt((b * b).sum())
    if na == 0 or nb == 0:
        return float("nan")
    return float((a * b).sum() / (na * nb))


def fraction_zero(grad) -> float:
    """Fraction of the elements of ``grad`` that are exactly 0."""
    g = _array(grad)
    return float((g == 0).mean()) if g.size else float("nan")


def fraction_zeroed(grad, upstream=None) -> float:
    """Fraction of a gradient zeroed by clipping.

    Without ``upstream``: the fraction of exact zeros in ``grad`` (for a clipped STE, the inputs
    with |x| > 1 when the incoming gradient has no zeros of its own). With ``upstream`` (the
    gradient *before* the estimator, same shape): the fraction of positions where ``upstream``
    was non-zero but ``grad`` is zero, i.e. the information the estimator actually threw away.
    """
    g = _array(grad)
    if upstream is None:
        return fraction_zero(g)
    u = _array(upstream)
    if u.shape != g.shape:
        raise ValueError(f"fraction_zeroed: grad {g.shape} and upstream {u.shape} differ")
    return float(((u != 0) & (g == 0)).mean()) if g.size else float("nan")


def fraction_clipped(x, clip: float = 1.0) -> float:
    """Fraction of the inputs ``x`` outside the STE window, |x| > ``clip`` (whose gradient a
    clipped STE sets to zero, Eq. 4)."""
    v = _array(x)
    return float((np.abs(v) > clip).mean()) if v.size else float("nan")


def summarize(grad) -> dict:
    """The summary a probe keeps for every gradient: ``count`` (elements), ``mean``, ``std``,
    ``norm``, ``abs_max``, ``frac_zero``."""
    g = _array(grad)
    if g.size == 0:
        return {"count": 0, "mean": float("nan"), "std": float("nan"), "norm": 0.0,
                "abs_max": float("nan"), "frac_zero": float("nan")}
    return {"count": int(g.size), "mean": float(g.mean()), "std": float(g.std()),
            "norm": float(np.sqrt((g * g).sum())), "abs_max": float(np.abs(g).max()),
            "frac_zero": float((g == 0).mean())}


def layer_norms(probes) -> dict[str, np.ndarray]:
    """Per-layer gradient norms over time: ``{name: array of norms, one per recorded step}`` for a
    dict of probes (e.g. :attr:`GradientRecorder.probes` flattened, or any ``{name: probe}``)."""
    return {name: probe.series("norm") for name, probe in probes.items()}
