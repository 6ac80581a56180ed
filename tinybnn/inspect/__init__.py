"""Gradient inspection: probes that record gradients step by step, metrics, and plots.

- :class:`GradientProbe`, :func:`probe_tensor` -- the gradient into one tensor, over time;
- :class:`GradientRecorder` -- probes on the inputs/outputs/weights of a model's layers;
- metrics -- :func:`cosine_similarity`, :func:`fraction_zeroed`, :func:`fraction_clipped`,
  :func:`norm`, :func:`layer_norms`;
- plots -- :func:`gradient_histograms`, :func:`gradient_cdfs`, :func:`gradient_heatmaps`,
  :func:`lambda_curves`, :func:`norm_curves`, :func:`curves` (each returns a Figure that Jupyter
  displays; :func:`figure` makes an empty one).
"""

from .metrics import (cosine_similarity, fraction_clipped, fraction_zero, fraction_zeroed,
                      layer_norms, norm, summarize)
from .probes import GradientProbe, GradientRecorder, probe_tensor
from .plots import (NotebookFigure, curves, figure, gradient_cdfs, gradient_heatmaps, gradient_histograms, lambda_curves,
                    norm_curves)

__all__ = ["GradientProbe", "GradientRecorder", "probe_tensor", "cosine_similarity",
           "fraction_zero", "fraction_zeroed", "fraction_clipped", "norm", "summarize",
           "layer_norms", "curves", "gradient_cdfs", "gradient_heatmaps", "gradient_histograms",
           "lambda_curves", "norm_curves", "figure", "NotebookFigure"]
