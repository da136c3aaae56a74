"""Small built-in models: ``cnn-small`` for laptop studies, ``cnn-tiny`` and ``mlp-tiny`` for exact tests."""

from __future__ import annotations

from torch import nn


def _conv_block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """BatchNorm CNN: four conv stages (widths ``width * (1, 2, 4, 8)``), global average pool, linear head.

    Input ``[B, in_chans, S, S]`` with any ``S >= 16``; output logits ``[B, num_classes]``.
    With ``width=32`` it has about 0.39 M parameters.
    """

    def __init__(self, num_classes: int, in_chans: int = 1, width: int = 32, dropout: float = 0.0):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        cin = in_chans
        for i, w in enumerate(widths):
            layers += _conv_block(cin, w)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


class TinyCNN(nn.Module):
    """Two 3x3 convs (``channels`` each) with BatchNorm, average pool and a linear head; ~1-3k parameters."""

    def __init__(self, num_classes: int, in_chans: int = 1, channels: int = 8, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * channels, num_classes)

    def forward(self, x):
        return self.head(self.dropout(self.features(x).flatten(1)))


class TinyMLP(nn.Module):
    """Flatten, ``hidden`` tanh units, linear head. For exact dense-Hessian tests."""

    def __init__(self, num_classes: int, in_chans: int = 1, img_size: int = 8, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_chans * img_size * img_size, hidden), nn.Tanh(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.net(x)
