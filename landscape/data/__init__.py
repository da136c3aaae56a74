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

from landscape.data.duplicates import Duplicates, find_duplicates
from landscape.data.folder import clear_cache
from landscape.data.images import Images, load_images
from landscape.data.inspect import inspect_data
from landscape.data.splits import kfold_split, make_split, manifest_hash, select
from landscape.data.transforms import augment, norm_stats, normalise, random_affine, to_float

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
