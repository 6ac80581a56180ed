"""Deployment: the model summary (parameters, memory, BOPs/FLOPs/OPs)."""

from .summary import LayerSummary, Summary, summary
