"""ResNet-18/34/50/101/152 specs with torchvision's layer structure (v1.5: in Bottlenecks the
stride is on the 3x3 conv)."""

from __future__ import annotations

from .spec import Net, Tensor

# name: (block kind, blocks per stage)
DEPTHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}


def _basic(net: Net, name: str, x: Tensor, planes: int, stride: int) -> Tensor:
    y = net.conv(f"{name}.conv1", x, planes, 3, stride, act="relu")
    y = net.conv(f"{name}.conv2", y, planes, 3, act=None)
    return net.add(f"{name}.add", y, _shortcut(net, name, x, planes, stride), act="relu")


def _bottleneck(net: Net, name: str, x: Tensor, planes: int, stride: int) -> Tensor:
    y = net.conv(f"{name}.conv1", x, planes, 1, act="relu")
    y = net.conv(f"{name}.conv2", y, planes, 3, stride, act="relu")
    y = net.conv(f"{name}.conv3", y, planes * EXPANSION["bottleneck"], 1, act=None)
    return net.add(f"{name}.add", y, _shortcut(net, name, x, y.channels, stride), act="relu")


def _shortcut(net: Net, name: str, x: Tensor, channels: int, stride: int) -> Tensor:
    if stride == 1 and x.channels == channels:
        return x
    return net.conv(f"{name}.downsample", x, channels, 1, stride, act=None)


def resnet(name: str, *, input_size: int = 224, num_classes: int = 1000, width: float = 1.0) -> Net:
    """The spec of ``name`` (a key of :data:`DEPTHS`); ``width`` scales every channel count."""
    kind, depths = DEPTHS[name]
    block = _basic if kind == "basic" else _bottleneck

    def scaled(c: int) -> int:
        return max(1, round(c * width))

    net = Net.image(name, "resnet", input_size)
    x = net.conv("conv1", net.input, scaled(64), 7, 2, 3, act="relu")
    x = net.maxpool("maxpool", x, 3, 2, 1)
    for stage, (blocks, planes) in enumerate(zip(depths, STAGE_WIDTHS), start=1):
        for i in range(blocks):
            stride = 2 if i == 0 and stage > 1 else 1
            x = block(net, f"layer{stage}.{i}", x, scaled(planes), stride)
    x = net.global_pool("avgpool", x)
    net.linear("fc", x, num_classes, out_name="logits")
    return net
