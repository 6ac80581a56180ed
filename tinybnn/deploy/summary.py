"""Model summary: parameters, memory and multiply-accumulates per precision, layer by layer.

What a binary network costs is not its parameter count: a binary weight takes 1 bit instead of 32,
and a multiply-accumulate (MAC) between a binary input and a binary weight is one bit of an
XNOR-popcount (64 of them per 64-bit instruction) instead of a float multiply-add. The summary
counts both, in the style of Larq's ``model.summary()``::

    >>> from tinybnn.deploy import summary
    >>> s = summary(model, input_shape=(3, 32, 32))
    >>> print(s)                        # the table
    >>> s.total_params, s.binary_macs, s.compression_ratio

How it counts
-------------
*Layers.* A layer is a module that is not a quantizer and either owns parameters or has no child
modules other than quantizers (so ``Conv2d``, ``BinaryConv2d``, ``BatchNorm2d``, ``ReLU``,
``AvgPool2d`` are layers; ``Sequential`` and residual blocks are containers). The parameters of a
layer's quantizers (a learnable threshold, a scale) are counted with the layer. Arithmetic written
directly in a container's ``forward`` (the ``+`` of a shortcut) is not counted: it costs no MACs.

*Output shapes* come from one forward pass on zeros of shape (1, *input_shape), run in evaluation
mode without recording gradients (no batch-norm statistics change), with a forward hook on every
layer. The batch axis is shown as −1.

*Parameters* are the trainable ones (what ``model.num_parameters()`` counts and what the papers
report). A latent weight (``Parameter.binary``) binarized by a 1-bit weight quantizer is stored
with 1 bit; every other parameter with 32 (a k-bit quantizer stores k bits). Batch-norm running
statistics are not counted: for inference they fold into the batch norm's scale and shift, which
γ and β already count.

*MACs.* A layer whose ``weight`` has 2 dimensions (linear: (out, in)) or 4 (convolution:
(out, in/groups, kh, kw)) does, per image, one MAC per weight element for each output position:
``MACs = (output elements / out) · weight elements = output elements · prod(weight.shape[1:])``.
A MAC's precision is max(input precision, weight precision): the input precision is the bit width
of the layer's ``input_quantizer`` (32 when it has none) and the weight precision that of its
``weight_quantizer``. So only a layer that binarizes both does binary MACs (BOPs); a W1A32 layer
does float MACs.

*Totals.* Memory = Σ parameters × bits; the float-32 equivalent stores every parameter with 32
bits; compression ratio = float-32 size / actual size. Following Bi-Real Net (Liu et al. 2018) and
the later papers (ReActNet, BNext), OPs = BOPs/64 + FLOPs, where FLOPs are the float MACs; MACs at
2–8 bits count as QOPs/8 (BNext's convention for its 8-bit parts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autograd import Tensor, no_grad
from ..nn.module import Module
from ..quant.base import Quantizer

FLOAT_BITS = 32


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerSummary:
    """One row of the summary.

    Attributes:
        name: the dotted path of the layer in the model (``"layer1.0.conv1"``).
        type: the class name.
        output_shape: the output's shape with the batch axis as −1, or ``None`` if the forward
            pass did not call the layer.
        input_bits: precision of the values the layer computes with (1 for a binarized input, 32
            otherwise).
        weight_bits: precision of its weights (1 for binarized weights; 32 otherwise or if none).
        params: trainable parameter counts by bit width, e.g. ``{1: 2304, 32: 0}``.
        macs: multiply-accumulates per image by precision, e.g. ``{1: 589824}``.
    """

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    input_bits: int = FLOAT_BITS
    weight_bits: int = FLOAT_BITS
    params: dict[int, int] = field(default_factory=dict)
    macs: dict[int, int] = field(default_factory=dict)

    @property
    def num_params(self) -> int:
        return sum(self.params.values())

    @property
    def memory_bits(self) -> int:
        """Bits needed to store the layer's parameters."""
        return sum(bits * n for bits, n in self.params.items())

    @property
    def binary_macs(self) -> int:
        return self.macs.get(1, 0)

    @property
    def float_macs(self) -> int:
        return sum(n for bits, n in self.macs.items() if bits > 8)

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type,
                "output_shape": None if self.output_shape is None else list(self.output_shape),
                "input_bits": self.input_bits, "weight_bits": self.weight_bits,
                "params": {str(b): n for b, n in sorted(self.params.items())},
                "memory_bits": self.memory_bits,
                "macs": {str(b): n for b, n in sorted(self.macs.items())},
                "binary_macs": self.binary_macs, "float_macs": self.float_macs}


