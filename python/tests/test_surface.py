"""The Python op surface against its sources of truth, so that nothing drifts:

- every function of include/modaltensor.h has a ctypes prototype in the
  binding (_lib.py or an _ops_*.py family module), with the argument and
  result types the header declares;
- every op of src/core/ops.def has its public C function and is reachable
  from Python as modaltensor.<name>, Tensor.<name> or
  modaltensor.nn.functional.<name> (PyTorch's names).
"""

import ctypes
import os
import re
import sys

import pytest

import modaltensor as mt
from modaltensor import _lib

pycparser = pytest.importorskip("pycparser")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = os.path.join(ROOT, "include", "modaltensor.h")
OPS_DEF = os.path.join(ROOT, "src", "core", "ops.def")
sys.path.insert(0, os.path.join(ROOT, "tests", "packaging"))
from test_cffi_header import reduce_header  # noqa: E402

# Ops without a public function of their own: how users reach them.
INTERNAL_OPS = {"copy": "mt_clone, mt_contiguous, mt_to and mt_copy_"}
# The optimizer updates are run by mt_optimizer_step (mt_sgd, mt_adamw), and
# reached from Python through modaltensor.optim.
INTERNAL_OPS.update({"sgd_step": "mt_sgd and mt_optimizer_step",
                     "adamw_step": "mt_adamw and mt_optimizer_step"})
# Ops whose node has outputs past the first that are statistics kept for the
# backward (see their ops.def rows): their public function returns the first
# output alone, as mt_tensor *.
ONE_RESULT_OPS = {"group_norm", "batch_norm", "cross_entropy", "max_pool2d",
                  "scaled_dot_product_attention"}
# Ops whose Python name differs from the table's (PyTorch's spelling).
PYTHON_NAMES = {"add_scalar": "add", "mul_scalar": "mul", "pow_scalar": "pow",
                "copy": "clone", "max_dim": "max", "min_dim": "min"}
PYTHON_NAMES.update({"sgd_step": "optim", "adamw_step": "optim"})  # mt.optim.SGD, AdamW
# The fused backwards are run by the backward rules (Tensor.backward).
FUSED_BACKWARDS = ("batch_norm", "layer_norm", "rms_norm", "cross_entropy")
INTERNAL_OPS.update({f"{op}_backward": f"mt_backward through mt_{op}" for op in FUSED_BACKWARDS})
PYTHON_NAMES.update({f"{op}_backward": "backward" for op in FUSED_BACKWARDS})
# The convolution backward ops run inside the backward of conv1d/conv2d and avg_pool2d.
INTERNAL_OPS.update({"conv2d_input_grad": "the backward of mt_conv1d, mt_conv2d, mt_avg_pool2d",
                     "conv2d_weight_grad": "the backward of mt_conv1d and mt_conv2d"})
PYTHON_NAMES.update({"conv2d_input_grad": "conv2d", "conv2d_weight_grad": "conv2d"})  # .backward()


def table_ops():
    """(name, kind, nout) of every row of ops.def, in wire order."""
    text = open(OPS_DEF).read()
    rows = re.findall(r"^MT_OP\((\w+), (\w+), (\w+), (-?\d+), (\d+),", text, re.M)
    assert rows, "no MT_OP rows found in ops.def"
    return [(name, kind, int(nout)) for _, name, kind, _, nout in rows]


def _c_type(node):
    """A pycparser type node as a compact string: 'const mt_tensor *', ..."""
    from pycparser import c_ast
    if isinstance(node, c_ast.PtrDecl):
        inner = _c_type(node.type)
        return inner + " *" + (" const" if "const" in node.quals else "")
    if isinstance(node, c_ast.ArrayDecl):
        return _c_type(node.type) + " *"  # an array parameter is a pointer
    if isinstance(node, c_ast.TypeDecl):
        quals = "const " if "const" in node.quals else ""
        t = node.type
        name = " ".join(t.names) if isinstance(t, c_ast.IdentifierType) else f"struct {t.name}"
        return quals + name
    raise AssertionError(f"unexpected type node {node!r}")


def header_functions():
    """{name: (result type, [parameter types])} of the public header."""
    from pycparser import c_ast, c_parser
    source, _, macros = reduce_header(open(HEADER).read())
    for name, value in macros.items():
        source = re.sub(rf"\b{name}\b", str(value), source)
    typedefs = "typedef int int32_t; typedef int int64_t; typedef int uint64_t; " \
               "typedef int uint32_t; typedef int uint8_t; typedef int size_t;\n"
    ast = c_parser.CParser().parse(typedefs + source)
    functions = {}
    for decl in ast.ext:
        if isinstance(decl, c_ast.Decl) and isinstance(decl.type, c_ast.FuncDecl):
            params = decl.type.args.params if decl.type.args else []
            types = [_c_type(p.type) for p in params if not isinstance(p, c_ast.EllipsisParam)]
            functions[decl.name] = (_c_type(decl.type.type), [] if types == ["void"] else types)
    return functions


