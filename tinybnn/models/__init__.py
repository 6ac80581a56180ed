"""Model zoo: builders registered by name (``make_model``)."""

from .registry import available_models, make_model, register_model
from .mlp import binary_mlp, mlp
from .resnet import resnet18, resnet20
from .vgg import vgg_small
from .cnn import binary_cnn, cnn
from .recipes import Recipe, available_recipes, get_recipe
from . import beale  # the SURGE toy problem (not a classifier: not in the registry)
