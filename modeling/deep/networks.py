"""The backbones (MONAI blocks) and the multi-phase network.

- ``ResNet10`` keeps the paper's structure: a stem, then two residual stages of two MONAI
  ``ResNetBlock``s each (the second with stride 2): 1 + 8 convolutions + the classifier.
- ``ResNet18`` and ``ResNet34``: MONAI's ``ResNet`` with basic blocks, stages of 2-2-2-2 and
  3-4-6-3 blocks.

Two stems (``stem``): ``"paper"`` is the paper's 7 x 7 stride-2 convolution with 3 x 3 max
pooling, which shrinks the input 4x before the first block (256 pixels -> 64); ``"small"`` is the
small-image ResNet's 3 x 3 stride-1 convolution without max pooling, which keeps a 32-pixel
crop's texture at full resolution for the first stage. Stage widths are ``width`` x 1, 2, 4, 8
(ResNet-10: x 1, 2): 64 as in the paper for 256-pixel slices, 16 for the quick profile's crops,
which ~105 patients can train.

The phases enter as the channels of one image (a slice position of every registered phase), so
the first convolution already compares the phases at each pixel: a texture that the phases
share (the tumour's) adds up across them while each phase's noise does not. (The paper pooled
each phase through the backbone and joined the features; on the synthetic study's development
folds the channels did better at a third of the cost: methods.md section G.)
"""
from __future__ import annotations

import torch
from torch import nn


def _stem(in_channels: int, width: int, stem: str) -> list[nn.Module]:
    if stem == "small":
        return [nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True)]
    if stem == "paper":
        return [nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]
    raise ValueError(f"unknown stem {stem!r}; the stems are small and paper")


