"""Running a model so that its loss can be differentiated twice.

Hessian-vector products differentiate the gradient again, so every op on the
path needs a double backward.  The fused scaled-dot-product attention
kernels (``F.scaled_dot_product_attention``: flash on CPU; flash,
memory-efficient and cuDNN on CUDA), which timm's ViT and Swin use when
``fused_attn`` is on, have none.  :func:`second_order` selects the math
kernel for the duration and restores the caller's backend settings
afterwards.  The math kernel materialises the ``[B, heads, N, N]`` attention
matrix, so it is slower and needs more memory than the fused kernels (see
the README for measured costs); first-order work (training, sharpness,
surfaces) keeps the fused kernels.

Any other op without a double backward raises :class:`LandscapeError`
naming the op and the model: custom autograd functions whose backward is
marked ``@once_differentiable`` are found in the forward graph before any
product (they would otherwise silently contribute a zero Hessian), and
autograd's "derivative ... is not implemented" errors are translated.
"""

from __future__ import annotations

import contextlib
import re

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from landscape.errors import LandscapeError

_ONCE_CODE = once_differentiable(lambda ctx: None).__code__
_NOT_IMPLEMENTED = re.compile(r"derivative for '?([\w:.]+)'? is not implemented")


def model_label(model: nn.Module) -> str:
    """A model's timm architecture name (e.g. ``vit_tiny_patch16_224``) or its class name."""
    cfg = getattr(model, "pretrained_cfg", None)
    arch = cfg.get("architecture") if isinstance(cfg, dict) else None
    return f"{arch} ({type(model).__name__})" if arch else type(model).__name__


@contextlib.contextmanager
def second_order(model: nn.Module):
    """Math attention inside (fused SDPA kernels lack a double backward); errors without one name op and model.

    The caller's SDPA backend flags are restored on exit, also on error.
    """
    try:
        with _math_attention():
            yield
    except RuntimeError as exc:
        message = str(exc)
        match = _NOT_IMPLEMENTED.search(message)
        if match is None and "differentiate twice" not in message:
            raise
        op = match.group(1) if match else "a custom autograd function marked @once_differentiable"
        raise LandscapeError(_no_double_backward(op, model)) from None


def _math_attention():
    """``sdpa_kernel(SDPBackend.MATH)``; torch < 2.3 spells it ``torch.backends.cuda.sdp_kernel``."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return torch.backends.cuda.sdp_kernel(enable_flash=False, enable_math=True, enable_mem_efficient=False)
    return sdpa_kernel(SDPBackend.MATH)


def check_twice_differentiable(loss: torch.Tensor, model: nn.Module) -> None:
    """Raise :class:`LandscapeError` if ``loss``'s graph holds a custom function with a once-differentiable backward."""
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        cls = getattr(node, "_forward_cls", None)
        backward = getattr(cls, "backward", None)
        if getattr(backward, "__code__", None) is _ONCE_CODE:
            raise LandscapeError(_no_double_backward(f"{cls.__name__} (its backward is @once_differentiable)", model))
        stack.extend(fn for fn, _ in node.next_functions)


def _no_double_backward(op: str, model: nn.Module) -> str:
    return (f"model {model_label(model)} uses {op}, which has no double backward; "
            "Hessian-vector products (hessian, eigen directions) need second derivatives through every op")
