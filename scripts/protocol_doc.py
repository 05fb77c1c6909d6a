#!/usr/bin/env python3
"""Writes docs/PROTOCOL.md, the wire protocol for third-party clients and workers.

    python3 scripts/protocol_doc.py            # rewrite docs/PROTOCOL.md
    python3 scripts/protocol_doc.py --check    # exit 1 when docs/PROTOCOL.md is stale (CTest: protocol_doc)
    python3 scripts/protocol_doc.py --numbers BIN
        # exit 1 unless BIN (tests/protocol_numbers.c) prints the numbers and
        # op-table hashes this script derives (CTest: protocol_numbers)

Every number on the page comes from the project's single sources, parsed here:
src/core/ops.def, kinds.def, dtypes.def, protocol.h, op_table.h, op_table.c
(its A_* schema names), include/modaltensor.h (mt_status), the service block
of proto/modaltensor.proto and the worker's limits (remote_worker/server.c,
session.h, session.c, options.h). The prose that C cannot say (what each attribute
means, each kind's output rule) lives in the tables below, and the script fails
when an op or kind has no entry, so the page cannot silently fall behind.
"""

import os
import re
import subprocess
import sys

from doc_page import write_or_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = os.path.join(ROOT, "src", "core")
OPS_DEF = os.path.join(CORE, "ops.def")
KINDS_DEF = os.path.join(CORE, "kinds.def")
DTYPES_DEF = os.path.join(CORE, "dtypes.def")
PROTOCOL_H = os.path.join(CORE, "protocol.h")
OP_TABLE_H = os.path.join(CORE, "op_table.h")
OP_TABLE_C = os.path.join(CORE, "op_table.c")
PUBLIC_H = os.path.join(ROOT, "include", "modaltensor.h")
PROTO = os.path.join(ROOT, "proto", "modaltensor.proto")
# The worker's limits a peer meets (read only: the worker owns them).
WORKER_SOURCES = [os.path.join(ROOT, "remote_worker", f)
                  for f in ("server.c", "session.h", "session.c", "options.h")]
OUT = os.path.join(ROOT, "docs", "PROTOCOL.md")

OP_ROW = re.compile(r"^MT_OP\((\w+), (\w+), (\w+), (-?\d+), (\d+), (\w+), ([^,]*), (?:NOGRAD|GRAD\(\w+, [^)]*\))\)")
KIND_ROW = re.compile(r'^MT_KIND\((\w+), "(.*)"\)')
DTYPE_ROW = re.compile(r"^MT_DTYPE\((\w+), (\w+), (\d+)\)")
SECTION = re.compile(r"^/\* -*\s*(.*?)\s*-*\s*\*/$")
DEFINE = re.compile(r"^#define (\w+) +(.+?)\s*(?:/\*.*)?$")
ENUM_ITEM = re.compile(r"^\s*(MTI_(?:ATTR|FLAG)_\w+) = ([^,/]+)")
STATUS_ITEM = re.compile(r"^\s*(MT_(?:OK|ERR_\w+)) = (\d+)")
RPC = re.compile(r"^\s*rpc (\w+)\((stream )?(\w+)\) returns \((stream )?(\w+)\);")

# mti_op_table_hash (src/core/op_table.c): standard 64-bit FNV-1a. CTest
# protocol_numbers holds this script to the C.
HASH_OFFSET = 14695981039346656037
FNV_PRIME = 0x100000001b3

