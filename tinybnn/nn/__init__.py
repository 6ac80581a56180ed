"""Layers and containers (``import tinybnn.nn as nn``), with PyTorch's names and defaults."""

from .module import Module, Parameter
from .layers import (GELU, Dropout, Flatten, Hardtanh, Identity, Linear, PReLU, ReLU, Sequential,
                     Sigmoid, Tanh)
from .binary import BinaryLinear
from . import init
from .binary import BinaryConv2d, LearnableBias, RPReLU, Scale
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
