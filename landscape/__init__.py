"""landscape: loss-landscape and sharpness analysis of image classifiers.

Layers, left to right (a module imports only from its left):
``data`` -> ``models`` -> ``optim`` -> ``train`` -> ``checkpoint`` ->
analysis (``hessian``, ``sharpness``, ``directions``, ``surface``) ->
``report`` -> ``study`` -> ``cli``.  ``errors``, ``io``, ``progress`` and
``metrics`` are shared utilities below all of them.
"""

__version__ = "0.1.0"


def load_checkpoint(path, device=None, data_root=None):
    """Load a checkpoint or run folder; see :func:`landscape.checkpoint.load_checkpoint`."""
    from landscape.checkpoint import load_checkpoint as _load

    return _load(path, device=device, data_root=data_root)


__all__ = ["__version__", "load_checkpoint"]
