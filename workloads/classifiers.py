"""The standard image classifiers, written after torchvision's definitions (torchvision 0.2x).

The PyPI torchvision wheel does not import beside our CPU torch build, so the tests (and users
without torchvision) get the architectures from here: same layers, same order, same hyper-
parameters as torchvision's ``resnet18``, ``resnet50``, ``mobilenet_v2``,
``mobilenet_v3_small``, ``squeezenet1_1``, ``vgg11``, ``shufflenet_v2_x0_5``,
``efficientnet_b0``, ``densenet121``, ``googlenet`` (no aux heads, no input transform),
``regnet_y_400mf`` and ``mnasnet0_5``. Module names differ from torchvision's where that keeps
the code short; the ops torch.export sees are the same. A user who has torchvision exports its
models the same way (``workloads.export.export(torchvision.models.resnet18(), ...)``).

:data:`CLASSIFIERS` maps a name to ``factory(num_classes=10, seed=0) -> nn.Module`` with seeded
random weights and random batch-norm statistics (so that no batch norm is the identity).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def _divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of divisor, never 10% down."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def conv_bn(
    c_in: int,
    c_out: int,
    k: int = 3,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
    eps: float = 1e-5,
) -> nn.Sequential:
    """Conv (no bias) - BatchNorm - activation, padding (k - 1) // 2."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=eps),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: x * scale(fc2(act(fc1(avgpool(x)))))."""

    def __init__(
        self,
        channels: int,
        squeeze: int,
        act: type[nn.Module] = nn.ReLU,
        scale: type[nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = act(), scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(s))))


# ---- ResNet ----------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != width:
            self.downsample = conv_bn(c_in, width, 1, stride, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * 4
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = conv_bn(c_in, out, 1, stride, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c_in = [], 64
        for i, blocks in enumerate(layers):
            width = 64 * 2**i
            for j in range(blocks):
                stages.append(block(c_in, width, 2 if i > 0 and j == 0 else 1))
                c_in = width * block.expansion
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layers(x)), 1))


# ---- MobileNetV2 / V3, MnasNet, EfficientNet -------------------------------------------------


