"""Architecture specs: a network as a list of typed layers with shapes, in plain Python.

Parameter and multiply-accumulate counts come from a spec without allocating a weight;
``weights.py`` fills a spec with seeded weights and ``graph.py`` turns it into ONNX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Tensor:
    """A named activation; ``shape`` leaves out the (dynamic) batch dimension: (C, H, W) for images."""

    name: str
    shape: tuple[int, ...]

    @property
    def channels(self) -> int:
        return self.shape[0]


@dataclass(frozen=True)
class Conv:
    """Conv2d (no groups), optional BatchNorm, optional activation ("relu", "silu" or None)."""

    name: str
    x: Tensor
    out: Tensor
    kernel: int
    stride: int
    padding: int
    bn: bool
    bias: bool
    act: str | None

    @property
    def fan_in(self) -> int:
        return self.x.channels * self.kernel * self.kernel

    def weight_count(self) -> int:
        return self.out.channels * self.fan_in

    def params(self) -> int:
        c = self.out.channels
        return self.weight_count() + (c if self.bias else 0) + (2 * c if self.bn else 0)

    def stored_params(self, fold_bn: bool) -> int:
        c = self.out.channels
        if self.bn and not fold_bn:  # scale, shift, running mean, running var
            return self.weight_count() + (c if self.bias else 0) + 4 * c
        return self.weight_count() + (c if (self.bias or self.bn) else 0)

    def macs(self) -> int:
        return self.weight_count() * self.out.shape[1] * self.out.shape[2]


@dataclass(frozen=True)
class Add:
    """Elementwise sum of two tensors, optionally followed by an activation."""

    name: str
    a: Tensor
    b: Tensor
    out: Tensor
    act: str | None


@dataclass(frozen=True)
class MaxPool:
    name: str
    x: Tensor
    out: Tensor
    kernel: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Concat:
    """Concatenation along channels."""

    name: str
    xs: tuple[Tensor, ...]
    out: Tensor


@dataclass(frozen=True)
class Upsample:
    """Nearest-neighbour upsampling by an integer factor."""

    name: str
    x: Tensor
    out: Tensor
    scale: int


@dataclass(frozen=True)
class GlobalPool:
    """Global average pooling to a (C,) vector."""

    name: str
    x: Tensor
    out: Tensor


@dataclass(frozen=True)
class Linear:
    """A fully connected layer with bias."""

    name: str
    x: Tensor
    out: Tensor

    def params(self) -> int:
        return self.x.channels * self.out.channels + self.out.channels

    def macs(self) -> int:
        return self.x.channels * self.out.channels


@dataclass(frozen=True)
class Detect:
    """A YOLO detection head: one 1x1 conv (with bias) per level, then box decoding.

    ``anchors[i]`` are level i's anchor (width, height) pairs in input pixels; the output
    is (N, 5 + classes) rows of (x, y, w, h, objectness, class scores) in input pixels.
    """

    name: str
    xs: tuple[Tensor, ...]
    out: Tensor
    num_classes: int
    anchors: tuple[tuple[tuple[float, float], ...], ...]
    strides: tuple[int, ...]

    @property
    def outputs_per_anchor(self) -> int:
        return 5 + self.num_classes

    def level_channels(self, level: int) -> int:
        return len(self.anchors[level]) * self.outputs_per_anchor

    def params(self) -> int:
        return sum((x.channels + 1) * self.level_channels(i) for i, x in enumerate(self.xs))

    def macs(self) -> int:
        return sum(x.channels * self.level_channels(i) * x.shape[1] * x.shape[2]
                   for i, x in enumerate(self.xs))


Layer = Union[Conv, Add, MaxPool, Concat, Upsample, GlobalPool, Linear, Detect]


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@dataclass
class Net:
    """A network under construction: builders call the layer methods in forward order."""

    name: str
    family: str
    input: Tensor
    layers: list[Layer] = field(default_factory=list)
    output: Tensor | None = None
    _names: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def image(cls, name: str, family: str, input_size: int, channels: int = 3) -> Net:
        return cls(name, family, Tensor("input", (channels, input_size, input_size)))

    def _add(self, layer: Layer) -> Tensor:
        if layer.name in self._names:
            raise ValueError(f"duplicate layer name {layer.name!r} in {self.name}")
        self._names.add(layer.name)
        self.layers.append(layer)
        self.output = layer.out
        return layer.out

    def conv(self, name: str, x: Tensor, channels: int, kernel: int, stride: int = 1,
             padding: int | None = None, *, act: str | None, bn: bool = True, bias: bool = False) -> Tensor:
        pad = kernel // 2 if padding is None else padding
        c, h, w = x.shape
        if h + 2 * pad < kernel or w + 2 * pad < kernel:
            raise ValueError(f"{self.name}: layer {name} gets a {h}x{w} input, smaller than its kernel")
        out = Tensor(name, (channels, _out_size(h, kernel, stride, pad), _out_size(w, kernel, stride, pad)))
        return self._add(Conv(name, x, out, kernel, stride, pad, bn, bias, act))

    def add(self, name: str, a: Tensor, b: Tensor, *, act: str | None = None) -> Tensor:
        if a.shape != b.shape:
            raise ValueError(f"{self.name}: {name} adds shapes {a.shape} and {b.shape}")
        return self._add(Add(name, a, b, Tensor(name, a.shape), act))

    def maxpool(self, name: str, x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
        c, h, w = x.shape
        out = Tensor(name, (c, _out_size(h, kernel, stride, padding), _out_size(w, kernel, stride, padding)))
        return self._add(MaxPool(name, x, out, kernel, stride, padding))

    def concat(self, name: str, xs: list[Tensor]) -> Tensor:
        spatial = {x.shape[1:] for x in xs}
        if len(spatial) != 1:
            raise ValueError(f"{self.name}: {name} concatenates spatial sizes {sorted(spatial)}")
        out = Tensor(name, (sum(x.channels for x in xs), *xs[0].shape[1:]))
        return self._add(Concat(name, tuple(xs), out))

    def upsample(self, name: str, x: Tensor, scale: int = 2) -> Tensor:
        c, h, w = x.shape
        return self._add(Upsample(name, x, Tensor(name, (c, h * scale, w * scale)), scale))

    def global_pool(self, name: str, x: Tensor) -> Tensor:
        return self._add(GlobalPool(name, x, Tensor(name, (x.channels,))))

    def linear(self, name: str, x: Tensor, features: int, *, out_name: str | None = None) -> Tensor:
        return self._add(Linear(name, x, Tensor(out_name or name, (features,))))

    def detect(self, name: str, xs: list[Tensor], num_classes: int,
               anchors: tuple[tuple[tuple[float, float], ...], ...], strides: tuple[int, ...],
               *, out_name: str | None = None) -> Tensor:
        rows = sum(len(a) * x.shape[1] * x.shape[2] for a, x in zip(anchors, xs))
        out = Tensor(out_name or name, (rows, 5 + num_classes))
        return self._add(Detect(name, tuple(xs), out, num_classes, anchors, strides))

    # ---- counts -------------------------------------------------------------------------

    def params(self) -> int:
        """Trainable parameters as published: conv/linear weights and biases, BN scale and shift."""
        return sum(layer.params() for layer in self.layers if hasattr(layer, "params"))

    def stored_params(self, fold_bn: bool = True) -> int:
        """Numbers in the ONNX file's initializers (folded BN: one bias per channel)."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, Conv):
                total += layer.stored_params(fold_bn)
            elif hasattr(layer, "params"):
                total += layer.params()
        return total

    def macs(self) -> int:
        """Multiply-accumulates of one image through convs, linear layers and the head."""
        return sum(layer.macs() for layer in self.layers if hasattr(layer, "macs"))
