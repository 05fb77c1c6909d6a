"""modaltensor.nn: PyTorch's torch.nn names over modaltensor ops (so far the
functional ones, in mt.nn.functional)."""

from . import functional  # noqa: F401

__all__ = ["functional"]
