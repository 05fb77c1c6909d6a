"""modaltensor.optim: torch.optim's SGD and AdamW over the library's fused
updates (mt_sgd, mt_adamw in include/modaltensor.h).

A step runs one fused node per parameter on the parameter's own device and
writes the result into the parameter; on a modal device nothing is
downloaded. Each parameter group is one C optimizer; a group's 'lr' may be
changed between steps (schedules), as in torch. The other hyperparameters
are fixed when the optimizer is made.
"""

import math
from ctypes import POINTER, c_double, c_int, c_void_p

from . import _lib
from .errors import check, last_error
from .nn import utils as _nn_utils  # noqa: F401  (mt.nn.utils.clip_grad_norm_)
from .tensor import Tensor

_OPTIMIZER = c_void_p  # mt_optimizer *
_TENSORS = POINTER(c_void_p)  # mt_tensor *const *

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_sgd": (_OPTIMIZER, [c_int, _TENSORS, c_double, c_double, c_double, c_int]),
    "mt_adamw": (_OPTIMIZER, [c_int, _TENSORS, c_double, c_double, c_double, c_double,
                              c_double]),
    "mt_optimizer_step": (c_int, [_OPTIMIZER]),
    "mt_optimizer_zero_grad": (c_int, [_OPTIMIZER]),
    "mt_optimizer_set_lr": (c_int, [_OPTIMIZER, c_double]),
    "mt_optimizer_free": (None, [_OPTIMIZER]),
    "mt_clip_grad_norm": (c_int, [c_int, _TENSORS, c_double, POINTER(c_void_p)]),
}
_lib.declare(PROTOTYPES)

__all__ = ["Optimizer", "SGD", "AdamW"]


def handles(tensors):
    """A ctypes array of the tensors' handles (never NULL, also when empty)."""
    return (c_void_p * max(len(tensors), 1))(*[t._h for t in tensors])


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """The shared part of SGD and AdamW: param_groups (a list of dicts with
    'params' and the hyperparameters), step(), zero_grad()."""

    _NAME = "Optimizer"

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(f"modaltensor.optim.{self._NAME}: params must be an iterable of "
                            "Tensors or of dicts, not a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"modaltensor.optim.{self._NAME}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        self._handles = []  # one mt_optimizer * per group
        seen = set()
        try:
            for group in groups:
                self._add_group(dict(group), seen)
        except BaseException:
            self._free()
            raise

    def _add_group(self, group, seen):
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"modaltensor.optim.{self._NAME}: a parameter is a "
                                f"{type(p).__name__}, expected a Tensor")
            if id(p) in seen:
                raise ValueError(f"modaltensor.optim.{self._NAME}: some parameters appear in "
                                 "more than one parameter group")
            seen.add(id(p))
        if not params:
            raise ValueError(f"modaltensor.optim.{self._NAME}: a parameter group is empty")
        for key, value in self.defaults.items():
            if value is required and key not in group:
                raise TypeError(f"modaltensor.optim.{self._NAME}: parameter group didn't "
                                f"specify a value of required optimization parameter {key}")
            group.setdefault(key, value)
        group["params"] = params
        handle = self._make(params, group)
        if not handle:
            raise last_error(self._FN)
        self._handles.append(handle)
        group["_lr_set"] = group["lr"]
        self.param_groups.append(group)

    def _free(self):
        for handle in getattr(self, "_handles", []):
            _lib.lib.mt_optimizer_free(handle)
        self._handles = []

    def __del__(self):
        self._free()

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params" and not k.startswith("_")):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines + [")"])

    def step(self, closure=None):
        """One update of every parameter that has a gradient (those without
        one are skipped, as torch does). closure, when given, is called
        first and its result returned (it recomputes the loss)."""
        loss = None
        if closure is not None:
            loss = closure()
        for handle, group in zip(self._handles, self.param_groups):
            lr = group["lr"]
            if lr != group["_lr_set"]:
                check(_lib.lib.mt_optimizer_set_lr(handle, float(lr)), "mt_optimizer_set_lr")
                group["_lr_set"] = lr
            check(_lib.lib.mt_optimizer_step(handle), "mt_optimizer_step")
        return loss

    def zero_grad(self, set_to_none=True):
        """Drops every parameter's gradient (set_to_none=True, torch's
        default), or fills the gradients with zeros in place."""
        if set_to_none:
            for handle in self._handles:
                check(_lib.lib.mt_optimizer_zero_grad(handle), "mt_optimizer_zero_grad")
            return
        for group in self.param_groups:
            for p in group["params"]:
                _nn_utils.fill_grad_(p, 0.0)


class SGD(Optimizer):
    """torch.optim.SGD: lr, momentum, weight_decay (L2, added to the
    gradient) and nesterov; dampening must be 0 and maximize False."""

    _NAME, _FN = "SGD", "mt_sgd"

    def __init__(self, params, lr=required, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False):
        if lr is not required and not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self._unsupported(dampening=dampening != 0, maximize=maximize,
                          differentiable=differentiable)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable))

    def _unsupported(self, **flags):
        for name, on in flags.items():
            if on:
                raise NotImplementedError(f"modaltensor.optim.{self._NAME}: {name} is not "
                                          "supported")

    def _make(self, params, group):
        self._unsupported(dampening=group["dampening"] != 0, maximize=group["maximize"])
        return _lib.lib.mt_sgd(len(params), handles(params), float(group["lr"]),
                               float(group["momentum"]), float(group["weight_decay"]),
                               1 if group["nesterov"] else 0)


class AdamW(Optimizer):
    """torch.optim.AdamW: decoupled weight decay, bias-corrected moments;
    amsgrad and maximize must be False."""

    _NAME, _FN = "AdamW", "mt_adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        for name, on in dict(amsgrad=amsgrad, maximize=maximize,
                             differentiable=differentiable).items():
            if on:
                raise NotImplementedError(f"modaltensor.optim.AdamW: {name} is not supported")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused))

    def _make(self, params, group):
        if group["amsgrad"] or group["maximize"]:
            raise NotImplementedError("modaltensor.optim.AdamW: amsgrad and maximize are not "
                                      "supported")
        beta1, beta2 = group["betas"]
        if math.isnan(beta1) or math.isnan(beta2):
            raise ValueError(f"Invalid beta parameters: {group['betas']}")
        return _lib.lib.mt_adamw(len(params), handles(params), float(group["lr"]), float(beta1),
                                 float(beta2), float(group["eps"]), float(group["weight_decay"]))