# What each attribute slot or flag of an op's schema means, by op name, else
# by kind. Every slot an op's schema names must be found here.
ATTR_MEANINGS = {
    "FILL": {"s0": "fill value (converted to dtype as cast does)", "dtype": "output dtype"},
    "ARANGE": {"s0": "start", "s1": "step", "dtype": "output dtype"},
    "RANDOM": {"seed": "Philox seed", "dtype": "output dtype (floating)"},
    "COPY": {"dtype": "output dtype"},
    "SCALAR": {"s0": "the scalar"},
    "CLAMP": {"s0": "lo (-inf: none)", "s1": "hi (+inf: none)"},
    "CAST": {"dtype": "output dtype"},
    "REDUCE": {"dims": "bit d: reduce dim d", "keepdim": "keep reduced dims as size 1"},
    "ARGREDUCE": {"dim": "the dim", "keepdim": "keep it as size 1"},
    "SOFTMAX": {"dim": "the dim"},
    "LAYER_NORM": {"s0": "eps (>= 0)"},
    "MATMUL": {"tf32": "float32 may use TF32 (GPU)"},
    "LINEAR": {"tf32": "float32 may use TF32 (GPU)"},
    "CAT": {"dim": "the dim joined along"},
    "INDEX_SELECT": {"dim": "the dim indexed"},
    "leaky_relu": {"s0": "negative_slope"},
    "elu": {"s0": "alpha"},
    "nan_to_num": {"s0": "replaces NaN", "s1": "replaces +inf", "s2": "replaces -inf"},
    "MASKED_FILL": {"s0": "fill value (must fit in0's dtype)"},
    "var": {"s0": "correction (1: unbiased)", "dims": "bit d: reduce dim d",
            "keepdim": "keep reduced dims as size 1"},
    "std": {"s0": "correction (1: unbiased)", "dims": "bit d: reduce dim d",
            "keepdim": "keep reduced dims as size 1"},
    "norm": {"s0": "p (inf: max, -inf: min, 0: count of non-zeros)",
             "dims": "bit d: reduce dim d", "keepdim": "keep reduced dims as size 1"},
    "REDUCE_FLOAT": {"dims": "bit d: reduce dim d", "keepdim": "keep reduced dims as size 1"},
    "REDUCE_BOOL": {"dims": "bit d: reduce dim d", "keepdim": "keep reduced dims as size 1"},
    "EXTREME_DIM": {"dim": "the dim", "keepdim": "keep it as size 1"},
    "SCAN": {"dim": "the dim"},
    "SORT": {"dim": "the dim", "descending": "descending order"},
    "TOPK": {"dim": "the dim", "ints": "[k]", "descending": "the largest (else the smallest)"},
    "EYE": {"dtype": "output dtype"},
    "LINSPACE": {"s0": "start", "s1": "end", "dtype": "output dtype"},
    "RANDINT": {"seed": "Philox seed", "dtype": "output dtype", "ints": "[low, high)"},
    "GATHER": {"dim": "the dim indexed"},
    "SCATTER": {"dim": "the dim indexed"},
    "INDEX_ADD": {"dim": "the dim indexed"},
    "ONE_HOT": {"ints": "[num_classes] (> 0)"},
    "flip": {"dims": "bit d: reverse dim d"},
    "roll": {"ints": "(dim, shift) pairs, distinct dims"},
    "repeat": {"ints": "a count per output dim (in0's dims align right)"},
    "pad": {"s0": "constant value (0 unless constant mode)",
            "ints": "(before, after) pairs from the last dim backwards; negative crops",
            "pad_reflect": "reflect mode", "pad_replicate": "replicate mode"},
    "TRIANGLE": {"ints": "[diagonal] (0 main, > 0 above, < 0 below)"},
    "MULTINOMIAL": {"seed": "Philox seed", "ints": "[num_samples]",
                    "replacement": "draw with replacement"},
    "DROPOUT": {"s0": "p in [0, 1]", "seed": "Philox seed of the mask"},
    "conv1d": {"ints": "[stride, padding, dilation, groups]"},
    "conv2d": {"ints": "[stride h, w, padding h, w, dilation h, w, groups]"},
    "POOL2D": {"ints": "[kernel h, w, stride h, w, padding h, w]; padding <= kernel / 2"},
    "ADAPTIVE_POOL2D": {"ints": "[out h, out w] (>= 0)"},
    "ATTENTION": {"s0": "scale, finite, or NaN for 1/sqrt(E)",
                  "causal": "query i sees key j only when j <= i (no mask then)"},
}
# normalisations and losses
ATTR_MEANINGS.update({
    "RMS_NORM": {"s0": "eps (>= 0)"},
    "GROUP_NORM": {"s0": "eps (>= 0)", "ints": "[groups] (> 0, dividing in0's dim 1)"},
    "BATCH_NORM": {"s0": "eps (>= 0)"},
    "CROSS_ENTROPY": {"s0": "label_smoothing in [0, 1]", "ints": "[ignore_index]"},
})

