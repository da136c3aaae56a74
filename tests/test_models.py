import pytest
import torch

from landscape.errors import LandscapeError
from landscape.models import available, create, describe


def test_cnn_small_size_and_shape():
    model = create("cnn-small", num_classes=3, in_chans=1, img_size=64)
    n = describe(model)["num_params"]
    assert 100_000 < n < 1_000_000
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 3)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_builtins_listed_and_tiny_models_small():
    assert {"cnn-small", "cnn-tiny", "mlp-tiny"} <= set(available())
    assert describe(create("cnn-tiny", 3))["num_params"] <= 3000
    assert describe(create("mlp-tiny", 3, img_size=8))["num_params"] <= 3000


def test_timm_models_take_one_channel_and_img_size():
    resnet = create("resnet18", num_classes=3, in_chans=1, img_size=32)
    assert resnet(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    vit = create("vit_tiny_patch16_224", num_classes=3, in_chans=1, img_size=32)
    assert vit(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = create("cnn-small", 3)
    torch.manual_seed(3)
    b = create("cnn-small", 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("name", ["no-such-model", "resnet_999"])
def test_unknown_model_is_a_clear_error(name):
    with pytest.raises(LandscapeError, match="unknown model"):
        create(name, 3)


def test_builtin_has_no_pretrained_weights():
    with pytest.raises(LandscapeError, match="no pretrained weights"):
        create("cnn-small", 3, pretrained=True)