_POINTER_TO = {"int64_t": ctypes.c_int64, "int": ctypes.c_int, "double": ctypes.c_double,
               "mt_device": _lib.MtDevice, "mt_device_properties": _lib.MtDeviceProperties,
               "int32_t": ctypes.c_int32}
_SCALARS = {"int": ctypes.c_int, "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64,
            "uint64_t": ctypes.c_uint64, "double": ctypes.c_double, "size_t": ctypes.c_size_t,
            "mt_device": _lib.MtDevice, "mt_deleter": _lib.MtDeleter,
            "mt_modal_progress_fn": _lib.MtModalProgressFn}
_ENUMS = ("mt_status", "mt_dtype", "mt_pad_mode", "mt_device_type", "mt_modal_transfer")


def ctypes_of(c_type):
    """The ctypes type the binding must declare for a header type."""
    base = c_type.replace("const ", "").replace(" const", "").strip()
    if base == "void":
        return None
    if base in _ENUMS:
        return ctypes.c_int
    if base in _SCALARS:
        return _SCALARS[base]
    if base == "char *":
        return ctypes.c_char_p
    stars = base.count("*")
    pointee = base.replace("*", "").strip()
    if stars == 1 and pointee in _POINTER_TO:
        return ctypes.POINTER(_POINTER_TO[pointee])
    if stars == 1 or pointee in ("mt_tensor", "void"):
        return ctypes.c_void_p if stars == 1 else ctypes.POINTER(ctypes.c_void_p)
    return ctypes.POINTER(ctypes.c_void_p)  # mt_tensor **, const mt_tensor *const *


HEADER_FUNCTIONS = header_functions()


@pytest.mark.parametrize("name", sorted(HEADER_FUNCTIONS))
def test_every_header_function_has_its_prototype(name):
    assert name in _lib._PROTOTYPES, f"{name} is in the header but has no ctypes prototype"
    restype, argtypes = _lib._PROTOTYPES[name]
    c_result, c_params = HEADER_FUNCTIONS[name]
    assert restype is ctypes_of(c_result), f"{name}: result {restype} for C {c_result!r}"
    want = [ctypes_of(p) for p in c_params]
    assert list(argtypes) == want, f"{name}: arguments {argtypes}, the header says {c_params}"


def test_no_prototype_without_a_header_function():
    stale = sorted(set(_lib._PROTOTYPES) - set(HEADER_FUNCTIONS))
    assert not stale, f"prototypes of functions the header lacks: {stale}"


@pytest.mark.parametrize("name,kind,nout", table_ops())
def test_every_op_is_public_and_in_python(name, kind, nout):
    if name not in INTERNAL_OPS:
        assert f"mt_{name}" in HEADER_FUNCTIONS, f"op {name} ({kind}) has no public mt_{name}"
        c_result = HEADER_FUNCTIONS[f"mt_{name}"][0]
        want = "mt_status" if nout > 1 and name not in ONE_RESULT_OPS else "mt_tensor *"
        assert c_result == want, f"mt_{name} returns {c_result!r}; an op with {nout} outputs " \
                                 f"returns {want!r}"
    python_name = PYTHON_NAMES.get(name, name)
    functional = mt.nn.functional  # torch.nn.functional's ops: embedding, pad, ...
    assert hasattr(mt, python_name) or hasattr(mt.Tensor, python_name) or \
        hasattr(functional, python_name), \
        f"op {name} is neither modaltensor.{python_name}, Tensor.{python_name} nor " \
        f"modaltensor.nn.functional.{python_name}"


def test_finfo_and_iinfo_match_numpy_and_torch():
    import numpy as np
    for name in ("float16", "float32", "float64"):
        info, ref = mt.finfo(name), np.finfo(name)
        assert (info.bits, info.eps, info.max, info.min, info.tiny) == \
            (ref.bits, ref.eps, ref.max, ref.min, ref.tiny)
    torch = pytest.importorskip("torch")
    bf = mt.finfo(mt.bfloat16)
    ref = torch.finfo(torch.bfloat16)
    assert (bf.bits, bf.eps, bf.max, bf.min, bf.tiny) == (ref.bits, ref.eps, ref.max, ref.min,
                                                           ref.tiny)
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        info, ref = mt.iinfo(name), np.iinfo(name)
        assert (info.bits, info.min, info.max) == (ref.bits, ref.min, ref.max)
    assert mt.finfo().dtype == "float32"
    with pytest.raises(mt.DTypeError, match="not a floating dtype"):
        mt.finfo(mt.int32)
    with pytest.raises(mt.DTypeError, match="floating"):
        mt.iinfo("float32")


def test_modal_exports_only_its_api():
    public = {n for n in vars(mt.modal) if not n.startswith("_")}
    assert public == set(mt.modal.__all__), f"mt.modal exports {public - set(mt.modal.__all__)}"
    for internal in ("ctypes", "lib", "check", "contextlib", "Device", "as_device"):
        assert not hasattr(mt.modal, internal), f"mt.modal.{internal} leaks an internal"
