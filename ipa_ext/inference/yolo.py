"""YOLOv5-style detector specs (v6.0 layout), sizes n/s/m/l/x: a CSP backbone with SPPF, a PAN
neck and a detect head on P3/P4/P5, scaled by YOLOv5's depth and width multiples."""

from __future__ import annotations

import math

from .spec import Net, Tensor

# name: (depth multiple, width multiple)
SIZES: dict[str, tuple[float, float]] = {
    "yolov5n": (0.33, 0.25),
    "yolov5s": (0.33, 0.50),
    "yolov5m": (0.67, 0.75),
    "yolov5l": (1.00, 1.00),
    "yolov5x": (1.33, 1.25),
}
# The default anchors (width, height in pixels) of P3/8, P4/16 and P5/32.
ANCHORS = (
    ((10.0, 13.0), (16.0, 30.0), (33.0, 23.0)),
    ((30.0, 61.0), (62.0, 45.0), (59.0, 119.0)),
    ((116.0, 90.0), (156.0, 198.0), (373.0, 326.0)),
)
STRIDES = (8, 16, 32)
STRIDE = 32  # the input size must be a multiple of the coarsest level's stride


class _Builder:
    """Scales channels and repeats, and names layers ``layer{i}`` after the v6.0 layer index."""

    def __init__(self, net: Net, depth: float, width: float) -> None:
        self.net, self.depth, self.width = net, depth, width

    def ch(self, c: int) -> int:
        return max(8, math.ceil(c * self.width / 8) * 8)

    def repeats(self, n: int) -> int:
        return max(round(n * self.depth), 1) if n > 1 else n

    def conv(self, name: str, x: Tensor, c: int, k: int, s: int = 1, p: int | None = None) -> Tensor:
        return self.net.conv(name, x, c, k, s, p, act="silu")

    def c3(self, name: str, x: Tensor, c_out: int, n: int, shortcut: bool = True) -> Tensor:
        """CSP bottleneck with three convs: two 1x1 halves, n bottlenecks on one, 1x1 after concat."""
        hidden = c_out // 2
        a = self.conv(f"{name}.cv1", x, hidden, 1)
        for i in range(self.repeats(n)):
            y = self.conv(f"{name}.m.{i}.cv1", a, hidden, 1)
            y = self.conv(f"{name}.m.{i}.cv2", y, hidden, 3)
            a = self.net.add(f"{name}.m.{i}.add", a, y) if shortcut else y
        b = self.conv(f"{name}.cv2", x, hidden, 1)
        return self.conv(f"{name}.cv3", self.net.concat(f"{name}.cat", [a, b]), c_out, 1)

    def sppf(self, name: str, x: Tensor, c_out: int, k: int = 5) -> Tensor:
        """Spatial pyramid pooling, fast: three chained k x k max pools, all four concatenated."""
        y = [self.conv(f"{name}.cv1", x, x.channels // 2, 1)]
        for i in range(3):
            y.append(self.net.maxpool(f"{name}.pool{i}", y[-1], k, 1, k // 2))
        return self.conv(f"{name}.cv2", self.net.concat(f"{name}.cat", y), c_out, 1)


def _backbone(b: _Builder, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    x = b.conv("layer0", x, b.ch(64), 6, 2, 2)  # P1/2
    x = b.conv("layer1", x, b.ch(128), 3, 2)  # P2/4
    x = b.c3("layer2", x, b.ch(128), 3)
    x = b.conv("layer3", x, b.ch(256), 3, 2)  # P3/8
    p3 = b.c3("layer4", x, b.ch(256), 6)
    x = b.conv("layer5", p3, b.ch(512), 3, 2)  # P4/16
    p4 = b.c3("layer6", x, b.ch(512), 9)
    x = b.conv("layer7", p4, b.ch(1024), 3, 2)  # P5/32
    x = b.c3("layer8", x, b.ch(1024), 3)
    return p3, p4, b.sppf("layer9", x, b.ch(1024))


def _neck(b: _Builder, p3: Tensor, p4: Tensor, p5: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    net = b.net
    h10 = b.conv("layer10", p5, b.ch(512), 1)
    x = net.concat("layer12", [net.upsample("layer11", h10), p4])
    x = b.c3("layer13", x, b.ch(512), 3, shortcut=False)
    h14 = b.conv("layer14", x, b.ch(256), 1)
    x = net.concat("layer16", [net.upsample("layer15", h14), p3])
    out3 = b.c3("layer17", x, b.ch(256), 3, shortcut=False)  # P3/8 small
    x = net.concat("layer19", [b.conv("layer18", out3, b.ch(256), 3, 2), h14])
    out4 = b.c3("layer20", x, b.ch(512), 3, shortcut=False)  # P4/16 medium
    x = net.concat("layer22", [b.conv("layer21", out4, b.ch(512), 3, 2), h10])
    out5 = b.c3("layer23", x, b.ch(1024), 3, shortcut=False)  # P5/32 large
    return out3, out4, out5


def yolov5(name: str, *, input_size: int = 640, num_classes: int = 80, width: float = 1.0) -> Net:
    """The spec of ``name`` (a key of :data:`SIZES`); ``width`` further scales the width multiple."""
    depth_multiple, width_multiple = SIZES[name]
    net = Net.image(name, "yolov5", input_size)
    b = _Builder(net, depth_multiple, width_multiple * width)
    levels = _neck(b, *_backbone(b, net.input))
    net.detect("layer24", list(levels), num_classes, ANCHORS, STRIDES, out_name="detections")
    return net