@dataclass
class Summary:
    """The summary of a model: its layers and the totals.

    Attributes:
        model_name: the model's class name.
        input_shape: the per-image input shape the forward pass used.
        layers: one :class:`LayerSummary` per layer, in module order.
    """

    model_name: str
    input_shape: tuple[int, ...]
    layers: list[LayerSummary]

    # -- parameters and memory --------------------------------------------------------------
    def params_by_bits(self) -> dict[int, int]:
        """Total trainable parameters by storage bit width."""
        return _sum_dicts(layer.params for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(self.params_by_bits().values())

    @property
    def binary_params(self) -> int:
        """Parameters stored with 1 bit."""
        return self.params_by_bits().get(1, 0)

    @property
    def float_params(self) -> int:
        """Parameters stored with 32 bits."""
        return self.params_by_bits().get(FLOAT_BITS, 0)

    @property
    def memory_bits(self) -> int:
        return sum(layer.memory_bits for layer in self.layers)

    @property
    def memory_bytes(self) -> float:
        return self.memory_bits / 8

    @property
    def float32_memory_bytes(self) -> float:
        """What the same parameters take with 32 bits each."""
        return self.total_params * FLOAT_BITS / 8

    @property
    def compression_ratio(self) -> float:
        """Float-32 size / actual size (1.0 for a real-valued model; about 32 at best)."""
        return self.float32_memory_bytes / self.memory_bytes if self.memory_bits else 1.0

    # -- arithmetic -------------------------------------------------------------------------
    def macs_by_bits(self) -> dict[int, int]:
        """Total MACs per image by precision."""
        return _sum_dicts(layer.macs for layer in self.layers)

    @property
    def binary_macs(self) -> int:
        """BOPs: 1-bit MACs per image."""
        return self.macs_by_bits().get(1, 0)

    @property
    def quantized_macs(self) -> int:
        """QOPs: MACs at 2 to 8 bits per image."""
        return sum(n for bits, n in self.macs_by_bits().items() if 1 < bits <= 8)

    @property
    def float_macs(self) -> int:
        """FLOPs (as the BNN papers count them): float MACs per image."""
        return sum(n for bits, n in self.macs_by_bits().items() if bits > 8)

    @property
    def total_macs(self) -> int:
        return sum(self.macs_by_bits().values())

    @property
    def ops(self) -> float:
        """OPs = BOPs/64 + QOPs/8 + FLOPs (Bi-Real Net's convention, BNext's QOPs term)."""
        return self.binary_macs / 64 + self.quantized_macs / 8 + self.float_macs

    @property
    def binarized_mac_ratio(self) -> float:
        """Fraction of the MACs that are binary."""
        return self.binary_macs / self.total_macs if self.total_macs else 0.0

    # -- output -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Layers and totals as plain JSON-ready values."""
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": {
                "params": self.total_params,
                "params_by_bits": {str(b): n for b, n in sorted(self.params_by_bits().items())},
                "binary_params": self.binary_params,
                "float_params": self.float_params,
                "memory_bytes": self.memory_bytes,
                "float32_memory_bytes": self.float32_memory_bytes,
                "compression_ratio": self.compression_ratio,
                "macs_by_bits": {str(b): n for b, n in sorted(self.macs_by_bits().items())},
                "binary_macs": self.binary_macs,
                "quantized_macs": self.quantized_macs,
                "float_macs": self.float_macs,
                "ops": self.ops,
                "binarized_mac_ratio": self.binarized_mac_ratio,
            },
        }

    def __str__(self) -> str:
        return _format_table(self)

    def __repr__(self) -> str:
        return (f"Summary({self.model_name}, input_shape={self.input_shape}, "
                f"params={self.total_params}, memory={_human_bytes(self.memory_bytes)}, "
                f"BOPs={self.binary_macs}, FLOPs={self.float_macs})")