class ResNet10(nn.Module):
    """The paper's ResNet-10: input (B, C, H, W) -> pooled features (B, 2 * width)."""

    def __init__(self, in_channels: int = 3, *, stem: str = "paper", width: int = 64):
        super().__init__()
        from monai.networks.nets.resnet import ResNetBlock

        self.stem = nn.Sequential(*_stem(in_channels, width, stem))
        down = nn.Sequential(nn.Conv2d(width, 2 * width, kernel_size=1, stride=2, bias=False),
                             nn.BatchNorm2d(2 * width))
        self.layer1 = nn.Sequential(ResNetBlock(width, width, spatial_dims=2), ResNetBlock(width, width, spatial_dims=2))
        self.layer2 = nn.Sequential(ResNetBlock(width, 2 * width, spatial_dims=2, stride=2, downsample=down),
                                    ResNetBlock(2 * width, 2 * width, spatial_dims=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.n_features = 2 * width
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, 2 * width, h, w)."""
        return self.layer2(self.layer1(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(x)).flatten(1)

    @property
    def last_stage(self) -> nn.Module:
        return self.layer2


class _MonaiResNet(nn.Module):
    """MONAI's 2-D ResNet-18/34 without its classifier: (B, C, H, W) -> (B, 8 * width)."""

    LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}

    def __init__(self, depth: int, in_channels: int = 3, *, stem: str = "paper", width: int = 64):
        super().__init__()
        from monai.networks.nets.resnet import ResNet, ResNetBlock

        if stem not in ("small", "paper"):
            raise ValueError(f"unknown stem {stem!r}; the stems are small and paper")
        small = stem == "small"
        self.net = ResNet(ResNetBlock, self.LAYERS[depth], [width, 2 * width, 4 * width, 8 * width], spatial_dims=2,
                          n_input_channels=in_channels, conv1_t_size=3 if small else 7,
                          conv1_t_stride=1 if small else 2, no_max_pool=small, feed_forward=False)
        self.n_features = 8 * width

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, 8 * width, h, w)."""
        n = self.net
        x = n.act(n.bn1(n.conv1(x)))
        if not n.no_max_pool:
            x = n.maxpool(x)
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(-2, -1))

    @property
    def last_stage(self) -> nn.Module:
        return self.net.layer4


def _stages(net: nn.Module) -> list[nn.Sequential]:
    if isinstance(net, ResNet10):
        return [net.layer1, net.layer2]
    return [net.net.layer1, net.net.layer2, net.net.layer3, net.net.layer4]


def _keep_grid(net: nn.Module, image_size: int, min_grid: int) -> None:
    """Stride 1 instead of 2 for every stage whose halving would leave its grid under
    ``min_grid`` cells (the stage's first block and its shortcut), so the last stage keeps
    enough cells to pool over a small tumour."""
    grid = image_size
    stem = net.stem if isinstance(net, ResNet10) else None
    if stem is not None:
        grid //= 4 if any(isinstance(m, nn.MaxPool2d) for m in stem) else 1
    elif net.net.conv1.stride[0] == 2:
        grid //= 2 if net.net.no_max_pool else 4
    for stage in _stages(net):
        block = stage[0]
        if block.conv1.stride[0] == 2:
            if grid // 2 < min_grid:
                block.conv1.stride = (1, 1)
                block.downsample[0].stride = (1, 1)
            else:
                grid //= 2


def backbone(network: str, in_channels: int = 3, *, stem: str = "paper", width: int = 64,
             zero_init: bool = False, image_size: int = 0, min_grid: int = 0) -> nn.Module:
    """``ResNet10``, ``ResNet18`` or ``ResNet34`` with ``stem`` and first-stage ``width``.

    ``zero_init``: the last batch normalisation of every residual block starts at 0, so each
    block starts as the identity and a deep network as a shallow one (Goyal et al. 2017).
    ``min_grid`` (with the input's ``image_size``): no stage halves its grid below this many
    cells (:func:`_keep_grid`); 0 keeps every stage's stride."""
    if network == "ResNet10":
        net = ResNet10(in_channels, stem=stem, width=width)
    elif network in ("ResNet18", "ResNet34"):
        net = _MonaiResNet(int(network[6:]), in_channels, stem=stem, width=width)
    else:
        raise ValueError(f"unknown network {network!r}; the networks are ResNet10, ResNet18, ResNet34")
    if min_grid:
        _keep_grid(net, image_size, min_grid)
    if zero_init:
        from monai.networks.nets.resnet import ResNetBlock

        for m in net.modules():
            if isinstance(m, ResNetBlock):
                nn.init.zeros_(m.bn2.weight)
    return net


class MultiPhaseNet(nn.Module):
    """(B, P, H, W) one slice position of P phases (the channels) -> two-class logits.

    ``pool``: ``"global"`` averages the last stage over the whole crop; ``"tumour"`` takes the
    tumour mask as one more input channel (B, P + 1, H, W), which no convolution sees, and
    averages the last stage over the tumour (the mask resampled to the stage's grid as weights)
    beside the global average: the tumour's texture is not diluted by the liver's, whose
    cirrhotic texture is as strong."""

    def __init__(self, network: str, n_phases: int, *, stem: str = "small", width: int = 16, dropout: float = 0.2,
                 pool: str = "global", zero_init: bool = False, image_size: int = 0, min_grid: int = 0):
        super().__init__()
        if pool not in ("global", "tumour"):
            raise ValueError(f"unknown pool {pool!r}; use global or tumour")
        self.network = network
        self.n_phases = n_phases
        self.pool = pool
        self.backbone = backbone(network, n_phases, stem=stem, width=width, zero_init=zero_init,
                                 image_size=image_size, min_grid=min_grid)
        self.n_deep = self.backbone.n_features * (2 if pool == "tumour" else 1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.n_deep, 2)

    def deep_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features of the last stage: (B, F)."""
        if self.pool == "global":
            return self.backbone(x)
        fmap = self.backbone.feature_map(x[:, :self.n_phases])
        weights = nn.functional.adaptive_avg_pool2d(x[:, self.n_phases:self.n_phases + 1].float(), fmap.shape[-2:])
        inside = (fmap * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1)).clamp_min(1e-6)
        return torch.cat([fmap.mean(dim=(-2, -1)), inside], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.deep_features(x)))
