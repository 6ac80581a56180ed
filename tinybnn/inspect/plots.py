"""Plots of gradients and of SURGE's scale λ. Each function returns a ``matplotlib`` Figure.

The figures are made with ``matplotlib.figure.Figure`` directly, not with ``pyplot``: nothing is
registered globally, so the helpers work with the non-interactive Agg backend (tests, servers) and
never leak open figures. They are :class:`NotebookFigure` s, Figures that also know how to show
themselves as a PNG, so in Jupyter ending a cell with the figure displays it (no ``%matplotlib``
needed); in a script, ``fig.savefig("name.png")``. Make your own with :func:`figure`.

Every function takes an optional ``ax`` to draw into an existing Axes (then its Figure is
returned).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import io

import numpy as np
from matplotlib.figure import Figure

from ..autograd import Tensor
from ..backend import to_numpy


class NotebookFigure(Figure):
    """A matplotlib Figure that IPython/Jupyter displays as a PNG (``_repr_png_``), whatever the
    matplotlib backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()


def figure(figsize=(5.5, 3.8), **options) -> NotebookFigure:
    """A new :class:`NotebookFigure` with constrained layout (add axes with ``fig.subplots``)."""
    options.setdefault("layout", "constrained")
    return NotebookFigure(figsize=figsize, **options)


def _values(a) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.data
    return np.asarray(to_numpy(a), dtype=np.float64)


def _axes(ax, figsize=(5.5, 3.8)):
    if ax is not None:
        return ax.figure, ax
    fig = figure(figsize=figsize)
    return fig, fig.add_subplot()


def gradient_histograms(grads: Mapping[str, object], bins: int = 60, log: bool = True,
                        ax=None, title: str = "gradient histogram") -> Figure:
    """Overlaid histograms of gradient values, one per label (e.g. "STE" vs "STE+SURGE").

    The exact zeros (the positions a clipped estimator cut off) are counted apart and reported in
    the legend, because on a log axis a spike at 0 hides everything else.
    """
    fig, ax = _axes(ax)
    arrays = {k: _values(v).ravel() for k, v in grads.items()}
    nonzero = np.concatenate([a[a != 0] for a in arrays.values()] or [np.zeros(0)])
    edges = np.linspace(nonzero.min(), nonzero.max(), bins + 1) if nonzero.size else bins
    for label, a in arrays.items():
        zeros = float((a == 0).mean()) if a.size else 0.0
        ax.hist(a[a != 0], bins=edges, histtype="step", linewidth=1.5,
                label=f"{label} ({100 * zeros:.0f}% exactly 0)")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("gradient value")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def gradient_cdfs(grads: Mapping[str, object], absolute: bool = True, ax=None,
                  title: str = "gradient CDF") -> Figure:
    """Empirical CDFs of |g| (or g), one per label. A clipped STE shows a jump at 0 of the height
    of the zeroed fraction; SURGE's compensation removes it."""
    fig, ax = _axes(ax)
    for label, g in grads.items():
        a = np.sort(np.abs(_values(g).ravel()) if absolute else _values(g).ravel())
        if a.size == 0:
            continue
        ax.step(a, np.arange(1, a.size + 1) / a.size, where="post", label=label)
    if absolute:
        ax.set_xscale("symlog", linthresh=1e-6)
    ax.set_xlabel("|gradient|" if absolute else "gradient")
    ax.set_ylabel("fraction ≤ value")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def gradient_heatmaps(maps: Mapping[str, object], steps: Sequence | None = None,
                      title: str = "activation gradients", unit_label: str = "unit",
                      log: bool = True, dynamic_range: float = 1e5) -> Figure:
    """One heatmap per label of a (steps, units) array of gradients (e.g. the gradient flowing
    into a hidden layer at every training step), with a shared colour scale centred on 0.

    White is *exactly* zero, so the positions a clipped STE cut off show as white areas. With
    ``log=True`` (default) the colours follow a symmetric log scale over ``dynamic_range``
    (values below max/dynamic_range are drawn linearly), so that a small compensation such as
    SURGE's λ·g_a is visible next to the large STE gradients.
    """
    from matplotlib.colors import Normalize, SymLogNorm

    labels = list(maps)
    fig = figure(figsize=(4.2 * len(labels) + 0.8, 3.6))
    axes = fig.subplots(1, len(labels), squeeze=False)[0]
    mats = [_values(maps[k]) for k in labels]
    mats = [m.reshape(m.shape[0], -1) for m in mats]
    scale = max([float(np.abs(m).max()) for m in mats if m.size] + [1e-12])
    norm = (SymLogNorm(linthresh=scale / dynamic_range, vmin=-scale, vmax=scale, base=10)
            if log else Normalize(vmin=-scale, vmax=scale))
    image = None
    for ax, label, m in zip(axes, labels, mats):
        extent = None
        if steps is not None and len(steps):
            extent = (-0.5, m.shape[1] - 0.5, steps[-1], steps[0])
        image = ax.imshow(m, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest",
                          extent=extent)
        ax.set_title(f"{label} ({100 * float((m == 0).mean()):.0f}% zero)")
        ax.set_xlabel(unit_label)
        ax.set_ylabel("step")
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), shrink=0.85, label="∂L/∂x")
        if log:  # a few readable ticks: ±max, ±max/100, ±max/10⁴, 0
            mags = [scale * 10.0 ** -k for k in range(0, int(np.log10(dynamic_range)) + 1, 2)]
            bar.set_ticks(sorted([-m for m in mags] + [0.0] + mags))
            bar.ax.tick_params(labelsize=7)
    fig.suptitle(title)
    return fig


def curves(series: Mapping[str, object], xlabel: str = "step", ylabel: str = "",
           logy: bool = False, ax=None, title: str = "", band: Mapping[str, object] | None = None,
           colors: Mapping[str, str] | None = None) -> Figure:
    """Line plot of named series. A value may be an array (x = 0, 1, ...) or a pair
    ``(x, y)``; ``band`` maps a label to ``(low, high)`` arrays shaded around its line (e.g. the
    spread over seeds); ``colors`` fixes a label's colour (the same method, the same colour, in
    every panel)."""
    fig, ax = _axes(ax)
    for label, s in series.items():
        if isinstance(s, tuple) and len(s) == 2:
            x, y = np.asarray(s[0]), _values(s[1])
        else:
            y = _values(s)
            x = np.arange(len(y))
        color = colors.get(label) if colors else None
        (line,) = ax.plot(x, y, label=label, linewidth=1.4, color=color)
        if band and label in band:
            low, high = band[label]
            ax.fill_between(x, _values(low), _values(high), color=line.get_color(), alpha=0.15,
                            linewidth=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if series:
        ax.legend(fontsize=8)
    return fig


def lambda_curves(history: Mapping[str, object], ax=None, title: str = "SURGE λ per layer"
                  ) -> Figure:
    """λ over the training steps, one line per layer (or per method), on a log axis."""
    return curves(history, ylabel="λ", logy=True, ax=ax, title=title)


def norm_curves(history: Mapping[str, object], ax=None, ylabel: str = "gradient norm",
                title: str = "per-layer norms", logy: bool = True) -> Figure:
    """Norms over the training steps (gradient norms from probes, or weight norms), one line
    per layer."""
    return curves(history, ylabel=ylabel, logy=logy, ax=ax, title=title)
