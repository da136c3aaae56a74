"""Data: image folders and the phantom, near-duplicates, splits, tensors and augmentation.

```python
images = load_images(None | "path/to/busi", img_size=64, seed=0)   # Images
dups = find_duplicates(images)                      # near-duplicate groups, label conflicts
manifest = make_split(images, fractions=(0.7, 0.1, 0.2), seed=0)  # or kfold_split(...)
x_uint8, y = select(images, manifest, "train")      # checks files and content hashes
mean, std = norm_stats(x_uint8)
x = to_float(x_uint8, mean, std)                    # float32 [N, 1, S, S]
x_aug = augment(x, generator)                       # flip + small affine, training only
report = inspect_data("path/to/busi")               # what `landscape data inspect` shows
```
"""

import importlib

#: public name -> the module that defines it; each is imported on first use, so that importing a
#: light sub-module (``landscape.data.defaults``) does not load numpy, scipy or torch.
_API = {
    "Duplicates": "duplicates", "find_duplicates": "duplicates", "clear_cache": "folder",
    "Images": "images", "load_images": "images", "inspect_data": "inspect",
    "kfold_split": "splits", "make_split": "splits", "manifest_hash": "splits", "select": "splits",
    "augment": "transforms", "norm_stats": "transforms", "normalise": "transforms", "random_affine": "transforms",
    "to_float": "transforms",
}

__all__ = [
    "Duplicates",
    "Images",
    "augment",
    "clear_cache",
    "find_duplicates",
    "inspect_data",
    "kfold_split",
    "load_images",
    "make_split",
    "manifest_hash",
    "norm_stats",
    "normalise",
    "random_affine",
    "select",
    "to_float",
]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'landscape.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"landscape.data.{_API[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
