"""Model registry: ``create(name, num_classes, in_chans=1, img_size=64)``.

Built-in names (see :mod:`landscape.models.small`) come first; any other name is
passed to timm (resnet18, resnet50, vgg16, vit_tiny_patch16_224,
swin_tiny_patch4_window7_224, ...).
"""

from landscape.models.registry import available, create, describe, list_models, register_model

__all__ = ["available", "create", "describe", "list_models", "register_model"]
