"""The public header is what cffi users feed to FFI.cdef(): check that it parses
and that the library it describes works through cffi's ABI mode.

Run by CTest as
    python3 test_cffi_header.py HEADER LIBRARY
or by pytest with MT_HEADER and MT_LIBRARY in the environment (skipped without).

The header is reduced the way a cffi user would: preprocessor lines go
(conditional blocks such as `#ifdef __cplusplus` are evaluated for a C
compiler, so their contents go too), and so do comments. When cdef() refuses
the rest, the failing declaration is printed with its line in the header.
"""

import os
import re
import sys

import cffi

_DIRECTIVE = re.compile(r"\s*#\s*(\w+)\s*(.*)")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE_INT = re.compile(r"(\w+)\s+(\d+)\s*$")


def _logical_lines(text):
    """Yields (first line number, line) with backslash continuations joined."""
    pending, start = "", None
    for number, line in enumerate(text.split("\n"), 1):
        if start is None:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        yield start, pending + line
        pending, start = "", None


def _blank_comments(text):
    """Replaces comments with spaces, keeping newlines so line numbers hold."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def reduce_header(text):
    """Returns (cdef source, {line in cdef source: line in header}, int macros)."""
    defined, macros = set(), {}
    active = []  # one bool per open conditional
    out, line_map = [], {}
    for number, line in _logical_lines(_blank_comments(text)):
        directive = _DIRECTIVE.match(line)
        if directive:
            name, arg = directive.group(1), directive.group(2).strip()
            if name in ("ifdef", "ifndef"):
                active.append((arg in defined) == (name == "ifdef"))
            elif name == "else":
                active[-1] = not active[-1]
            elif name == "endif":
                active.pop()
            elif name in ("if", "elif"):
                raise ValueError(f"header line {number}: #{name} is beyond this script")
            elif name == "define" and all(active):
                defined.add(arg.split()[0] if arg else arg)
                value = _DEFINE_INT.match(arg)
                if value:
                    macros[value.group(1)] = int(value.group(2))
            continue
        if all(active):
            out.append(line)
            line_map[len(out)] = number
    return "\n".join(out), line_map, macros


def _declarations(source, line_map):
    """Splits the cdef source into top-level declarations with header lines."""
    decls, depth, current, first = [], 0, [], None
    for index, line in enumerate(source.split("\n"), 1):
        if first is None and line.strip():
            first = line_map[index]
        current.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0 and line.rstrip().endswith(";"):
            decls.append((first, "\n".join(current).strip()))
            current, first = [], None
    return decls


def parse_header(header_path):
    """Returns (ffi, source, int macros); fails naming the first declaration
    cdef refuses."""
    with open(header_path, encoding="utf-8") as f:
        source, line_map, macros = reduce_header(f.read())
    ffi = cffi.FFI()
    try:
        ffi.cdef(source)
    except (cffi.CDefError, cffi.FFIError) as whole_error:
        # Find the culprit: feed the declarations one by one to a fresh FFI.
        probe = cffi.FFI()
        for line, decl in _declarations(source, line_map):
            try:
                probe.cdef(decl)
            except (cffi.CDefError, cffi.FFIError) as error:
                raise AssertionError(
                    f"{header_path}:{line}: cffi cannot parse this declaration:\n"
                    f"{decl}\ncffi says: {error}") from None
        raise AssertionError(f"cffi cannot parse {header_path}: {whole_error}") from None
    return ffi, source, macros


class Loaded:
    """The parsed header and the library opened through it."""

    def __init__(self, header_path, library_path):
        self.ffi, self.source, self.macros = parse_header(header_path)
        self.lib = self.ffi.dlopen(library_path)


def _function_names(source):
    """Names of the functions the reduced header declares (a function pointer
    typedef such as `(*mt_deleter)(...)` has a parenthesis before its name)."""
    return sorted(set(re.findall(r"\b(mt_\w+)\s*\(", source)))


# ---------------------------------------------------------------- the checks

def check_every_function_is_exported(m):
    lib = m.lib
    names = _function_names(m.source)
    assert len(names) > 50, f"only {len(names)} functions declared"
    missing = [n for n in names if not hasattr(lib, n)]
    assert not missing, f"declared in the header, missing from the library: {missing}"


def check_version(m):
    ffi, lib, macros = m.ffi, m.lib, m.macros
    version = ffi.string(lib.mt_version()).decode()
    expected = "{MT_VERSION_MAJOR}.{MT_VERSION_MINOR}.{MT_VERSION_PATCH}".format(**macros)
    assert version == expected, f"mt_version() = {version!r}, header says {expected}"


def check_dtypes(m):
    ffi, lib = m.ffi, m.lib
    assert ffi.string(lib.mt_dtype_name(lib.MT_FLOAT32)) == b"float32"
    assert ffi.string(lib.mt_dtype_name(lib.MT_BFLOAT16)) == b"bfloat16"
    assert ffi.string(lib.mt_dtype_name(99)) == b"invalid"
    assert lib.mt_dtype_size(lib.MT_FLOAT64) == 8
    assert lib.mt_dtype_size(lib.MT_FLOAT16) == 2
    assert ffi.string(lib.mt_status_name(lib.MT_ERR_SHAPE)) == b"MT_ERR_SHAPE"


def _cpu(ffi, lib):
    device = ffi.new("mt_device *")
    assert lib.mt_device_parse(b"cpu", device) == lib.MT_OK
    assert device.type == lib.MT_DEVICE_CPU and device.index == 0
    return device[0]


def check_zeros_add_to_host(m):
    ffi, lib = m.ffi, m.lib
    cpu = _cpu(ffi, lib)
    shape = ffi.new("int64_t[]", [2, 3])
    zeros = lib.mt_zeros(2, shape, lib.MT_FLOAT32, cpu)
    assert zeros != ffi.NULL, ffi.string(lib.mt_last_error())
    ones = lib.mt_full(2, shape, 1.5, lib.MT_FLOAT32, cpu)
    total = lib.mt_add(zeros, ones)
    try:
        assert total != ffi.NULL, ffi.string(lib.mt_last_error())
        assert lib.mt_ndim(total) == 2 and lib.mt_shape(total, -1) == 3
        assert lib.mt_tensor_dtype(total) == lib.MT_FLOAT32
        values = ffi.new("float[6]")
        assert lib.mt_to_host(total, values, ffi.sizeof(values)) == lib.MT_OK
        assert list(values) == [1.5] * 6
    finally:
        for t in (total, ones, zeros):
            lib.mt_tensor_free(t)


def check_error_path(m):
    ffi, lib = m.ffi, m.lib
    cpu = _cpu(ffi, lib)
    lib.mt_clear_error()
    assert lib.mt_last_status() == lib.MT_OK
    assert ffi.string(lib.mt_last_error()) == b""
    bad_shape = ffi.new("int64_t[]", [2, -1])
    assert lib.mt_zeros(2, bad_shape, lib.MT_FLOAT32, cpu) == ffi.NULL
    assert lib.mt_last_status() == lib.MT_ERR_SHAPE
    message = ffi.string(lib.mt_last_error()).decode()
    assert message.startswith("mt_zeros: "), message
    lib.mt_clear_error()
    assert lib.mt_last_status() == lib.MT_OK


def check_device_properties_layout(m):
    ffi = m.ffi
    # The struct as cffi lays it out from the header: C's layout on x86-64.
    assert ffi.sizeof("mt_device") == 8
    assert ffi.sizeof("mt_device_properties") == 128 + 2 * 8 + 3 * 4 + 4
    assert ffi.offsetof("mt_device_properties", "total_memory") == 128


def check_blob_deleter_callback(m):
    ffi, lib = m.ffi, m.lib
    calls = []

    @ffi.callback("mt_deleter")
    def deleter(ctx):
        calls.append(ctx)

    data = ffi.new("double[4]", [1.0, 2.0, 3.0, 4.0])
    shape = ffi.new("int64_t[]", [4])
    blob = lib.mt_from_blob(data, 1, shape, ffi.NULL, lib.MT_FLOAT64, deleter, data)
    assert blob != ffi.NULL, ffi.string(lib.mt_last_error())
    doubled = lib.mt_mul_scalar(blob, 2.0)
    lib.mt_tensor_free(blob)
    address = int(ffi.cast("uintptr_t", data))
    assert [int(ffi.cast("uintptr_t", c)) for c in calls] == [address], \
        "the deleter runs once, with its context, when the last view goes"
    out = ffi.new("double[4]")
    assert lib.mt_to_host(doubled, out, ffi.sizeof(out)) == lib.MT_OK
    lib.mt_tensor_free(doubled)
    assert list(out) == [2.0, 4.0, 6.0, 8.0]


CHECKS = [
    check_every_function_is_exported,
    check_version,
    check_dtypes,
    check_zeros_add_to_host,
    check_error_path,
    check_device_properties_layout,
    check_blob_deleter_callback,
]


# ------------------------------------------------------------- pytest entry

if "pytest" in sys.modules:
    import pytest

    @pytest.fixture(scope="module")
    def loaded():
        header, library = os.environ.get("MT_HEADER"), os.environ.get("MT_LIBRARY")
        if not header or not library:
            pytest.skip("set MT_HEADER and MT_LIBRARY to run the cffi header checks")
        return Loaded(header, library)

    @pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
    def test_cffi(loaded, check):
        check(loaded)


# ------------------------------------------------------------- script entry

def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} HEADER LIBRARY", file=sys.stderr)
        return 2
    try:
        loaded = Loaded(argv[1], argv[2])
    except AssertionError as error:
        print(f"FAIL parse: {error}", file=sys.stderr)
        return 1
    failed = 0
    for check in CHECKS:
        try:
            check(loaded)
            print(f"ok   {check.__name__}")
        except Exception as error:  # report every check, whatever breaks one
            failed += 1
            print(f"FAIL {check.__name__}: {type(error).__name__}: {error}", file=sys.stderr)
    print(f"cffi header checks: {len(CHECKS) - failed} of {len(CHECKS)} ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