# The output rule of each kind (mti_infer in src/core/op_table.c): dtype and
# shape, in kinds.def's terms. promote, float_of and broadcast are defined on
# the page. Every kind of kinds.def must be here.
KIND_RULES = {
    "FILL": ("attrs.dtype", "Output[0].shape as sent (creation)"),
    "ARANGE": ("attrs.dtype", "Output[0].shape, which must be 1-d (the client computes "
               "max(0, ceil((end - start) / step))); start and step finite"),
    "RANDOM": ("attrs.dtype, floating only", "Output[0].shape"),
    "COPY": ("attrs.dtype", "in0's; with `into`: the view's, in0 broadcasting to it, and "
             "attrs.dtype must be the view's dtype"),
    "BINARY": ("promote(in0, in1); div: float_of(promote); sub and pow refuse two bools",
               "broadcast"),
    "COMPARE": ("bool", "broadcast"),
    "LOGICAL": ("bool; inputs of any dtype, non-zero is true", "broadcast"),
    "SCALAR": ("in0's if floating; else float32 when s0 is not a finite whole number; else "
               "int64 for bool; else in0's", "in0's"),
    "UNARY": ("in0's (neg refuses bool)", "in0's"),
    "UNARY_FLOAT": ("float_of(in0)", "in0's"),
    "WHERE": ("promote(in1, in2); in0, of any dtype, is the condition (non-zero is true)",
              "broadcast of all three"),
    "CLAMP": ("in0's; lo and hi not NaN", "in0's"),
    "CAST": ("attrs.dtype", "in0's"),
    "REDUCE": ("sum, prod: in0's if floating, else int64; mean: float_of(in0); amax, amin: "
               "in0's (a reduced dim must not be empty)", "reduced"),
    "ARGREDUCE": ("int64 (the dim must not be empty)", "reduced over the one dim (a 0-d in0 "
                  "has the one dim 0 and stays 0-d)"),
    "SOFTMAX": ("float_of(in0)", "in0's"),
    "LAYER_NORM": ("float_of(in0)", "in0's (at least 1-d); weight (in1) and bias (in2), when "
                   "present, 1-d of in0's last size"),
    "MATMUL": ("promote(in0, in1)", "numpy matmul: neither 0-d; in0's last size equals in1's "
               "second to last (its only, when 1-d); the batch dims (all but the last two) "
               "broadcast, then in0's rows when 2-d or more, then in1's columns when 2-d or more"),
    "LINEAR": ("promote(in0, in1, in2), floating", "in0's with its last size (k) replaced by "
               "in1's rows: in0 at least 1-d, in1 [n, k], in2 (optional) [n]"),
    "CAT": ("promote over all inputs", "all inputs have in0's number of dims (at least 1) and "
            "its sizes except along dim, where the sizes add up"),
    "INDEX_SELECT": ("in0's; in1 int32 or int64, 0-d or 1-d", "in0's with dim replaced by "
                     "in1's length (removed when in1 is 0-d)"),
    "BITWISE": ("promote of the inputs (one input: its dtype); no floating inputs", "broadcast"),
    "PREDICATE": ("bool", "in0's"),
    "BINARY_FLOAT": ("float_of(promote(in0, in1))", "broadcast"),
    "DIVISION": ("promote(in0, in1), which must not be bool", "broadcast"),
    "UNARY_PARAM": ("in0's; leaky_relu and elu need a floating in0", "in0's"),
    "MASKED_FILL": ("in0's; in1 is bool", "in0's; in1 broadcasts to it"),
    "REDUCE_FLOAT": ("float_of(in0); var, std and norm need a floating in0", "reduced"),
    "REDUCE_BOOL": ("bool", "reduced"),
    "EXTREME_DIM": ("out0 in0's, out1 int64 (the dim must not be empty)", "both reduced over "
                    "the one dim, as ARGREDUCE"),
    "SCAN": ("in0's if floating, else int64", "in0's"),
    "SORT": ("sort: out0 in0's, out1 int64; argsort: out0 int64", "in0's"),
    "TOPK": ("out0 in0's, out1 int64; bool refused", "in0's with dim of size k, "
             "0 <= k <= its size (a 0-d in0 stays 0-d)"),
    "EYE": ("attrs.dtype", "Output[0].shape, which must be 2-d: [n, m]"),
    "LINSPACE": ("attrs.dtype", "Output[0].shape, which must be 1-d: [steps]; start and end "
                 "finite"),
    "RANDINT": ("attrs.dtype, which must hold [low, high) exactly; low < high",
                "Output[0].shape"),
    "GATHER": ("in0's; in1 int32 or int64", "in1's; in1 has in0's number of dims, none larger "
               "than in0's except along dim"),
    "SCATTER": ("in0's; in1 as for GATHER; in2 (src) of in0's dtype and number of dims, none "
                "smaller than in1's", "in0's"),
    "INDEX_ADD": ("in0's; in1 int32 or int64, 0-d or 1-d; in2 of in0's dtype", "in0's; in2 is "
                  "in0's shape with dim of in1's length"),
    "EMBEDDING": ("in0's (a 2-d weight); in1 int32 or int64", "in1's shape + [in0's size 1]"),
    "ONE_HOT": ("int64; in0 int32 or int64", "in0's shape + [num_classes]"),
    "REMAP": ("in0's", "flip, roll: in0's; repeat: one size per count, count * the aligned size "
              "of in0 (1 where in0 has no dim); pad: each padded dim grows by before + after"),
    "TRIANGLE": ("in0's", "in0's, at least 2-d"),
    "MULTINOMIAL": ("int64; in0 floating, 1-d or 2-d", "in0's with the last size replaced by "
                    "num_samples (> 0; at most the categories without replacement)"),
    "DROPOUT": ("in0's, floating", "in0's"),
    "CONV": ("in0's, floating; in1 (and in2) of in0's dtype", "[N, out channels, spatial...]: "
             "each spatial size (in + 2 padding - dilation (k - 1) - 1) / stride + 1 >= 1; in0 "
             "[N, C, (H,) W], in1 [out, C / groups, (kh,) kw], in2 [out]"),
    "POOL2D": ("in0's, floating (max_pool2d's out1 int64)", "in0's (3-d or 4-d) with H, W "
               "replaced by (in + 2 padding - kernel) / stride + 1 >= 1"),
    "ADAPTIVE_POOL2D": ("in0's, floating", "in0's (3-d or 4-d) with H, W replaced by ints"),
    "ATTENTION": ("out0 in0's (in0, in1, in2 of one floating dtype), out1 float32; in3 (the "
                  "optional mask) bool, in0's dtype or float32",
                  "in0 [..., L, E], in1 [..., S, E], in2 [..., S, Ev], each at least 2-d, their "
                  "batch dims broadcast to [...]; out0 [..., L, Ev], out1 (the logsumexp of "
                  "each query row) [..., L]; in3 broadcasts to [..., L, S] without growing it"),
}
# normalisations and losses; "compute" is float64 for float64, else float32
KIND_RULES.update({
    "RMS_NORM": ("in0's, floating; weight (in1) floating", "in0's (at least 1-d); in1, when "
                 "present, 1-d of in0's last size"),
    "GROUP_NORM": ("out0 in0's, floating; out1 (mean), out2 (rstd) compute", "out0 in0's "
                   "([N, C, *]); out1, out2 [N, groups]; in1, in2, when present, 1-d [C]"),
    "BATCH_NORM": ("out0 in0's, floating; out1 (mean), out2 (biased var) compute",
                   "out0 in0's ([N, C, *]); out1, out2 [C]; in1..in4, when present, 1-d [C]; "
                   "in1 and in2 both or neither (neither: training, more than 1 value per "
                   "channel)"),
    "CROSS_ENTROPY": ("out0 in0's, floating; in1 int64; out1 (logsumexp) compute",
                      "out0 0-d; out1 in1's, which is in0's without dim 1 (a 1-d in0: 0-d); "
                      "in0's classes not empty"),
})
# optimizer updates (issue 12)
ATTR_MEANINGS.update({
    "SGD_STEP": {"s0": "lr (>= 0)", "s1": "momentum (>= 0)", "s2": "weight_decay (>= 0)",
                 "ints": "[nesterov] (0 or 1; 1 needs momentum > 0)"},
    "ADAMW_STEP": {"s0": "lr (>= 0)", "s1": "beta1 in [0, 1)", "s2": "beta2 in [0, 1)",
                   "ints": "the IEEE-754 bits of the doubles [eps (>= 0), weight_decay (>= 0)]"},
})
KIND_RULES.update({
    "SGD_STEP": ("in0's, floating; in1 (and in2) of in0's dtype and shape",
                 "out0 in0's; out1 in0's with momentum > 0, else [0]; in2 (the buffer) only "
                 "with momentum > 0, absent on the first step"),
    "ADAMW_STEP": ("in0's, floating; in1, in2, in3 of in0's dtype and shape; in4 (the steps "
                   "taken) 0-d float64",
                   "out0, out1, out2 in0's; out3 (in4 + 1) 0-d float64"),
})

