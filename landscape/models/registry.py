"""Name -> constructor registry with timm as the fallback zoo."""

from __future__ import annotations

import contextlib
import inspect
import socket
from typing import Callable

from torch import nn

from landscape.errors import LandscapeError
from landscape.models.small import SmallCNN, TinyCNN, TinyMLP

_BUILTIN: dict[str, Callable[..., nn.Module]] = {
    "cnn-small": lambda num_classes, in_chans, img_size, **kw: SmallCNN(num_classes, in_chans, **kw),
    "cnn-tiny": lambda num_classes, in_chans, img_size, **kw: TinyCNN(num_classes, in_chans, **kw),
    "mlp-tiny": lambda num_classes, in_chans, img_size, **kw: TinyMLP(num_classes, in_chans, img_size, **kw),
}


#: Accepted ranges of the model sizes (inclusive).
LIMITS = {"num_classes": (1, 100_000), "in_chans": (1, 64), "img_size": (8, 4096)}


def available() -> list[str]:
    """Registered names (built-ins and :func:`register_model`'s); every timm model name works too."""
    return sorted(_BUILTIN)


def list_models() -> list[str]:
    """Registered model names, sorted (timm's zoo is the fallback for any other name)."""
    return available()


def register_model(name: str, builder: Callable[..., nn.Module], overwrite: bool = False) -> None:
    """Make ``create(name, ...)`` call ``builder(num_classes, in_chans, img_size, **kwargs)``.

    A checkpoint records the name and kwargs, so register the same builder
    again before loading a checkpoint of a registered model.
    """
    if not isinstance(name, str) or not name:
        raise LandscapeError(f"name must be a non-empty string, got {name!r}")
    if name in _BUILTIN and not overwrite:
        raise LandscapeError(f"model {name!r} is already registered (pass overwrite=True to replace it)")
    if not callable(builder):
        raise LandscapeError(f"builder of model {name!r} must be callable, got {builder!r}")
    _BUILTIN[name] = builder


def create(
    name: str,
    num_classes: int,
    in_chans: int = 1,
    img_size: int = 64,
    pretrained: bool = False,
    **kwargs,
) -> nn.Module:
    """Build model ``name`` for ``[B, in_chans, img_size, img_size]`` inputs and ``num_classes`` logits.

    Built-ins ignore ``pretrained`` (they have no weights to fetch); timm models
    get ``img_size`` only when their constructor takes it (ViT, Swin, ...).
    Raises :class:`LandscapeError` for an unknown name, unavailable weights, or
    sizes outside :data:`LIMITS` (a damaged checkpoint must not allocate terabytes).
    """
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans), ("img_size", img_size)):
        lo, hi = LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise LandscapeError(f"model {key} must be an integer from {lo} to {hi}, got {value!r}")
    if name in _BUILTIN:
        if pretrained:
            raise LandscapeError(f"model {name!r} is built in and has no pretrained weights; drop pretrained")
        try:
            return _BUILTIN[name](num_classes, in_chans, img_size, **kwargs)
        except TypeError as exc:
            raise LandscapeError(f"bad arguments for model {name!r}: {exc}") from None
    return _create_timm(name, num_classes, in_chans, img_size, pretrained, **kwargs)


def _create_timm(name, num_classes, in_chans, img_size, pretrained, **kwargs) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise LandscapeError(
            f"unknown model {name!r}: use one of {', '.join(available())} or a timm model name (e.g. resnet18, vgg16)"
        )
    kwargs = dict(kwargs)
    if _takes_img_size(name):
        kwargs.setdefault("img_size", img_size)
    try:
        with _offline_unless_reachable(pretrained):
            return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)
    except Exception as exc:
        if pretrained:
            raise LandscapeError(
                f"pretrained weights for {name!r} could not be loaded (offline or not published): {_first_line(exc)}"
            ) from None
        raise LandscapeError(f"cannot build timm model {name!r}: {_first_line(exc)}") from None


@contextlib.contextmanager
def _offline_unless_reachable(pretrained: bool, host: str = "huggingface.co", timeout: float = 3.0):
    """Use only the local weight cache when the hub cannot be reached, so an offline
    ``--pretrained`` fails in seconds with a clear message instead of minutes of retries.
    """
    if not pretrained:
        yield
        return
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        reachable = True
    except OSError:
        reachable = False
    import huggingface_hub.constants as hub

    previous = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = previous or not reachable
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = previous


def _takes_img_size(name: str) -> bool:
    """Whether the timm entrypoint's model class accepts ``img_size`` (ViT, Swin, ...)."""
    return "img_size" in _timm_arguments(name)


def _timm_arguments(name: str) -> set[str]:
    """Arguments timm may take for ``name``: its module's model classes' and timm's factory functions' (a superset)."""
    import timm
    from timm.models import build_model_with_cfg

    module = inspect.getmodule(timm.models.model_entrypoint(name))
    names = set(inspect.signature(timm.create_model).parameters)
    names |= set(inspect.signature(build_model_with_cfg).parameters)
    names |= {"out_indices", "feature_cls", "flatten_sequential"}  # popped by timm's _create_* helpers
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__:
            names.update(inspect.signature(obj.__init__).parameters)
    return names


def check_arguments(name: str, kwargs: dict) -> None:
    """Raise :class:`LandscapeError` for a keyword argument that model ``name`` cannot take (cheap: builds nothing)."""
    if name in _BUILTIN:
        cls = {"cnn-small": SmallCNN, "cnn-tiny": TinyCNN, "mlp-tiny": TinyMLP}[name]
        known = set(inspect.signature(cls.__init__).parameters)
    else:
        import timm

        if not timm.is_model(name):
            return  # create() names the problem
        known = _timm_arguments(name)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise LandscapeError(f"model {name!r} takes no argument {unknown[0]!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else exc.__class__.__name__


def describe(model: nn.Module) -> dict:
    """Parameter counts: total and trainable."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"num_params": total, "num_trainable": trainable}
