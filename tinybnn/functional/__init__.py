"""Functional interface: every differentiable operation as a plain function (``import
tinybnn.functional as F``). The Functions themselves live in the family modules below."""

from .math import (abs, cat, clip, concat, exp, log, sqrt, stack, stop_gradient,  # noqa: A004
                   unbroadcast, where)
from .activation import (dropout, gelu, hardtanh, log_softmax, prelu, relu, sigmoid, softmax,
                         tanh)
from .linear import linear
from .loss import cross_entropy, mse_loss