# fused norm backwards (issue 12)
ATTR_MEANINGS.update({
    "BATCH_NORM_BACKWARD": {"s0": "eps (>= 0)", "ints": "[training] (0 or 1)"},
    "ROW_NORM_BACKWARD": {"s0": "eps (>= 0)"},
    "CROSS_ENTROPY_BACKWARD": {"s0": "label_smoothing in [0, 1]", "ints": "[ignore_index]"},
})
KIND_RULES.update({
    "BATCH_NORM_BACKWARD": ("in0 floating, in1 of its dtype; in2, in3 compute; out0 in0's; "
                            "out1, out2 compute", "in0, in1 [N, C, *] alike; in2, in3 and in4 "
                            "(when present) 1-d [C]; out0 in0's; out1, out2 [C]"),
    "ROW_NORM_BACKWARD": ("in0 floating, in1 of its dtype; out0 in0's; out1 (and out2 for "
                          "layer_norm_backward) compute", "in0, in1 alike, at least 1-d; in2, "
                          "when present, 1-d of their last size; out0 in0's; out1, out2 [last]"),
    "CROSS_ENTROPY_BACKWARD": ("in0 (g), in1 floating alike; in2 int64; in3 compute; out0 "
                               "in1's", "in0 0-d; in1, in2 as cross_entropy's; in3 in2's; out0 "
                               "in1's"),
})

# convolution backward (issue 12)
ATTR_MEANINGS.update({
    "conv2d_input_grad": {"ints": "conv2d's [stride h, w, padding h, w, dilation h, w, groups], "
                                  "then x's [H, W] (each >= 1)"},
    "conv2d_weight_grad": {"ints": "conv2d's [stride h, w, padding h, w, dilation h, w, "
                                   "groups], then the weight's [kh, kw] (each >= 1)"},
})
KIND_RULES.update({
    "CONV_GRAD": ("in0's, floating; in1 of in0's dtype",
                  "in0 dy [N, O, OH, OW] (the forward's output for the geometry, O a multiple of "
                  "groups); input grad: in1 weight [O, C / groups, kh, kw], out [N, C, H, W]; "
                  "weight grad: in1 x [N, C, H, W], out [O, C / groups, kh, kw]"),
})


def read_lines(path):
    """The lines of a project file."""
    with open(path) as f:
        return f.read().splitlines()


def c_value(expr, names):
    """Value of a C integer constant expression of the headers: literals
    (with u suffixes), names defined earlier, |, <<, + and parentheses."""
    py = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uU]?[lL]*\b", r"\1", expr.strip())
    if not re.fullmatch(r"[\w\s|<>()+]*", py):
        raise ValueError(f"not a constant expression: {expr}")
    return eval(py, {"__builtins__": {}}, dict(names))


def parse_ops():
    """Rows of ops.def in order. The wire number of an op is its row index:
    the C enum mti_op is generated from the same rows, without explicit values."""
    ops, section = [], None
    for line in read_lines(OPS_DEF):
        head = SECTION.match(line.strip())
        if head and not line.startswith(" *") and head.group(1):
            section = head.group(1)
            continue
        row = OP_ROW.match(line)
        if row:
            enum, name, kind, arity, nout, optional, attrs = row.groups()
            ops.append({"number": len(ops), "enum": enum, "name": name, "kind": kind,
                        "arity": int(arity), "nout": int(nout), "optional": int(optional, 0),
                        "attrs": [a.strip() for a in attrs.split("|")], "section": section})
    return ops


def parse_kinds():
    """(NAME, doc) of kinds.def, in order (kinds are not wire numbers)."""
    return [m.groups() for m in map(KIND_ROW.match, read_lines(KINDS_DEF)) if m]


def parse_dtypes():
    """(number, NAME, name, size) of dtypes.def: the row index is the mt_dtype value."""
    rows = [m.groups() for m in map(DTYPE_ROW.match, read_lines(DTYPES_DEF)) if m]
    return [(i, upper, lower, int(size)) for i, (upper, lower, size) in enumerate(rows)]


def parse_statuses():
    """(value, NAME) of enum mt_status in include/modaltensor.h."""
    text = "\n".join(read_lines(PUBLIC_H))
    body = re.search(r"typedef enum mt_status \{(.*?)\} mt_status;", text, re.S).group(1)
    return [(int(m.group(2)), m.group(1)) for m in map(STATUS_ITEM.match, body.splitlines()) if m]


def parse_defines(path):
    """Integer and string #defines of a header, by name."""
    values = {}
    for line in read_lines(path):
        m = DEFINE.match(line)
        if not m:
            continue
        name, expr = m.groups()
        if expr.startswith('"'):
            values[name] = expr.strip('"')
            continue
        try:
            values[name] = c_value(expr, {k: v for k, v in values.items() if isinstance(v, int)})
        except (ValueError, SyntaxError, NameError):
            pass
    return values


def parse_attr_bits():
    """The values of MTI_ATTR_* and MTI_FLAG_* (op_table.h), and of the A_*
    names of ops.def's ATTRS column (op_table.c), which the hash includes."""
    names = {}
    for line in read_lines(OP_TABLE_H):
        m = ENUM_ITEM.match(line)
        if m:
            names[m.group(1)] = c_value(m.group(2), names)
    a_names = {}
    for line in read_lines(OP_TABLE_C):
        m = re.match(r"^#define (A_\w+) (.+)$", line)
        if m:
            a_names[m.group(1)] = c_value(m.group(2), names)
    return names, a_names


