"""torch.nn's modules, by torch's names, over mt.nn.functional.

A Module holds Parameters (leaf tensors that require grad), buffers (state
that is saved but not trained, such as BatchNorm's running statistics) and
child modules, registered by assigning them as attributes, as in torch.
state_dict() names them with torch's dotted keys, so a torch module's
state_dict() loads into the matching module here (load_state_dict takes
modaltensor tensors, NumPy arrays or torch cpu tensors) and both round-trip
through mt.save_file / mt.load_file.

Initial values follow torch's rules (kaiming-uniform weights, the matching
bias bound, N(0, 1) embeddings, ones and zeros for the norms) drawn with
the library's seeded generator: mt.manual_seed(s) before building a model
makes it reproducible on every device.
"""

import collections
import collections.abc
import math
import numbers
import operator

import numpy as np

from .. import _lib
from .._autograd import is_grad_enabled, no_grad
from ..device import Device, as_device
from ..dtypes import DType, as_dtype, float32
from ..errors import InvalidArgumentError
from ..tensor import Tensor, _wrap, empty, tensor, where
from . import functional as F
from . import init

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "Identity", "Linear", "Embedding",
           "LayerNorm", "RMSNorm", "Conv2d", "BatchNorm2d", "Dropout", "GELU", "ReLU", "SiLU",
           "Tanh", "Sigmoid", "Flatten", "CrossEntropyLoss", "MSELoss"]


# ------------------------------------------------------------------ Parameter

class Parameter(Tensor):
    """A tensor that is a module's parameter: a leaf sharing data's values
    that requires grad (unless requires_grad=False), registered by a Module
    when assigned as its attribute (torch.nn.Parameter)."""
    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"modaltensor.nn.Parameter: data must be a Tensor, got "
                            f"{type(data).__name__}")
        param = _adopt(cls, _lib.lib.mt_detach(data._h))
        if requires_grad:
            param.requires_grad_(True)
        return param

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce__(self):
        rebuild, args = super().__reduce__()
        return _rebuild_parameter, (rebuild, args, self.requires_grad)


def _adopt(cls, handle):
    """An object of class cls owning handle (NULL raises the library's error)."""
    plain = _wrap(handle, "mt_detach")
    obj = object.__new__(cls)
    obj._h, plain._h = plain._h, None
    obj._shape = obj._dtype = obj._device = None
    obj._leaf = False
    return obj


def _rebuild_parameter(rebuild, args, requires_grad):
    return Parameter(rebuild(*args), requires_grad)


def _swap_values(t, new):
    """Moves new's handle into t, so that t (a parameter or buffer the caller
    may hold) keeps its identity and now has new's values, as torch's
    `param.data = ...` in Module.to. t keeps requiring grad; its gradient
    is dropped."""
    requires = t.requires_grad
    old, t._h, new._h = t._h, new._h, None
    t._shape = t._dtype = t._device = None
    _lib.lib.mt_tensor_free(old)
    if requires:
        t.requires_grad_(True)


def _as_tensor_value(value):
    """A checkpoint value as a Tensor: modaltensor tensors as they are;
    NumPy arrays and objects NumPy converts (torch cpu tensors) copied."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()  # a torch tensor (no torch import needed)
    if isinstance(value, (np.ndarray, np.generic)):
        return tensor(np.asarray(value))
    return None


def _indent(text, spaces):
    """text with every line after the first indented by spaces (a child's
    repr inside its parent's, as torch prints it)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys",
                                                               "unexpected_keys"])


# --------------------------------------------------------------------- Module

