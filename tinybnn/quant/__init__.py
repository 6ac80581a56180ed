"""Binarization estimators and quantizers, each a Function with an explicit surrogate backward,
registered by name (``make_quantizer("ste_sign")``).

- :mod:`.sign`: sign (sign(0) = +1) and the clipped STE;
- :mod:`.activation`: identity STE, ApproxSign, SwishSign, EDE, ReCU's activations, RSign,
  Heaviside, BiT's elastic binarizer;
- :mod:`.weight`: XNOR, magnitude-aware sign, IR-Net's Libra-PB, ReCU, BNext's progressive
  binarization;
- :mod:`.multibit`: DoReFa k-bit activations and weights, LSQ;
- :mod:`.gste`: generalized STEs with a shape parameter a (SLSTE, PLSTE, DLSTE).

``describe()`` lists every registered name with its kind and a one-line formula.
"""

from .base import Quantizer, advance_schedules, available, make_quantizer, register
from .sign import SignSTE, SteSign, sign, ste_sign
from .base import channel_shape, describe, reduce_to_channels
from .activation import (ApproxSign, ApproxSignQuantizer, EDE, EDESign, Elastic, ElasticBinarize,
                         Heaviside, HeavisideSTE, IdentitySte, RecuAct, RSign, RSignFn, ScaleByStd,
                         SwishSign, SwishSignQuantizer, approx_sign, ede_schedule, ede_sign,
                         elastic_binarize, heaviside, identity_ste, recu_act, rsign, swish_sign)
from .weight import (IrnetWeight, MagnitudeAware, MagnitudeAwareSign, Progressive, ProgressiveSign,
                     RecuWeight, Standardize, XnorSign, XnorWeightQuantizer, irnet_weight,
                     magnitude_aware_sign, mean_abs_per_channel, power_of_two_scale,
                     progressive_sign, recu_tau, recu_weight, standardize, xnor_weight)
from .multibit import (LSQ, DorefaAct, DorefaActFn, DorefaSign, DorefaWeight, LSQFn, QuantizeK,
                       dorefa_act, dorefa_weight, lsq, lsq_levels)
from .gste import (DLSTE, PLSTE, SLSTE, ShapedQuantizer, ShapedSign, dual_pwl_surrogate,
                   slste_surrogate)
