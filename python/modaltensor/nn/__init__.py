"""modaltensor.nn: PyTorch's torch.nn names over modaltensor ops: the modules
(mt.nn.Linear, mt.nn.Module, ...), their functional forms
(mt.nn.functional), the initialisers (mt.nn.init) and gradient clipping
(mt.nn.utils)."""

from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import modules  # noqa: F401
from . import utils  # noqa: F401  (clip_grad_norm_)
from .modules import *  # noqa: F401,F403

__all__ = ["functional", "init", "modules", "utils"] + modules.__all__
