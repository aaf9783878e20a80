"""The backbones (MONAI) and the multi-phase network.

- ``ResNet10`` as the paper describes it: a 7 x 7 / 64 stem with batch normalisation, ReLU and
  3 x 3 max pooling, then two residual stages of 64 and 128 channels (two MONAI
  ``ResNetBlock``s each, the second stage with stride 2): 1 + 8 convolutions + the classifier.
- ``ResNet18`` and ``ResNet34``: MONAI's ``resnet18`` / ``resnet34`` (2-D, stem stride 2).

One backbone is **shared by the phases**: each phase's slices pass through the same weights (the
phases stacked along the batch dimension, one convolution call for all), and the pooled features
of the phases are concatenated in phase order before the fully connected layer, so the
classifier still knows which phase each feature came from. Sharing divides the convolutional
parameters by the number of phases, which matters with ~130 development patients, and keeps
the GPU busy with one large batch instead of three small ones.
"""
from __future__ import annotations

import torch
from torch import nn


class ResNet10(nn.Module):
    """The paper's ResNet-10 backbone: input (B, C, H, W) -> pooled features (B, 128)."""

    n_features = 128

    def __init__(self, in_channels: int = 3):
        super().__init__()
        from monai.networks.nets.resnet import ResNetBlock

        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        down = nn.Sequential(nn.Conv2d(64, 128, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(128))
        self.layer1 = nn.Sequential(ResNetBlock(64, 64, spatial_dims=2), ResNetBlock(64, 64, spatial_dims=2))
        self.layer2 = nn.Sequential(ResNetBlock(64, 128, spatial_dims=2, stride=2, downsample=down),
                                    ResNetBlock(128, 128, spatial_dims=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        return self.pool(self.layer2(self.layer1(x))).flatten(1)

    @property
    def last_stage(self) -> nn.Module:
        return self.layer2


class _MonaiResNet(nn.Module):
    """MONAI's 2-D ResNet-18/34 without its classifier: (B, C, H, W) -> (B, 512)."""

    n_features = 512

    def __init__(self, depth: int, in_channels: int = 3):
        super().__init__()
        from monai.networks.nets import resnet18, resnet34

        make = {18: resnet18, 34: resnet34}[depth]
        self.net = make(spatial_dims=2, n_input_channels=in_channels, feed_forward=False, conv1_t_stride=2,
                        pretrained=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def last_stage(self) -> nn.Module:
        return self.net.layer4


def backbone(network: str, in_channels: int = 3) -> nn.Module:
    """``ResNet10``, ``ResNet18`` or ``ResNet34``."""
    if network == "ResNet10":
        return ResNet10(in_channels)
    if network in ("ResNet18", "ResNet34"):
        return _MonaiResNet(int(network[6:]), in_channels)
    raise ValueError(f"unknown network {network!r}; the networks are ResNet10, ResNet18, ResNet34")


class MultiPhaseNet(nn.Module):
    """(B, P, S, H, W) slices of P phases -> two-class logits; ``n_tabular`` > 0 adds a second
    input (B, n_tabular) joined to the deep features before the fully connected layer (DLRCR)."""

    def __init__(self, network: str, n_phases: int, n_slices: int = 3, *, n_tabular: int = 0, dropout: float = 0.3):
        super().__init__()
        self.network = network
        self.n_phases = n_phases
        self.backbone = backbone(network, n_slices)
        self.n_deep = self.backbone.n_features * n_phases
        self.n_tabular = n_tabular
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.n_deep + n_tabular, 2)

    def deep_features(self, x: torch.Tensor) -> torch.Tensor:
        """The phases' pooled features, concatenated in phase order: (B, P * F)."""
        b, p = x.shape[:2]
        return self.backbone(x.reshape(b * p, *x.shape[2:])).reshape(b, p * self.backbone.n_features)

    def forward(self, x: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        joined = self.deep_features(x)
        if self.n_tabular:
            joined = torch.cat([joined, tabular.to(joined.dtype)], dim=1)
        return self.fc(self.dropout(joined))