def parse_service():
    """(package, service, [(method, client_streams, request, server_streams,
    reply)]) of the proto's one service block."""
    text = "\n".join(read_lines(PROTO))
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    service = re.search(r"^service (\w+) \{(.*?)^\}", text, re.M | re.S)
    rpcs = []
    for line in service.group(2).splitlines():
        m = RPC.match(line)
        if m:
            method, cs, req, ss, rep = m.groups()
            rpcs.append((method, bool(cs), req, bool(ss), rep))
    return package, service.group(1), rpcs


def check_service(package, service, rpcs, defines):
    """Errors where the proto's service block and protocol.h's MTI_METHOD_*
    paths (what the worker matches and the client calls) disagree."""
    paths = {f"/{package}.{service}/{m[0]}" for m in rpcs}
    methods = {v for k, v in defines.items() if k.startswith("MTI_METHOD_")}
    errors = [f"proto service has {p}, protocol.h has no MTI_METHOD_ for it"
              for p in sorted(paths - methods)]
    errors += [f"protocol.h has {p}, the proto's service block has no such rpc"
               for p in sorted(methods - paths)]
    return errors


def schema_value(op, a_names):
    """The op's ATTRS column as the C value of mti_op_info.attrs."""
    value = 0
    for a in op["attrs"]:
        value |= a_names[a]
    return value


def table_hash(ops, a_names, count):
    """mti_op_table_hash(count): FNV-1a over one record per op of the prefix."""
    h = HASH_OFFSET
    for op in ops[:count]:
        record = (f"{op['number']}:{op['name']}:{op['kind']}:{op['arity']}:{op['nout']}:"
                  f"{op['optional']:x}:{schema_value(op, a_names):x};")
        for byte in record.encode():
            h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def slot_names(op):
    """The schema's slots and flags in lower case: 'A_S0|A_KEEPDIM' as s0, keepdim."""
    return [a[2:].lower() for a in op["attrs"] if a != "A_NONE"]


def attr_text(op):
    """'s0: start; s1: step' for the op, from ATTR_MEANINGS."""
    parts = []
    for slot in slot_names(op):
        table = ATTR_MEANINGS.get(op["name"], {})
        meaning = table.get(slot) or ATTR_MEANINGS.get(op["kind"], {}).get(slot)
        if meaning is None:
            raise KeyError(f"op {op['name']}: no meaning for attribute {slot}: add it to "
                           "ATTR_MEANINGS in scripts/protocol_doc.py")
        parts.append(f"{slot}: {meaning}")
    optional = [f"PRESENT({i}) set when in{i} is given" for i in range(32)
                if op["optional"] >> i & 1]
    return "; ".join(parts + optional) or "-"


def check_tables(kinds, ops):
    """Errors where KIND_RULES or ATTR_MEANINGS and the .def files disagree:
    a kind without a rule, or an entry for a kind, op or slot that is gone."""
    names = [k for k, _ in kinds]
    errors = [f"kind {k} has no rule in KIND_RULES" for k in names if k not in KIND_RULES]
    errors += [f"KIND_RULES has {k}, kinds.def does not" for k in KIND_RULES if k not in names]
    by_name = {o["name"]: o for o in ops}
    for key, slots in ATTR_MEANINGS.items():
        users = [by_name[key]] if key in by_name else [o for o in ops if o["kind"] == key]
        if not users:
            errors.append(f"ATTR_MEANINGS has {key}, which is neither an op nor a kind")
        used = {slot for o in users for slot in slot_names(o)}
        errors += [f"ATTR_MEANINGS[{key}] has {slot}, which no op of it uses"
                   for slot in slots if users and slot not in used]
    return errors


def render_transport(package, service, rpcs, d):
    """Transport: gRPC paths, metadata, limits."""
    lines = ["## Transport", "",
             f"gRPC over HTTP/2, plain or TLS, messages encoded as proto3 (`proto/modaltensor.proto`, "
             f"package `{package}`). The worker serves service `{service}`:", "",
             "| method path | request | reply |", "|---|---|---|"]
    for method, cs, req, ss, rep in rpcs:
        lines.append(f"| `/{package}.{service}/{method}` | {'stream ' if cs else ''}`{req}` | "
                     f"{'stream ' if ss else ''}`{rep}` |")
    lines += ["",
              "- Metadata: when the worker has a token, every call carries "
              "`authorization: Bearer <token>`; a missing or wrong one ends the call with gRPC "
              "status `UNAUTHENTICATED`. A second, admin token (`--admin-token`) may read every "
              "session's counters (`Stats` with `session_id` 0); a client token only its own "
              "session's. A worker without a token treats every caller as admin.",
              "- Any other path ends with `UNIMPLEMENTED`.",
              f"- Messages are at most {d['MTI_MAX_MESSAGE_BYTES']} bytes "
              f"(`MTI_MAX_MESSAGE_BYTES`) either way: split bulk data into chunks of "
              f"{d['MTI_CHUNK_BYTES']} bytes (`MTI_CHUNK_BYTES`) and long graphs into several "
              "`Graph` messages.",
              "- TLS: the worker presents a certificate; it asks clients for none (the token "
              "authenticates them).",
              f"- Keepalive: the worker pings an idle connection every "
              f"{d['KEEPALIVE_TIME_MS'] // 1000} s and drops it after "
              f"{d['KEEPALIVE_TIMEOUT_MS'] // 1000} s without an answer; clients may ping every "
              f"{d['MIN_CLIENT_PING_INTERVAL_MS'] // 1000} s without data. A session that sends "
              f"nothing for `--idle-timeout` seconds (default {d['MTW_DEFAULT_IDLE_TIMEOUT_S']}) "
              "ends with `DEADLINE_EXCEEDED` and its storages are freed. A unary call whose "
              f"request does not arrive within {d['UNARY_REQUEST_TIMEOUT_MS'] // 1000} s ends "
              "with `INVALID_ARGUMENT`.",
              "- `Status.code` in replies is an `mt_status` value (below); gRPC statuses only "
              "end calls.", ""]
    return lines


