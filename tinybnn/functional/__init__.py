"""Functional interface: every differentiable operation as a plain function (``import
tinybnn.functional as F``). The Functions themselves live in the family modules below."""

from .math import (abs, cat, clip, concat, exp, log, sqrt, stack, stop_gradient,  # noqa: A004
                   unbroadcast, where)
from .activation import (dropout, gelu, hardtanh, log_softmax, prelu, relu, sigmoid, softmax,
                         tanh)
from .linear import linear
from .loss import cross_entropy, mse_loss
from .conv import conv2d, conv2d_col2im, conv2d_im2col, conv_output_size, pad
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .norm import batch_norm, layer_norm
