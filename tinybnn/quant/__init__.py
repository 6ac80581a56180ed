"""Binarization estimators and quantizers, each a Function with an explicit surrogate backward,
registered by name (``make_quantizer("ste_sign")``)."""

from .base import Quantizer, advance_schedules, available, make_quantizer, register
from .sign import SignSTE, SteSign, sign, ste_sign
