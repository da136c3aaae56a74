"""A SAM-family optimizer in a plain PyTorch training loop.

Every landscape optimizer takes a closure (zero grads, forward, backward,
return the loss) and calls it once per pass it needs (2 for SAM).
Run: python examples/sam_in_your_loop.py [--tiny] [--optimizer asam]
"""

import argparse

import torch
from torch import nn

import landscape
from landscape.optim import list_optimizers

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
parser.add_argument("--optimizer", default="sam", choices=list_optimizers())
args = parser.parse_args()
steps = 20 if args.tiny else 300

torch.manual_seed(0)
x = torch.randn(256, 10)
y = (x[:, 0] + x[:, 1] > 0).long()  # a linearly separable toy task
model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
opt = landscape.create_optimizer(args.optimizer, model, base="sgd", lr=0.1, rho=0.05)
loss_fn = nn.CrossEntropyLoss()

for step in range(steps):
    idx = torch.randint(0, len(x), (32,))

    def closure(idx=idx):
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        return loss

    loss = opt.step(closure)  # the clean-pass loss
    if step % max(1, steps // 5) == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")

model.eval()
accuracy = (model(x).argmax(1) == y).float().mean().item()
print(f"{opt.name}: {opt.passes_per_step} passes per step, hyper {opt.hyper}, train accuracy {accuracy:.3f}")