class Module:
    """Base class of every module (torch.nn.Module): subclasses set their
    parameters, buffers and submodules as attributes in __init__ (after
    super().__init__()) and define forward(); calling the module calls
    forward."""

    training = True

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", collections.OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------- registration

    def _registries(self, what):
        registry = self.__dict__.get("_parameters")
        if registry is None:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    def register_parameter(self, name, param):
        """Adds param (a Parameter, or None for an absent one) under name."""
        self._registries("parameters")
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (modaltensor.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Adds a buffer: module state that is not a parameter (no gradient)
        but moves with to() and, when persistent, is in state_dict()."""
        self._registries("buffers")
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Adds a child module (or None) under name."""
        self._registries("modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name, kind, registry):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name must be non-empty and contain no '.', got {name!r}")
        if name not in registry and name in self.__dict__:
            raise KeyError(f"attribute '{name}' already exists")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(modaltensor.nn.Parameter or None expected)")
            params[name] = None
            return
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (Module or None expected)")
            modules[name] = None
            return
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def _forget(self, name):
        """Removes name from every registry and the instance dict (it is
        about to be registered anew)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):
        # Only called when ordinary lookup fails: the registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                del entries[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    # -------------------------------------------------------- traversal

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) of this module and every descendant, each
        once (by identity) unless remove_duplicate=False."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        owners = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for owner_prefix, owner in owners:
            for name, value in owner.__dict__[registry].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield owner_prefix + ("." if owner_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) of this module's parameters and, with
        recurse, its descendants' (a shared parameter once)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Calls fn on every child (recursively) and then on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------ state dicts

    def _local_state(self):
        """(name, tensor) of this module's own state_dict entries in torch's
        order: parameters, then persistent buffers."""
        for name, param in self._parameters.items():
            if param is not None:
                yield name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent:
                yield name, buffer

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An OrderedDict of every parameter and persistent buffer by dotted
        name (torch's keys and order). Values are detached tensors sharing
        the module's storage (the tensors themselves with keep_vars)."""
        if destination is None:
            destination = collections.OrderedDict()
        for name, value in self._local_state():
            destination[prefix + name] = value if keep_vars else value.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True):
        """Copies every entry of state_dict into the parameter or buffer of
        the same dotted name, in place (converted to its dtype, on its
        device). A shape mismatch or a value that is not a tensor raises
        RuntimeError, as do (with strict) missing and unexpected keys,
        with torch's messages; nothing is copied then. Returns
        (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = self.state_dict(keep_vars=True)
        missing, errors, copies = [], [], []
        for key, target in own.items():
            if key not in state_dict:
                missing.append(key)
                continue
            value = _as_tensor_value(state_dict[key])
            if value is None:
                errors.append(f'While copying the parameter named "{key}", expected Tensor or '
                              f"Tensor-like object from checkpoint but received "
                              f"{type(state_dict[key])}")
            elif tuple(value.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{_shape_text(value.shape)} from checkpoint, the shape in "
                              f"current model is {_shape_text(target.shape)}.")
            else:
                copies.append((target, value))
        unexpected = [key for key in state_dict if key not in own]
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" +
                               "\n\t".join(errors))
        with no_grad():
            for target, value in copies:
                target.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------- devices, modes

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """Moves every parameter and buffer to device and/or converts the
        floating ones to dtype (Module.to: m.to("modal"), m.to(mt.float64),
        m.to(tensor)); returns self. The Parameter objects stay the same
        (their values are replaced), their gradients are dropped. Move a
        model before making its optimizer: an mt.optim optimizer keeps its
        own handles on the tensors it was given."""
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, DType):
                dtype = arg
            elif isinstance(arg, Device) or (isinstance(arg, str) and
                                             arg.startswith(("cpu", "modal"))):
                device = arg
            else:
                dtype = arg
        device = None if device is None else as_device(device)
        dtype = None if dtype is None else as_dtype(dtype)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                            f"dtype={dtype}")
        with no_grad():
            for module in self.modules():
                for registry in (module._parameters, module._buffers):
                    for value in registry.values():
                        if value is not None:
                            self._move(value, device, dtype)
        return self

    @staticmethod
    def _move(t, device, dtype):
        target_device = t.device if device is None else device
        target_dtype = dtype if dtype is not None and t.dtype.is_floating_point else t.dtype
        if target_device == t.device and target_dtype is t.dtype:
            return
        _swap_values(t, t.detach().to(device=target_device, dtype=target_dtype))

    def cpu(self):
        return self.to("cpu")

    def modal(self, index=0):
        return self.to(f"modal:{index}")

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def half(self):
        return self.to(dtype="float16")

    def bfloat16(self):
        return self.to(dtype="bfloat16")

    def train(self, mode=True):
        """Sets training mode on this module and every descendant (Dropout
        drops, BatchNorm uses and updates batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """train(False): Dropout passes through, BatchNorm uses its running
        statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Drops every parameter's gradient (the next backward starts from
        zero); set_to_none=False writes zeros into the existing gradients
        instead, as torch does."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
                continue
            grad = param.grad
            if grad is not None:
                with no_grad():
                    grad.zero_()

    # -------------------------------------------------------------- repr

    def extra_repr(self):
        """The text inside this module's parentheses (subclasses override)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _indent(repr(module), 2)
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if len(extra_lines) == 1 and not child_lines:
            text += extra_lines[0]
        elif lines:
            text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"

    def __dir__(self):
        names = list(super().__dir__())
        for registry in ("_parameters", "_buffers", "_modules"):
            names += list(self.__dict__.get(registry, {}))
        return sorted(set(names))


def _shape_text(shape):
    """A shape as torch prints one in load_state_dict's messages."""
    return f"torch.Size({list(shape)})"


# --------------------------------------------------------------- containers

class Sequential(Module):
    """Modules called in order, each on the previous one's output
    (torch.nn.Sequential): Sequential(m0, m1, ...) names them "0", "1", ...;
    Sequential(OrderedDict) keeps the dict's names."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _index(self, index):
        size = len(self._modules)
        index = operator.index(index)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(collections.OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[self._index(index)]

    def __setitem__(self, index, module):
        key = list(self._modules)[self._index(index)]
        setattr(self, key, module)

    def __delitem__(self, index):
        keys = list(self._modules)
        for key in (keys[index] if isinstance(index, slice) else [keys[self._index(index)]]):
            del self._modules[key]
        # torch keeps the remaining names; so do we

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ...
    (torch.nn.ModuleList); it has no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index):
        size = len(self._modules)
        index = operator.index(index)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[str(self._index(index))]

    def __setitem__(self, index, module):
        self.add_module(str(self._index(index)), module)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[index if isinstance(index, slice) else self._index(index)]
        self._renumber(modules)

    def _renumber(self, modules):
        self._modules.clear()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)


# ------------------------------------------------------------------- layers

def _factory(device, dtype):
    """(device, dtype) of a module's new parameters: torch's device= and
    dtype= (cpu and float32 by default)."""
    return as_device(device), float32 if dtype is None else as_dtype(dtype)


def _new_parameter(shape, device, dtype):
    return Parameter(empty(tuple(shape), dtype=dtype, device=device))


class Identity(Module):
    """Returns its input (torch.nn.Identity); arguments are ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x @ weight.T + bias (torch.nn.Linear): weight [out, in] and bias
    [out] uniform in +-1/sqrt(in_features) (torch's kaiming_uniform with
    a = sqrt(5), and its bias bound)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        device, dtype = _factory(device, dtype)
        self.in_features = operator.index(in_features)
        self.out_features = operator.index(out_features)
        self.weight = _new_parameter((self.out_features, self.in_features), device, dtype)
        if bias:
            self.bias = _new_parameter((self.out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """Rows of weight [num_embeddings, embedding_dim] picked by integer
    indices (torch.nn.Embedding); weight ~ N(0, 1), the padding_idx row
    zero, and that row gets no gradient. max_norm, scale_grad_by_freq and
    sparse are not supported."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise InvalidArgumentError("modaltensor.nn.Embedding: max_norm, scale_grad_by_freq "
                                       "and sparse are not supported")
        device, dtype = _factory(device, dtype)
        self.num_embeddings = operator.index(num_embeddings)
        self.embedding_dim = operator.index(embedding_dim)
        if padding_idx is not None:
            padding_idx = operator.index(padding_idx)
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = _new_parameter((self.num_embeddings, self.embedding_dim), device,
                                         dtype)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and "
                                 "embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0.0)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding whose weight shares the 2-D embeddings' values (not
        trained when freeze)."""
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def forward(self, input):
        out = F.embedding(input, self.weight)
        if self.padding_idx is not None and is_grad_enabled() and self.weight.requires_grad:
            # torch's forward still returns the padding row; only its gradient is cut
            keep = (input != self.padding_idx).unsqueeze(-1)
            out = where(keep, out, F.embedding(input, self.weight.detach()))
        return out

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text


def _normalized_shape(value):
    if isinstance(value, numbers.Integral):
        return (int(value),)
    return tuple(operator.index(s) for s in value)


def _over_trailing(fn, input, shape, weight, *rest):
    """fn (F.layer_norm / F.rms_norm, which normalise over the last dim)
    over the trailing dims named by shape: those dims are flattened into
    one for the call."""
    k = len(shape)
    if tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise InvalidArgumentError(f"modaltensor.nn: normalized_shape {list(shape)} does not "
                                   f"match the trailing dims of input {list(input.shape)}")
    if k == 1:
        return fn(input, shape, weight, *rest)
    size = math.prod(shape)
    lead = tuple(input.shape[:input.ndim - k])
    flat = input.reshape(lead + (size,))
    flat_rest = [None if r is None else r.reshape(size) if isinstance(r, Tensor) else r
                 for r in rest]
    out = fn(flat, size, None if weight is None else weight.reshape(size), *flat_rest)
    return out.reshape(input.shape)


class LayerNorm(Module):
    """Normalises over the trailing normalized_shape dims, then scales by
    weight (ones) and shifts by bias (zeros) (torch.nn.LayerNorm)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        device, dtype = _factory(device, dtype)
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = _new_parameter(self.normalized_shape, device, dtype)
            if bias:
                self.bias = _new_parameter(self.normalized_shape, device, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return _over_trailing(F.layer_norm, input, self.normalized_shape, self.weight,
                              self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(Module):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) *
    weight (ones) (torch.nn.RMSNorm of torch 2.4; eps None is the dtype's
    machine epsilon)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        device, dtype = _factory(device, dtype)
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = _new_parameter(self.normalized_shape, device, dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        return _over_trailing(F.rms_norm, input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def _pair(value):
    if isinstance(value, numbers.Integral):
        return (int(value),) * 2
    value = tuple(operator.index(v) for v in value)
    return value * 2 if len(value) == 1 else value


class Conv2d(Module):
    """2-D convolution (torch.nn.Conv2d): weight [out, in / groups, kh, kw]
    and bias [out], uniform in +-1/sqrt(fan_in). padding is ints, 'valid'
    or 'same'; padding_mode 'zeros', 'reflect' or 'replicate'."""

    _PADDING_MODES = ("zeros", "reflect", "replicate")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        device, dtype = _factory(device, dtype)
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in self._PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(self._PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.dilation = _pair(dilation)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding)
        self.groups, self.padding_mode = groups, padding_mode
        self.output_padding = (0, 0)
        self.transposed = False
        self.weight = _new_parameter((out_channels, in_channels // groups) + self.kernel_size,
                                     device, dtype)
        if bias:
            self.bias = _new_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = (self.in_channels // self.groups) * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _explicit_padding(self):
        """(left, right, top, bottom) for F.pad when padding_mode is not zeros."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            pads = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        ph, pw = self.padding
        return (pw, pw, ph, ph)

    def forward(self, input):
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._explicit_padding(), mode=self.padding_mode)
            return F.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation,
                            self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
                f", stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class BatchNorm2d(Module):
    """Per-channel batch normalisation of [N, C, H, W] (torch.nn.BatchNorm2d).
    Training normalises with the batch statistics and updates running_mean
    and running_var (momentum; None: a cumulative average, which reads
    num_batches_tracked, a sync on modal); eval uses the running statistics.
    weight ones, bias zeros; buffers running_mean zeros, running_var ones,
    num_batches_tracked an int64 count."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        device, dtype = _factory(device, dtype)
        self.num_features = operator.index(num_features)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = _new_parameter((self.num_features,), device, dtype)
            self.bias = _new_parameter((self.num_features,), device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", empty(self.num_features, dtype=dtype,
                                                       device=device))
            self.register_buffer("running_var", empty(self.num_features, dtype=dtype,
                                                      device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.fill_(0.0)
                self.running_var.fill_(1.0)
                self.num_batches_tracked.fill_(0)

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input):
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_stats else None,
                            self.running_var if keep_stats else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class Dropout(Module):
    """Zeroes each element with probability p and scales the rest by
    1 / (1 - p) in training; passes its input through in eval
    (torch.nn.Dropout). Masks come from the library's seeded generator (see
    mt.manual_seed). inplace=True is not supported."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace:
            raise ValueError("modaltensor.nn.Dropout: inplace=True is not supported; results "
                             "are new tensors")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class GELU(Module):
    """GELU, exact (approximate='none') or its tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class _Activation(Module):
    _function = None

    def __init__(self, inplace=False):
        super().__init__()
        if inplace:
            raise ValueError(f"modaltensor.nn.{type(self).__name__}: inplace=True is not "
                             "supported; results are new tensors")
        self.inplace = inplace

    def forward(self, input):
        return type(self)._function(input)


class ReLU(_Activation):
    """max(x, 0) (torch.nn.ReLU)."""
    _function = staticmethod(F.relu)


class SiLU(_Activation):
    """x * sigmoid(x) (torch.nn.SiLU)."""
    _function = staticmethod(F.silu)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (torch.nn.Flatten; from
    dim 1 by default, so the batch dim stays)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class CrossEntropyLoss(Module):
    """F.cross_entropy of logits against class indices (torch.nn.CrossEntropyLoss)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        if weight is not None:
            raise InvalidArgumentError("modaltensor.nn.CrossEntropyLoss: class weights are not "
                                       "supported")
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class MSELoss(Module):
    """Mean (or sum, or none) of the squared differences (torch.nn.MSELoss)."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        self.reduction = reduction

    def forward(self, input, target):
        diff = input - target
        squared = diff * diff
        if self.reduction == "mean":
            return squared.mean()
        if self.reduction == "sum":
            return squared.sum()
        return squared