def render_handshake(ops, a_names, bits, d):
    """Compatibility: version, op count, and the op-table hash algorithm."""
    full = table_hash(ops, a_names, len(ops))
    first = ops[0]
    example = (f"{first['number']}:{first['name']}:{first['kind']}:{first['arity']}:"
               f"{first['nout']}:{first['optional']:x}:{schema_value(first, a_names):x};")
    lines = ["## Handshake and compatibility", "",
             "`HelloRequest` and `Open` carry three numbers; the worker accepts them when:", "",
             f"1. `protocol_version` equals its own: **{d['MTI_PROTOCOL_VERSION']}** "
             "(`MTI_PROTOCOL_VERSION`, src/core/protocol.h);",
             f"2. `op_count` (the ops the client knows) is at most its own: **{len(ops)}**;",
             "3. `op_table_hash` equals its hash of its first `op_count` ops.", "",
             "Otherwise `HelloReply.status` (or `Opened.status`) is `MT_ERR_UNSUPPORTED` with "
             "the reason. Ops are only appended, so a newer worker serves an older client; "
             "a worker refuses a node whose op is not below the client's `op_count`. "
             "`HelloReply` also carries the worker's own three numbers, its devices and its "
             "version; `Health` answers `uptime_ms`. `Hello` is optional (the library calls it "
             "to list devices); `Open` checks again.", "",
             "### The op-table hash", "",
             "64-bit FNV-1a over the ASCII bytes of one record per op, ops 0 to "
             "`op_count - 1` in wire order, with no separator between records: start with "
             f"`h = {HASH_OFFSET}` (`0x{HASH_OFFSET:016x}`), then for each byte "
             f"`h = (h XOR byte) * 0x{FNV_PRIME:x}` modulo 2^64 (FNV's standard offset "
             "basis and prime: a stock FNV-1a implementation gives the same hash). "
             "A record is", "",
             "    NUMBER:NAME:KIND:ARITY:NOUT:OPTIONAL:ATTRS;", "",
             "NUMBER, ARITY (-1 for a variable count) and NOUT in decimal; NAME the op's "
             "name (column 2 of the table below); KIND the kind's name as written below "
             "(kinds enter by name, so their C numbering does not matter); OPTIONAL and ATTRS "
             "in lower-case hexadecimal without prefix or padding. OPTIONAL is the "
             "optional-input mask (bit i: input i may be absent); ATTRS the schema value: "
             "the OR of the slot bits and the flag bits shifted left by "
             f"{bits['MTI_ATTR_FLAG_SHIFT']}:", "",
             "| schema name | value | | schema name | value |", "|---|---|---|---|---|"]
    slots = [(k, v) for k, v in a_names.items() if k != "A_NONE"]
    half = (len(slots) + 1) // 2
    for left, right in zip(slots[:half], slots[half:] + [("", None)]):
        rv = f"0x{right[1]:x}" if right[1] is not None else ""
        lines.append(f"| {left[0]} | 0x{left[1]:x} | | {right[0]} | {rv} |")
    lines += ["", f"The record of op 0 is `{example}`. The hash of all {len(ops)} ops of this "
              f"table is `0x{full:016x}`; of none, the start value.", ""]
    return lines


def render_numbering(dtypes, statuses, bits, d):
    """Dtypes, statuses, flags and attribute slots."""
    lines = ["## Numbers", "",
             "### Dtypes", "",
             "`dtype` fields hold `mt_dtype` values: the row order of src/core/dtypes.def. "
             "Bytes travel as the worker stores them: little-endian (the worker copies them "
             "as they come), row-major; bool is one byte, 0 or 1; float16 is IEEE binary16, "
             "bfloat16 the high half of a float32.", "",
             "| value | dtype | bytes |", "|---|---|---|"]
    lines += [f"| {n} | {lower} | {size} |" for n, _, lower, size in dtypes]
    lines += ["", "### Statuses", "",
              "`Status.code` holds `mt_status` values (include/modaltensor.h):", "",
              "| code | status |", "|---|---|"]
    lines += [f"| {v} | `{name}` |" for v, name in statuses]
    flag_names = [(k, v) for k, v in bits.items()
                  if k.startswith("MTI_FLAG_") and k != "MTI_FLAG_PRESENT_SHIFT"]
    lines += ["", "### Attributes", "",
              "`Attrs` holds typed slots; each op uses those its schema names (the op table "
              "below), and the worker refuses a node that sets any other: a double slot "
              "counts as set when it is not +0.0 (so -0.0 and NaN are set), an integer slot "
              f"when not 0, `ints` when not empty (at most {d['MTI_MAX_INT_ATTRS']} values). "
              "Dims are normalised (0 to ndim - 1, never negative); a 0-d tensor has the one "
              "dim 0.", "",
              "| Attrs field | schema name |", "|---|---|",
              "| `s0`, `s1`, `s2` | A_S0, A_S1, A_S2 |", "| `seed` | A_SEED |",
              "| `dims_mask` | A_DIMS |", "| `dim` | A_DIM |", "| `dtype` | A_DTYPE |",
              "| `ints` | A_INTS |", "| `flags` | the flags below |", "",
              "| flag | bit value |", "|---|---|"]
    lines += [f"| `{k[len('MTI_FLAG_'):]}` | 0x{v:x} |" for k, v in flag_names]
    shift = bits["MTI_FLAG_PRESENT_SHIFT"]
    lines += [f"| `PRESENT(i)` | 1 << ({shift} + i): optional input i is given |", "",
              "A flag is allowed when the op's schema names it or it is `PRESENT(i)` of one "
              "of its optional inputs; an absent optional input is a `TensorView` with id 0.",
              ""]
    return lines


