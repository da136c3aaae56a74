import math

import pytest

from landscape.train.schedule import lr_at


def test_cosine_endpoints_and_midpoint():
    assert lr_at(0, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(50, 100, 0.1) == pytest.approx(0.05)
    assert lr_at(100, 100, 0.1, lr_min=0.01) == pytest.approx(0.01)
    assert lr_at(25, 100, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_constant():
    assert lr_at(37, 100, 0.3, "constant") == 0.3
