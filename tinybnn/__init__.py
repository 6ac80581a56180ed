"""tinybnn: a from-scratch, readable engine for Binary Neural Networks."""

from .backend import prefer_sleeping_numba_threads, prefer_wide_vectors

prefer_sleeping_numba_threads()       # before any Numba kernel is compiled or launched
prefer_wide_vectors()

from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .errors import CheckpointError, ConfigError, DatasetError, ShapeError, TinyBNNError
from .random import default_rng, manual_seed
from . import functional
from . import nn
from . import quant
from . import optim
from . import gradcheck
from . import surge

__version__ = "0.1.0"