class InvertedResidualV2(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(c_in * expand))
        self.use_res = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(c_in, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            conv_bn(hidden, c_out, 1, act=None),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ]

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)]
        c_in = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidualV2(c_in, _divisible(c), s if i == 0 else 1, t))
                c_in = _divisible(c)
        layers.append(conv_bn(c_in, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class InvertedResidualV3(nn.Module):
    def __init__(
        self, c_in: int, k: int, expanded: int, c_out: int, se: bool, act: str, stride: int
    ) -> None:
        super().__init__()
        activation = nn.Hardswish if act == "HS" else nn.ReLU
        self.use_res = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(conv_bn(c_in, expanded, 1, act=activation, eps=0.001))
        layers.append(
            conv_bn(expanded, expanded, k, stride, groups=expanded, act=activation, eps=0.001)
        )
        if se:
            layers.append(
                SqueezeExcitation(expanded, _divisible(expanded // 4), scale=nn.Hardsigmoid)
            )
        layers.append(conv_bn(expanded, c_out, 1, act=None, eps=0.001))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_res else y


class MobileNetV3Small(nn.Module):
    SETTINGS = [
        (16, 3, 16, 16, True, "RE", 2),
        (16, 3, 72, 24, False, "RE", 2),
        (24, 3, 88, 24, False, "RE", 1),
        (24, 5, 96, 40, True, "HS", 2),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 120, 48, True, "HS", 1),
        (48, 5, 144, 48, True, "HS", 1),
        (48, 5, 288, 96, True, "HS", 2),
        (96, 5, 576, 96, True, "HS", 1),
        (96, 5, 576, 96, True, "HS", 1),
    ]

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish, eps=0.001)]
        layers += [InvertedResidualV3(*s) for s in self.SETTINGS]
        layers.append(conv_bn(96, 576, 1, act=nn.Hardswish, eps=0.001))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(576, 1024),
            nn.Hardswish(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class MnasResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.use_res = c_in == c_out and stride == 1
        self.layers = nn.Sequential(
            conv_bn(c_in, mid, 1),
            conv_bn(mid, mid, k, stride, mid),
            conv_bn(mid, c_out, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x if self.use_res else self.layers(x)


def _round_to_multiple_of(value: float, divisor: int, round_up_bias: float = 0.9) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new if new >= round_up_bias * value else new + divisor


class MNASNet(nn.Module):
    def __init__(self, alpha: float = 0.5, num_classes: int = 1000) -> None:
        super().__init__()
        d = [_round_to_multiple_of(v * alpha, 8) for v in (32, 16, 24, 40, 80, 96, 192, 320)]
        layers: list[nn.Module] = [
            conv_bn(3, d[0], 3, 2),
            conv_bn(d[0], d[0], 3, 1, d[0]),
            conv_bn(d[0], d[1], 1, act=None),
        ]
        stacks = [
            (3, 2, 3, 3),
            (5, 2, 3, 3),
            (5, 2, 6, 3),
            (3, 1, 6, 2),
            (5, 2, 6, 4),
            (3, 1, 6, 1),
        ]
        for i, (k, stride, expand, repeats) in enumerate(stacks):
            for r in range(repeats):
                layers.append(
                    MnasResidual(
                        d[i + 1] if r == 0 else d[i + 2],
                        d[i + 2],
                        k,
                        stride if r == 0 else 1,
                        expand,
                    )
                )
        layers.append(conv_bn(d[7], 1280, 1))
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(x).mean([2, 3]))


class MBConv(nn.Module):
    def __init__(self, expand: int, k: int, stride: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = _divisible(c_in * expand)
        self.use_res = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers.append(conv_bn(c_in, hidden, 1, act=nn.SiLU, eps=0.001))
        layers += [
            conv_bn(hidden, hidden, k, stride, hidden, act=nn.SiLU, eps=0.001),
            SqueezeExcitation(hidden, max(1, c_in // 4), act=nn.SiLU),
            conv_bn(hidden, c_out, 1, act=None, eps=0.001),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_res else y  # stochastic depth is the identity in eval


class EfficientNetB0(nn.Module):
    SETTINGS = [
        (1, 3, 1, 32, 16, 1),
        (6, 3, 2, 16, 24, 2),
        (6, 5, 2, 24, 40, 2),
        (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3),
        (6, 5, 2, 112, 192, 4),
        (6, 3, 1, 192, 320, 1),
    ]

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.SiLU, eps=0.001)]
        for expand, k, stride, c_in, c_out, n in self.SETTINGS:
            for i in range(n):
                layers.append(
                    MBConv(expand, k, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out)
                )
        layers.append(conv_bn(320, 1280, 1, act=nn.SiLU, eps=0.001))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---- SqueezeNet, VGG, GoogLeNet, DenseNet, ShuffleNet, RegNet -------------------------------


class Fire(nn.Module):
    def __init__(self, c_in: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.squeeze(x))
        return torch.cat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2),
            nn.ReLU(inplace=True),
            pool(),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            pool(),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            pool(),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Conv2d(512, num_classes, 1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


class VGG11(nn.Module):
    CONFIG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

    def __init__(self, num_classes: int = 1000, hidden: int = 4096) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in self.CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(
        self, c_in: int, ch1: int, ch3r: int, ch3: int, ch5r: int, ch5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(c_in, ch1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(c_in, ch3r, kernel_size=1), BasicConv2d(ch3r, ch3, kernel_size=3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(c_in, ch5r, kernel_size=1), BasicConv2d(ch5r, ch5, kernel_size=3, padding=1)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(c_in, pool_proj, kernel_size=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{name}")(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x), inplace=True))
        return self.conv2(F.relu(self.norm2(x), inplace=True))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [DenseLayer(c_in + i * growth, growth, bn_size) for i in range(layers)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet121(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        growth: int = 32,
        blocks=(6, 12, 24, 16),
        init_features: int = 64,
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, init_features, 7, 2, 3, bias=False),
            nn.BatchNorm2d(init_features),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        c = init_features
        for i, n in enumerate(blocks):
            layers.append(DenseBlock(n, c, growth, bn_size))
            c += n * growth
            if i != len(blocks) - 1:
                layers += [
                    nn.BatchNorm2d(c),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(c, c // 2, 1, bias=False),
                    nn.AvgPool2d(2, 2),
                ]
                c //= 2
        layers.append(nn.BatchNorm2d(c))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(F.relu(self.features(x), inplace=True), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(b, -1, h, w)


class ShuffleResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                conv_bn(c_in, c_in, 3, stride, c_in, act=None), conv_bn(c_in, branch, 1)
            )
        self.branch2 = nn.Sequential(
            conv_bn(c_in if stride > 1 else branch, branch, 1),
            conv_bn(branch, branch, 3, stride, branch, act=None),
            conv_bn(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(
        self, repeats=(4, 8, 4), channels=(24, 48, 96, 192, 1024), num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.conv1 = conv_bn(3, channels[0], 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c_in = [], channels[0]
        for n, c_out in zip(repeats, channels[1:4]):
            stages += [ShuffleResidual(c_in, c_out, 2)]
            stages += [ShuffleResidual(c_out, c_out, 1) for _ in range(n - 1)]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.conv5 = conv_bn(c_in, channels[-1], 1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


class RegNetBlock(nn.Module):
    """ResBottleneckBlock with squeeze-and-excitation (RegNetY), bottleneck ratio 1."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, group_width: int, se_ratio: float
    ) -> None:
        super().__init__()
        self.proj = None
        if c_in != c_out or stride != 1:
            self.proj = conv_bn(c_in, c_out, 1, stride, act=None)
        groups = c_out // group_width
        self.f = nn.Sequential(
            conv_bn(c_in, c_out, 1),
            conv_bn(c_out, c_out, 3, stride, groups),
            SqueezeExcitation(c_out, int(round(se_ratio * c_in))),
            conv_bn(c_out, c_out, 1, act=None),
        )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNetY400MF(nn.Module):
    DEPTHS, WIDTHS = (1, 3, 6, 6), (48, 104, 208, 440)

    def __init__(
        self, num_classes: int = 1000, group_width: int = 8, se_ratio: float = 0.25
    ) -> None:
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        blocks, c_in = [], 32
        for depth, width in zip(self.DEPTHS, self.WIDTHS):
            for i in range(depth):
                blocks.append(RegNetBlock(c_in, width, 2 if i == 0 else 1, group_width, se_ratio))
                c_in = width
        self.trunk_output = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


# ---- the table -------------------------------------------------------------------------------


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights (torch's default init) and batch-norm statistics; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()


def _factory(build: Callable[[int], nn.Module]) -> Callable[..., nn.Module]:
    def make(num_classes: int = 10, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return randomize(build(num_classes), seed)

    return make


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": _factory(lambda n: ResNet(BasicBlock, [2, 2, 2, 2], n)),
    "resnet50": _factory(lambda n: ResNet(Bottleneck, [3, 4, 6, 3], n)),
    "mobilenet_v2": _factory(MobileNetV2),
    "mobilenet_v3_small": _factory(MobileNetV3Small),
    "squeezenet1_1": _factory(SqueezeNet11),
    "vgg11": _factory(VGG11),
    "shufflenet_v2_x0_5": _factory(lambda n: ShuffleNetV2(num_classes=n)),
    "efficientnet_b0": _factory(EfficientNetB0),
    "densenet121": _factory(DenseNet121),
    "googlenet": _factory(GoogLeNet),
    "regnet_y_400mf": _factory(RegNetY400MF),
    "mnasnet0_5": _factory(lambda n: MNASNet(0.5, n)),
}
