"""Model zoo: builders registered by name (``make_model``)."""

from .registry import available_models, make_model, register_model
from .mlp import binary_mlp, mlp
