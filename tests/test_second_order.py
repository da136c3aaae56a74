"""Second derivatives through attention and ops without a double backward (landscape.hessian.second_order)."""

from __future__ import annotations

import copy

import pytest
import torch
from test_model_families import FAMILIES, build, inputs
from torch import nn
from torch.autograd.function import once_differentiable

from landscape.errors import LandscapeError
from landscape.hessian import hvp_operator, top_eigenvalues
from landscape.models import create

CE = nn.CrossEntropyLoss()


def tiny_vit(device="cpu", dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    model = create("vit_tiny_patch16_224", num_classes=3, img_size=16, patch_size=8, embed_dim=8, depth=1, num_heads=2)
    return model.to(device, dtype).eval()


def data(device="cpu", dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 1, 16, 16, generator=g).to(device, dtype), torch.arange(4, device=device) % 3


def sdpa_flags() -> tuple[bool, bool, bool, bool]:
    b = torch.backends.cuda
    return b.flash_sdp_enabled(), b.mem_efficient_sdp_enabled(), b.math_sdp_enabled(), b.cudnn_sdp_enabled()


def test_timm_vit_double_backward_fails_on_the_fused_kernel_without_the_math_backend():
    # The reproduction of the bug: timm's ViT uses F.scaled_dot_product_attention, whose default CPU kernel
    # (flash) has no double backward. If timm ever stops using it, this test says so.
    model = tiny_vit()
    assert model.blocks[0].attn.fused_attn
    x, y = data()
    grads = torch.autograd.grad(CE(model(x), y), list(model.parameters()), create_graph=True)
    with pytest.raises(RuntimeError, match="scaled_dot_product_flash_attention"):
        torch.autograd.grad(sum(g.sum() for g in grads), list(model.parameters()))


def test_operator_uses_math_attention_and_restores_the_callers_settings():
    model = tiny_vit()
    x, y = data()
    seen = []
    torch.backends.cuda.enable_mem_efficient_sdp(False)  # a caller's own choice, kept afterwards
    try:
        before = sdpa_flags()
        op = hvp_operator(model, CE, [(x, y)])
        op.callback = lambda: seen.append(sdpa_flags())
        res = top_eigenvalues(op, k=1, tol=1e-3)
        assert sdpa_flags() == before
    finally:
        torch.backends.cuda.enable_mem_efficient_sdp(True)
    assert res.converged[0] and res.eigenvalues[0] > 0
    assert seen and all(flags == before for flags in seen)  # callbacks run outside the math-only region


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * x * grad


class CubeNet(nn.Module):
    """Linear -> a once-differentiable cube -> linear."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(5, 4), nn.Linear(4, 3)

    def forward(self, x):
        return self.b(Cube.apply(self.a(x)))


class FlashNet(nn.Module):
    """Calls the CPU flash attention kernel directly (no backend choice), like a model hard-wiring a fused op."""

    def __init__(self):
        super().__init__()
        self.q, self.head = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):  # x: [B, 4]
        q = self.q(x).view(-1, 1, 2, 4)
        out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, q, q)[0]
        return self.head(out.reshape(-1, 8))


def test_once_differentiable_op_gives_a_clean_error_naming_op_and_model():
    torch.manual_seed(0)
    x, y = torch.randn(6, 5), torch.arange(6) % 3
    with pytest.raises(LandscapeError, match=r"model CubeNet uses Cube \(its backward is @once_differentiable\)"):
        hvp_operator(CubeNet(), CE, [(x, y)])


def test_op_without_double_backward_gives_a_clean_error_naming_op_and_model():
    torch.manual_seed(0)
    x, y = torch.randn(6, 4), torch.arange(6) % 3
    op = hvp_operator(FlashNet(), CE, [(x, y)])
    with pytest.raises(LandscapeError) as info:
        op.matvec(torch.ones(op.size))
    message = str(info.value)
    assert "model FlashNet uses aten::_scaled_dot_product_flash_attention_for_cpu_backward" in message
    assert "no double backward" in message and "\n" not in message


def test_other_runtime_errors_pass_through():
    from landscape.hessian.second_order import second_order

    with pytest.raises(RuntimeError, match="boom"):
        with second_order(nn.Linear(1, 1)):
            raise RuntimeError("boom")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", list(FAMILIES))
def test_cuda_float32_hvp_matches_the_cpu_float64_hvp(family):
    # float32 on CUDA selects the fused kernels (flash, memory-efficient, cuDNN), none with a double backward;
    # the CPU float64 operator is itself checked against finite differences in test_model_families.
    model = build(family)
    x, y = inputs(family)
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    ref_op = hvp_operator(model, CE, [(x, y)])
    gpu = copy.deepcopy(model).to("cuda", torch.float32)
    before = sdpa_flags()
    op = hvp_operator(gpu, CE, [(x.to("cuda", torch.float32), y.to("cuda"))])
    assert op.names == ref_op.names
    v = v[:op.size]
    hv = op.matvec(v.to("cuda", torch.float32)).double().cpu()
    assert sdpa_flags() == before
    ref = ref_op.matvec(v)
    assert (hv - ref).norm() <= 1e-3 * ref.norm()
