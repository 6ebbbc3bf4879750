"""Built-in PyTorch models.

Three trainable models for the digits data set (``DigitsMLP``, ``DigitsCNN`` on 8x8 images,
``DigitsResNet`` on the digits upsampled to 16x16) and three performance workloads with
seeded random weights (``ResNet18``, ``VGG16``, ``MobileNetBlock``).
Every model uses only layers that :mod:`workloads.export` maps to accelsim ops.

:data:`BUILTIN_MODELS` maps a name to ``factory(input_size, seed) -> (module, example_shape)``,
where ``example_shape`` includes a batch of 1, e.g. ``(1, 3, 224, 224)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .builtins import DEFAULT_INPUT_SIZE  # noqa: F401  (re-exported: the default sizes live there)


class DigitsMLP(nn.Module):
    """64-32-10 perceptron with ReLU, for 8x8 digits."""

    def __init__(self, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu1(self.fc1(self.flatten(x))))


class DigitsCNN(nn.Module):
    """(conv3x3 pad 1 - BN - ReLU - maxpool 2) twice, then one linear layer: 8x8 -> 10."""

    def __init__(self, c1: int = 8, c2: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c2 * 2 * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(self.flatten(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, ReLU, residual add (1x1 conv-BN on downsample)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class DigitsResNet(nn.Module):
    """A small ResNet for the digits upsampled to 16x16 (:func:`workloads.data.upsample`).

    Stem 3x3 conv (16 channels) - BN - ReLU, three stages of :class:`BasicBlock` with
    ``channels`` (16, 32, 64) and strides (1, 2, 2) (16x16 -> 16x16 -> 8x8 -> 4x4), ``blocks``
    per stage (1x1 conv - BN shortcut where the shape changes), global average pool, linear to
    ``classes``. With the defaults: 15 convolutions (two of them 1x1 shortcuts) and one linear
    layer, 570 output channels (neurons), 174,970 parameters (174,410 once BN is folded),
    6.59 M MACs per image. Only ops :mod:`workloads.export` supports (BN folds into the conv,
    the pool is ``adaptive_avg_pool2d(1)``).
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64),
        strides: tuple[int, ...] = (1, 2, 2),
        blocks: int = 2,
        classes: int = 10,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3, 1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU()
        stages, in_channels = [], channels[0]
        for width, stride in zip(channels, strides, strict=True):
            stage = [BasicBlock(in_channels, width, stride)]
            stage += [BasicBlock(width, width, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016): stem 7x7/2 + maxpool 3/2, 4 stages of 2 basic blocks,
    global average pool, 1000-way linear. Any input size >= 32 works."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        layers, in_channels = [], 64
        for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(
                nn.Sequential(
                    BasicBlock(in_channels, channels, stride), BasicBlock(channels, channels, 1)
                )
            )
            in_channels = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


VGG16_CONVS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG16(nn.Module):
    """VGG-16 (configuration D, Simonyan & Zisserman 2015): 13 conv3x3-ReLU layers in five
    max-pooled stages, then 4096-4096-classes linear layers on the flattened 512 x (S/32)^2
    features (25088 inputs at 224x224). Dropout is the identity at inference and omitted."""

    def __init__(self, input_size: int = 224, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG16_CONVS:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU()]
                in_channels = item
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512 * side * side, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


class MobileNetBlock(nn.Module):
    """One MobileNet depthwise-separable block: 3x3 depthwise conv (groups = C) - BN - ReLU6,
    then 1x1 pointwise conv - BN - ReLU6 (MobileNet v1's second layer: 32 -> 64 at 112x112)."""

    def __init__(self, in_channels: int = 32, out_channels: int = 64, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU6()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.depthwise(x)))
        return self.relu2(self.bn2(self.pointwise(x)))


def randomize_batchnorm(module: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm seeded, plausible running statistics and affine parameters, so
    that folding them is not the identity (fresh BNs have mean 0, var 1, gamma 1, beta 0)."""
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            with torch.no_grad():
                bn.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                bn.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                bn.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
                bn.bias.copy_(0.1 * torch.randn(n, generator=generator))


Factory = Callable[[int | None, int], tuple[nn.Module, tuple[int, ...]]]


def _seeded(build: Callable[[int], nn.Module], channels: int, default_size: int) -> Factory:
    def factory(input_size: int | None = None, seed: int = 0):
        size = default_size if input_size is None else int(input_size)
        generator_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)  # fixes the default initialisation of every layer
            module = build(size)
            randomize_batchnorm(module, torch.Generator().manual_seed(seed + 1))
        finally:
            torch.random.set_rng_state(generator_state)
        return module.eval(), (1, channels, size, size)

    return factory


def _digits(build: Callable[[], nn.Module], size: int = 8) -> Factory:
    def factory(input_size: int | None = None, seed: int = 0):
        if input_size not in (None, size):
            raise ValueError(f"this digits model takes {size}x{size} inputs, not {input_size}")
        generator_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            module = build()
        finally:
            torch.random.set_rng_state(generator_state)
        return module.eval(), (1, 1, size, size)

    return factory


BUILTIN_MODELS: dict[str, Factory] = {
    "digits_mlp": _digits(DigitsMLP),
    "digits_cnn": _digits(DigitsCNN),
    "digits_resnet": _digits(DigitsResNet, 16),
    "resnet18": _seeded(lambda size: ResNet18(), 3, 224),
    "vgg16": _seeded(lambda size: VGG16(size), 3, 224),
    "mobilenet_block": _seeded(lambda size: MobileNetBlock(), 32, 112),
}
