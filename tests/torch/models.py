"""Real PyTorch models built locally (no downloads) for the gradmath.torch tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def mlp(
    act: type[nn.Module], depth: int, width: int, *, bias: bool = True, n_in: int | None = None
) -> nn.Sequential:
    """depth nn.Linear layers of ``width`` with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    n = width if n_in is None else n_in
    for i in range(depth):
        layers.append(nn.Linear(n, width, bias=bias))
        if i < depth - 1:
            layers.append(act())
        n = width
    return nn.Sequential(*layers)


def linear_init(weight_init: Callable[[torch.Tensor], object]) -> Callable[[nn.Module], None]:
    """An ``init`` for probe: ``weight_init`` on every nn.Linear weight, biases zero."""

    def init(model: nn.Module) -> None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                weight_init(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    return init


def glorot(w: torch.Tensor) -> None:
    nn.init.xavier_normal_(w)


def he(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")


# --------------------------------------------------------------------------- CNNs


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock: two 3×3 convs with batch norm, identity or
    1×1-conv shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """torchvision.models.resnet18's architecture (He et al. 2016), written out here because
    torchvision's wheels do not load with the CPU build of torch that CI uses."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks: list[nn.Module] = []
        c = 64
        for i, width in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            blocks.append(nn.Sequential(BasicBlock(c, width, stride), BasicBlock(width, width)))
            c = width
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        resnet_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_init(model: nn.Module) -> None:
    """torchvision's ResNet init: kaiming_normal_(mode="fan_out", nonlinearity="relu") for
    convs, γ = 1 and β = 0 for batch norm, nn.Linear's own default for the classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()


def vgg(widths: tuple[int, ...] = (32, 32, "M", 64, 64, "M", 128, 128), pool: str = "avg",
        num_classes: int = 10) -> nn.Sequential:  # type: ignore[assignment]  # fmt: skip
    """A VGG-style CNN without batch norm (Simonyan & Zisserman 2015): 3×3 convs with padding 1,
    ReLU, 2×2 pooling at "M", then global average pooling and a linear classifier."""
    layers: list[nn.Module] = []
    c = 3
    for w in widths:
        if w == "M":
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        else:
            layers += [nn.Conv2d(c, int(w), 3, padding=1), nn.ReLU()]
            c = int(w)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)