def render_session(d):
    """The Session stream, message by message."""
    return ["## A session", "",
            "Each `Session` stream is one session on one device (`Open.device`); a client "
            "may hold several at once. The client sends "
            "`ClientMessage`s without waiting; the worker handles them one at a time, in "
            "order, and answers only where the table says. Ids name storages (flat, "
            "contiguous arrays of one dtype); the client chooses them, unique within its "
            "session, and 0 is never an id.", "",
            "| client sends | worker does | worker answers |", "|---|---|---|",
            "| `Open` (first, once) | checks compatibility and the device index | `Opened`: "
            "status, `session_id` and up to "
            f"{d['MTI_HELD_MAX']} `held` SHA-256 digests it has bytes for; a refusal is an "
            "`Opened` with a non-OK status, then the stream ends with a gRPC error "
            "(`FAILED_PRECONDITION` for an incompatible client or a bad device, "
            "`INVALID_ARGUMENT` when the first message is not an `Open`) |",
            "| `Upload` | the chunk at offset 0 creates storage `id` of `dtype` and `numel`; "
            "chunks follow in order and cover `numel * size` bytes exactly (encoded with "
            "fields 1 to 5 in order and `data` last, a chunk skips the decoder and is copied "
            "once) | nothing |",
            "| `Content` | a storage named by the SHA-256 of its row-major bytes (clients use "
            f"it from {d['MTI_CONTENT_MIN_BYTES']} bytes): `bytes_follow` true: `Upload` "
            "chunks follow and are checked against the digest; false: filled from the "
            "worker's store | `Need` (id, digest) when it holds no such bytes: send them as "
            "`Upload` chunks; until they are whole, only `Upload` and `Content` are served, "
            f"the rest waits in order (at most {d['MTW_QUEUE_MAX']} messages: more end the "
            "stream with `RESOURCE_EXHAUSTED`) |",
            "| `Graph` | validates and runs each `Node` in order (below); `template_id` != 0 "
            f"also keeps the graph (at most {d['MTI_TEMPLATES_MAX']} per session) | nothing |",
            "| `Invoke` | runs kept template `template_id` with its parameters (its distinct "
            "non-zero ids by first appearance: per node its inputs, `into`, then outputs) "
            "replaced by `ids` | nothing |",
            "| `Free` | frees every id listed, or none when one is not in the session | nothing |",
            "| `Download` | reads a view, row-major | `DownloadChunk`s with `request_id`: "
            "byte `offset`, `data`, the last with `last` true; a failure is one chunk with a "
            "non-OK status and `last` true |",
            "| `Sync` | waits until the work so far is done | `SyncDone` with `request_id` "
            "and the first deferred error since the previous `Sync` (OK if none) |", "",
            "Replies come in request order (a `Need` as soon as its `Content` is handled). "
            "Errors in `Upload`, `Content`, `Graph`, `Invoke` and `Free` are deferred: the "
            "storages concerned are marked failed with the message, everything computed "
            "from them inherits the failure, a `Download` of one answers it, and the next "
            "`SyncDone` reports the first. When the client half-closes the stream, the "
            "session ends and its storages and templates are freed. `Stats` "
            "(`session_id` from `Opened`) reads a session's counters.", "",
            "### Views", "",
            "A `TensorView` names storage `id`, an element `offset`, a `shape` and element "
            "`strides` (empty: row-major; sizes of 1 ignore their stride). Every element it "
            f"reaches must lie inside the storage; at most {d['MT_MAX_DIMS']} dims; "
            "negative strides are allowed.", "",
            "### Nodes", "",
            "A `Node` has `op` (its wire number), `inputs` (views; as many as the op's "
            f"inputs, 1 to {d['MTW_MAX_NODE_INPUTS']} for a variable count), `attrs` and one `Output` per output of "
            "the op, each a new id with the dtype and shape the client expects. The worker "
            "checks, in order: the op is known and below the client's `op_count`; the input "
            "count; the output count and that each output id is new and distinct; the "
            "attributes against the schema; the inputs are whole, unfailed storages of the "
            "session and the views fit; it then infers each output's dtype and shape by the "
            "kind's rule (below), and refuses the node unless every `Output` says exactly "
            "that. Ops without inputs (creation) take their shape from `Output[0].shape`. "
            "A node without `attrs` has every slot zero. `into` (COPY only) writes into a view of an existing storage instead: one "
            "`Output` with id 0 describing the view. A node that touches more elements than "
            "the worker's `--max-node-work` is refused.", ""]


def render_rules(kinds, d):
    """Type promotion and each kind's output rule."""
    lines = ["## Output rules", "",
             "- **promote(a, b)**: equal dtypes give that dtype; bool with x gives x; two "
             "floats the wider (float16 with bfloat16: float32); a float with an integer the "
             "float; uint8 with a signed integer the signed integer of max(2, its bytes) "
             "bytes (uint8 with int8: int16); two signed integers the wider.",
             "- **float_of(x)**: x when floating, else float32.",
             "- **broadcast**: numpy broadcasting of all inputs' shapes (aligned from the "
             "last dim; sizes equal, or 1).",
             "- **reduced**: in0's shape without the dims in `dims_mask` (kept as size 1 "
             "with KEEPDIM); the mask names only dims in0 has.",
             f"- Every shape has at most {d['MT_MAX_DIMS']} dims, sizes >= 0, and its bytes "
             "fit in int64.", "",
             "| kind | computes | output dtype | output shape |", "|---|---|---|---|"]
    for name, doc in kinds:
        dtype, shape = KIND_RULES[name]
        lines.append(f"| {name} | {doc} | {dtype} | {shape} |")
    return lines + [""]


