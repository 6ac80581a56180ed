"""Deployment: the model summary (parameters, memory, BOPs/FLOPs/OPs) and the export to a
bit-packed inference model."""

from .summary import LayerSummary, Summary, summary
from .export import InferenceModel, export, export_checkpoint, export_command
