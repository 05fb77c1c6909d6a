"""modaltensor.nn: PyTorch's torch.nn names over modaltensor ops: the modules
(mt.nn.Linear, mt.nn.Module, ...), their functional forms
(mt.nn.functional) and the initialisers (mt.nn.init)."""

from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import modules  # noqa: F401
from .modules import *  # noqa: F401,F403

__all__ = ["functional", "init", "modules"] + modules.__all__
