"""Calling libmodaltensor through cffi in ABI mode: no compiler, no binding.

cffi's cdef() reads C declarations but not preprocessor lines, so the public
header is fed to it without them (and without what `#ifdef __cplusplus`
guards). tests/packaging/test_cffi_header.py checks that this keeps working
for every declaration of the header.

Usage: python3 examples/python/cffi_abi.py [HEADER [LIBRARY]]
  HEADER   include/modaltensor.h (default: this checkout's)
  LIBRARY  the shared library (default: $MODALTENSOR_LIBRARY, else this
           checkout's build*/src/libmodaltensor.so, else libmodaltensor.so.0)
"""

import glob
import os
import sys

import cffi

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def declarations(header_path):
    """The header's C declarations: preprocessor lines dropped, and the lines
    inside `#ifdef __cplusplus` ... `#endif` with them."""
    kept, skipping = [], False
    with open(header_path, encoding="utf-8") as header:
        for line in header:
            directive = line.strip()
            if directive.startswith("#ifdef __cplusplus"):
                skipping = True
            elif skipping and directive.startswith("#endif"):
                skipping = False
            elif not skipping and not directive.startswith("#"):
                kept.append(line)
    return "".join(kept)


def library_path(argv):
    if len(argv) > 2:
        return argv[2]
    if os.environ.get("MODALTENSOR_LIBRARY"):
        return os.environ["MODALTENSOR_LIBRARY"]
    built = sorted(glob.glob(os.path.join(ROOT, "build*", "src", "libmodaltensor.so")),
                   key=os.path.getmtime, reverse=True)
    return built[0] if built else "libmodaltensor.so.0"


def main(argv):
    header = argv[1] if len(argv) > 1 else os.path.join(ROOT, "include", "modaltensor.h")
    ffi = cffi.FFI()
    ffi.cdef(declarations(header))
    lib = ffi.dlopen(library_path(argv))
    print("libmodaltensor", ffi.string(lib.mt_version()).decode())

    def check(result):
        """Raises with the library's message for NULL or a non-zero status."""
        if result == ffi.NULL or (isinstance(result, int) and result != lib.MT_OK):
            status = ffi.string(lib.mt_status_name(lib.mt_last_status())).decode()
            raise RuntimeError(f"{ffi.string(lib.mt_last_error()).decode()} ({status})")
        return result

    cpu = ffi.new("mt_device *")
    check(lib.mt_device_parse(b"cpu", cpu))

    # a = [[0, 1, 2], [3, 4, 5]] as float32; b = a @ a^T; c = softmax(b, -1)
    shape = ffi.new("int64_t[]", [2, 3])
    values = ffi.new("float[]", [0, 1, 2, 3, 4, 5])
    owned = []  # every handle the library returns is ours to free
    try:
        a = check(lib.mt_from_data(values, 2, shape, lib.MT_FLOAT32, cpu[0]))
        owned.append(a)
        at = check(lib.mt_transpose(a, 0, 1))
        owned.append(at)
        b = check(lib.mt_matmul(a, at))
        owned.append(b)
        c = check(lib.mt_softmax(b, -1))
        owned.append(c)
        rows, cols = lib.mt_shape(c, 0), lib.mt_shape(c, 1)
        out = ffi.new("float[]", rows * cols)
        check(lib.mt_to_host(c, out, ffi.sizeof(out)))
        for r in range(rows):
            print(f"softmax(a @ a.T)[{r}] =", [round(out[r * cols + k], 4) for k in range(cols)])

        # Errors: NULL (or a status), then mt_last_status() / mt_last_error().
        wrong = ffi.new("int64_t[]", [4])
        other = check(lib.mt_zeros(1, wrong, lib.MT_FLOAT32, cpu[0]))
        owned.append(other)
        try:
            check(lib.mt_add(a, other))
        except RuntimeError as error:
            print("expected failure:", error)
    finally:
        for handle in owned:
            lib.mt_tensor_free(handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
