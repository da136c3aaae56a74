"""Model registry: ``create(name, num_classes, in_chans=1, img_size=64)``.

Built-in names (see :mod:`landscape.models.small`) come first; any other name is
passed to timm (resnet18, resnet50, vgg16, vit_tiny_patch16_224,
swin_tiny_patch4_window7_224, ...). :func:`load_weights` loads pretrained
weights from a local file or timm / Hugging Face cache folder (no network).
"""

from landscape.models.registry import available, create, describe, list_models, register_model
from landscape.models.weights import load_weights

__all__ = ["available", "create", "describe", "list_models", "load_weights", "register_model"]
