"""Fine-tune a pretrained backbone in your own loop: local weights, AdamW groups, SAM, bf16, then its Hessian.

The recipe medical-imaging papers use, offline: ImageNet weights from a file
(first conv adapted to grey input, head new), AdamW with no weight decay on
normalisation weights and biases, SAM around it, bf16 autocast for every
pass; then the Hessian of the fine-tuned model on a loader of dicts.

Run: python examples/finetune.py [--tiny] [--weights resnet18.safetensors]
Without --weights a stand-in file (random ImageNet-shaped weights) is written
to a temporary folder, as a downloaded checkpoint would be.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from scipy.sparse.linalg import eigsh
from torch import nn
from torch.utils.data import DataLoader, Dataset

import landscape
from landscape.data.phantom import load_phantom
from landscape.models.weights import load_weights
from landscape.optim.groups import weight_decay_groups

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
parser.add_argument("--weights", type=Path, help=".safetensors/.pth state dict or timm/HF cache folder")
args = parser.parse_args()
# --tiny shrinks resnet18 with timm's own arguments; real runs use the full backbone
arch = {"layers": [1, 1, 1, 1], "channels": [8, 8, 8, 8]} if args.tiny else {}
size, steps, n_images = (32, 4, 48) if args.tiny else (64, 200, 1000)

torch.manual_seed(0)
if args.weights is None:  # a stand-in for a downloaded ImageNet checkpoint
    from safetensors.torch import save_file

    imagenet = landscape.create_model("resnet18", num_classes=1000, in_chans=3, img_size=224, **arch)
    scratch = tempfile.TemporaryDirectory()  # removed when the script ends
    args.weights = Path(scratch.name) / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, args.weights)

model = landscape.create_model("resnet18", num_classes=2, in_chans=1, img_size=size, **arch)
info = load_weights(model, args.weights)  # first conv summed to 1 channel, head re-initialised
print(f"weights {info['file']} sha256 {info['sha256'][:16]}: adapted {info['adapted']}, fresh head {info['head']}")


class Ultrasound(Dataset):
    """Phantom images as dict samples, the layout many medical-imaging loaders use."""

    def __init__(self, n: int):
        images = load_phantom(seed=0, img_size=size)
        keep = torch.as_tensor(images.labels < 2)[:n]  # benign vs malignant
        self.x = images.pixels[:n][keep].float().div(255).sub(0.5).div(0.25)
        self.y = torch.as_tensor(images.labels[:n])[keep]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}


data = Ultrasound(n_images)
loader = DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
loss_fn = nn.CrossEntropyLoss()
groups = weight_decay_groups(model, weight_decay=0.05)  # no decay on norms and biases
opt = landscape.create_optimizer("sam", groups, base=torch.optim.AdamW, lr=1e-3, rho=0.05, amp="bf16", model=model)

model.train()
step = 0
while step < steps:
    for batch in loader:
        def closure(batch=batch):
            opt.zero_grad()
            loss = loss_fn(model(batch["image"]), batch["label"])  # the optimizer runs this under bf16 autocast
            opt.backward(loss)  # outside autocast (and loss-scaled with amp="fp16")
            return loss

        loss = opt.step(closure)
        if step % max(1, steps // 4) == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  (skipped steps: {opt.skipped_steps})")
        step += 1
        if step == steps:
            break

model.eval()
probe = DataLoader(torch.utils.data.Subset(data, range(32)), batch_size=16)  # not shuffled: re-read per product
H = landscape.hessian_operator(model, loss_fn, probe)  # dict batches read as (image, label); float32, no autocast
top = eigsh(H.to_scipy(), k=2, which="LA", tol=1e-3, return_eigenvectors=False)
print(f"Hessian: {H.shape[0]} parameters, reduction {H.reduction}, top eigenvalues (scipy eigsh) "
      f"{sorted(top.tolist(), reverse=True)}, {H.hvps} Hessian-vector products")