def _sum_dicts(dicts) -> dict[int, int]:
    total: dict[int, int] = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0) + value
    return total


# ---------------------------------------------------------------------------------------------
# Walking the model
# ---------------------------------------------------------------------------------------------


def _is_layer(module: Module) -> bool:
    """Not a quantizer, and owns parameters or has no children other than quantizers."""
    if isinstance(module, Quantizer):
        return False
    if module._parameters:
        return True
    return all(isinstance(child, Quantizer) for child in module.children())


def _quantizer_bits(module: Module, role: str) -> int:
    """Bit width of ``module.<role>`` (a quantizer), 32 if the layer has none."""
    quantizer = getattr(module, role, None)
    if isinstance(quantizer, Quantizer):
        return int(getattr(quantizer, "bits", 1))
    return FLOAT_BITS


def _layer_parameters(module: Module):
    """The layer's own trainable parameters and those of its quantizers (names irrelevant)."""
    params = [p for p in module._parameters.values() if p is not None]
    for child in module.children():
        if isinstance(child, Quantizer):
            params += list(child.parameters())
    return [p for p in params if p.requires_grad]


def _storage_bits(p, module: Module) -> int:
    """1 bit (or k) for a latent weight the layer binarizes (k-bit quantizes), 32 otherwise."""
    if not getattr(p, "binary", False):
        return FLOAT_BITS
    if hasattr(module, "weight_quantizer"):
        return _quantizer_bits(module, "weight_quantizer")
    return 1  # a binary parameter of a layer that quantizes it its own way


def _macs_per_image(module: Module, output) -> int:
    """Output elements × weight elements per output channel (see the module docstring)."""
    weight = getattr(module, "weight", None)
    if weight is None or not isinstance(output, Tensor) or weight.ndim not in (2, 4):
        return 0
    per_output = int(np.prod(weight.shape[1:]))
    batch = output.shape[0] if output.ndim > 1 else 1
    return int(np.prod(output.shape)) // batch * per_output


def summary(model: Module, input_shape) -> Summary:
    """Summarize ``model`` for one input of shape ``input_shape`` (no batch axis, e.g.
    (3, 32, 32)): per layer output shape, parameters by bit width, memory, binary and float MACs;
    totals with compression ratio and OPs. See the module docstring for what is counted how.
    """
    input_shape = tuple(int(n) for n in input_shape)
    layers: dict[int, LayerSummary] = {}
    removers = []
    order = []
    for name, module in model.named_modules():
        if not _is_layer(module) or id(module) in layers:
            continue
        in_bits = _quantizer_bits(module, "input_quantizer")
        w_bits = _quantizer_bits(module, "weight_quantizer")
        params: dict[int, int] = {}
        for p in _layer_parameters(module):
            bits = _storage_bits(p, module)
            params[bits] = params.get(bits, 0) + p.size
        row = LayerSummary(name=name or type(module).__name__, type=type(module).__name__,
                           output_shape=None, input_bits=in_bits,
                           weight_bits=w_bits if getattr(module, "weight", None) is not None
                           else FLOAT_BITS,
                           params=params)
        layers[id(module)] = row
        order.append(row)
        removers.append(module.register_forward_hook(_make_hook(row)))

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.zeros((1, *input_shape), dtype=np.float32)))
    finally:
        for remove in removers:
            remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    return Summary(model_name=type(model).__name__, input_shape=input_shape, layers=order)