def render_ops(ops, a_names):
    """The op table, by ops.def section."""
    lines = ["## Ops", "",
             "The wire number of an op is its row in src/core/ops.def, counted from 0 (the C "
             "enum `mti_op` is generated from those rows without explicit values). Inputs are "
             "`in0`, `in1`, ...; n is a variable count (at least 1).", ""]
    section = None
    for op in ops:
        if op["section"] != section:
            section = op["section"]
            lines += ["", f"### {section}", "",
                      "| # | op | kind | inputs | optional | outputs | attributes |",
                      "|---|---|---|---|---|---|---|"]
        inputs = "n" if op["arity"] == -1 else str(op["arity"])
        optional = ", ".join(str(i) for i in range(32) if op["optional"] >> i & 1) or "-"
        lines.append(f"| {op['number']} | {op['name']} | {op['kind']} | {inputs} | {optional} | "
                     f"{op['nout']} | {attr_text(op)} |")
    return lines + [""]


def gather():
    """Everything the page and the checks need, parsed from the sources."""
    defines = parse_defines(PROTOCOL_H)
    bits, a_names = parse_attr_bits()
    defines.update({k: v for k, v in parse_defines(OP_TABLE_H).items() if isinstance(v, int)})
    defines.update({k: v for k, v in parse_defines(PUBLIC_H).items() if k == "MT_MAX_DIMS"})
    for path in WORKER_SOURCES:
        defines.update(parse_defines(path))
    return {"ops": parse_ops(), "kinds": parse_kinds(), "dtypes": parse_dtypes(),
            "statuses": parse_statuses(), "defines": defines, "bits": bits,
            "a_names": a_names, "service": parse_service()}


def render(src):
    """The whole page."""
    package, service, rpcs = src["service"]
    lines = ["# The wire protocol", "",
             "Generated by `scripts/protocol_doc.py` from src/core/ops.def, kinds.def, "
             "dtypes.def, protocol.h, op_table.h, include/modaltensor.h, the service block "
             "of proto/modaltensor.proto and the worker's limits in remote_worker/ (CTest `protocol_doc` fails when this page is stale; "
             "`protocol_numbers` checks its numbers and hashes against the compiled C). The "
             "messages and their fields are documented in `proto/modaltensor.proto`; this "
             "page says what a client or worker written from it must also know.", ""]
    lines += render_transport(package, service, rpcs, src["defines"])
    lines += render_handshake(src["ops"], src["a_names"], src["bits"], src["defines"])
    lines += render_session(src["defines"])
    lines += render_numbering(src["dtypes"], src["statuses"], src["bits"], src["defines"])
    lines += render_rules(src["kinds"], src["defines"])
    lines += render_ops(src["ops"], src["a_names"])
    lines += ["## Not on this page", "",
              "- The values each op computes (rounding, NaN, integer overflow, the order of "
              "sort ties): include/modaltensor.h, per public function `mt_<op>`.",
              "- The random streams (rand, randn, randint, multinomial, dropout draw from "
              "Philox 4x32-10 of the seed): src/core/philox.h, needed by a worker that must "
              "give the library's values.",
              "- The worker's options and limits (memory quotas, `--max-node-work`, the "
              "content cache): remote_worker/README.md.", ""]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def expected_numbers(src):
    """The lines tests/protocol_numbers.c must print, derived from the sources."""
    d, a_names, ops = src["defines"], src["a_names"], src["ops"]
    lines = [f"protocol {d['MTI_PROTOCOL_VERSION']}"]
    lines += [f"op {o['number']} {o['name']} {o['kind']} {o['arity']} {o['nout']} "
              f"{o['optional']:x} {schema_value(o, a_names):x}" for o in ops]
    lines += [f"hash {n} {table_hash(ops, a_names, n):016x}" for n in range(len(ops) + 1)]
    lines += [f"dtype {n} {lower} {size}" for n, _, lower, size in src["dtypes"]]
    lines += [f"status {v} {name}" for v, name in src["statuses"]]
    for name in ("MTI_CHUNK_BYTES", "MTI_MAX_MESSAGE_BYTES", "MTI_CONTENT_MIN_BYTES",
                 "MTI_DIGEST_BYTES", "MTI_HELD_MAX", "MTI_TEMPLATES_MAX", "MTI_MAX_INT_ATTRS",
                 "MTI_MAX_OUTPUTS", "MT_MAX_DIMS"):
        lines.append(f"const {name} {d[name]}")
    for name in ("MTI_FLAG_PRESENT_SHIFT", "MTI_ATTR_FLAG_SHIFT"):
        lines.append(f"const {name} {src['bits'][name]}")
    return lines


def check_numbers(src, binary):
    """0 when the C build prints exactly the expected lines, else 1 with a diff."""
    got = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.splitlines()
    want = expected_numbers(src)
    if got == want:
        print(f"{os.path.basename(binary)}: {len(want)} numbers match the sources")
        return 0
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else "(none)"
        w = want[i] if i < len(want) else "(none)"
        if g != w:
            print(f"line {i + 1}: C prints {g!r}, protocol_doc.py derives {w!r}", file=sys.stderr)
    return 1


def main(argv):
    src = gather()
    errors = check_tables(src["kinds"], src["ops"]) + check_service(*src["service"],
                                                                     src["defines"])
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    if "--numbers" in argv:
        return check_numbers(src, argv[argv.index("--numbers") + 1])
    return write_or_check(OUT, render(src), "--check" in argv, "protocol_doc.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