def _make_hook(row: LayerSummary):
    def hook(module, inputs, output):
        if isinstance(output, Tensor):
            row.output_shape = (-1, *output.shape[1:])
        macs = _macs_per_image(module, output)
        if macs:
            bits = max(row.input_bits, row.weight_bits)
            row.macs[bits] = row.macs.get(bits, 0) + macs  # a layer called twice counts twice

    return hook


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _human(n: float) -> str:
    """3 significant figures with k/M/G (1234567 -> '1.23 M')."""
    for factor, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n:.4g}" if isinstance(n, float) and not float(n).is_integer() else f"{int(n)}"


def _human_bytes(n: float) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n:.0f} B"


def _format_table(s: Summary) -> str:
    param_bits = sorted(set(s.params_by_bits()) | {1, FLOAT_BITS})
    mac_bits = sorted(set(s.macs_by_bits()) | {1, FLOAT_BITS})
    header = (["Layer", "Type", "Input prec. (bit)", "Outputs"]
              + [f"# {b}-bit" for b in param_bits] + ["Memory (KiB)"]
              + [f"{b}-bit MACs" for b in mac_bits])
    rows = []
    for layer in s.layers:
        shape = "?" if layer.output_shape is None else str(layer.output_shape).replace(" ", "")
        rows.append([layer.name, layer.type,
                     "-" if layer.input_bits == FLOAT_BITS else str(layer.input_bits), shape]
                    + [str(layer.params.get(b, 0)) for b in param_bits]
                    + [f"{layer.memory_bits / 8 / 1024:.2f}"]
                    + [str(layer.macs.get(b, 0)) for b in mac_bits])
    params, macs = s.params_by_bits(), s.macs_by_bits()
    total = (["Total", "", "", ""] + [str(params.get(b, 0)) for b in param_bits]
             + [f"{s.memory_bytes / 1024:.2f}"] + [str(macs.get(b, 0)) for b in mac_bits])

    widths = [max(len(r[i]) for r in [header, total] + rows) for i in range(len(header))]

    def line(cells):
        # text columns left-aligned, numbers right-aligned
        return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    title = f"+{s.model_name} summary (input {s.input_shape})"
    out = [title + "-" * max(0, len(rule) - len(title) - 1) + "+", line(header), rule]
    out += [line(r) for r in rows]
    out += [rule, line(total), rule]

    stats = [
        ("Total params", f"{s.total_params:,}"),
        ("1-bit params", f"{s.binary_params:,}"),
        ("32-bit params", f"{s.float_params:,}"),
        ("Model size", _human_bytes(s.memory_bytes)),
        ("Float-32 equivalent", _human_bytes(s.float32_memory_bytes)),
        ("Compression ratio (float-32 / size)", f"{s.compression_ratio:.2f}"),
        ("Binary MACs (BOPs)", _human(s.binary_macs)),
        ("Float MACs (FLOPs)", _human(s.float_macs)),
        ("OPs = BOPs/64 + FLOPs", _human(s.ops)),
        ("Ratio of MACs that are binarized", f"{s.binarized_mac_ratio:.4f}"),
    ]
    if s.quantized_macs:
        stats.insert(8, ("2-8-bit MACs (QOPs)", _human(s.quantized_macs)))
        stats[-2] = ("OPs = BOPs/64 + QOPs/8 + FLOPs", _human(s.ops))
    key_w = max(len(k) for k, _ in stats)
    val_w = max(len(v) for _, v in stats)
    box = f"+{s.model_name} stats"
    inner = key_w + val_w + 5
    out.append(box + "-" * max(0, inner - len(box) + 1) + "+")
    out += [f"| {k.ljust(key_w)}   {v.rjust(val_w)} |" for k, v in stats]
    out.append("+" + "-" * inner + "+")
    return "\n".join(out)
