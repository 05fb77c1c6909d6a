"""The modal device: tensors kept by a worker (a GPU server), or in-process
while remote execution is disabled. Mirrors torch.cuda's helpers."""

import atexit as _atexit
import contextlib as _contextlib
import ctypes as _ctypes
import operator as _operator
import os as _os
import sys as _sys
import time as _time

from ._lib import MtDeviceProperties as _MtDeviceProperties, MtModalConfig as _MtModalConfig, \
    MtModalProgressFn as _MtModalProgressFn, MtModalStats as _MtModalStats, lib as _lib
from .device import Device as _Device, as_device as _as_device
from .errors import DeviceError as _DeviceError, check as _check

__all__ = ["is_available", "device_count", "DeviceProperties", "get_device_properties",
           "memory_allocated", "memory_reserved", "synchronize", "enable_remote_execution",
           "disable_remote_execution", "is_remote_execution_enabled", "remote_execution",
           "shutdown", "stats", "reset_stats", "configure", "set_progress"]


def is_available():
    """True when a worker answers for the modal device (the library starts a
    local worker when none is configured), or when modal tensors run
    in-process (remote execution disabled)."""
    return bool(_lib.mt_modal_is_available())


def device_count():
    """Number of modal devices across all configured workers; 0 when none."""
    return _lib.mt_modal_device_count()


class DeviceProperties:
    """What mt_modal_get_device_properties reports for one modal device."""
    __slots__ = ("name", "total_memory", "free_memory", "major", "minor",
                 "multi_processor_count")

    def __init__(self, props):
        self.name = props.name.decode(errors="replace")
        self.total_memory = props.total_memory
        self.free_memory = props.free_memory
        self.major = props.major
        self.minor = props.minor
        self.multi_processor_count = props.multiprocessors

    def __repr__(self):
        return (f"DeviceProperties(name={self.name!r}, major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1 << 20)}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def _index_of(device):
    if isinstance(device, int):
        return device
    device = _as_device(device)
    if device.type != "modal":
        raise _DeviceError(f"modaltensor.modal: {device} is not a modal device")
    return device.index


def get_device_properties(device=0):
    """Properties of modal device `device` (an index, "modal:N" or a Device)."""
    props = _MtDeviceProperties()
    index = _index_of(device)
    _check(_lib.mt_modal_get_device_properties(index, _ctypes.byref(props)),
           "mt_modal_get_device_properties")
    return DeviceProperties(props)


def _memory(function, name, device):
    """Calls one of the two C memory queries for device (an index, "modal:N"
    or a Device; modal:0 when None) and returns its int64."""
    out = _ctypes.c_int64()
    _check(function(_index_of(0 if device is None else device), _ctypes.byref(out)), name)
    return out.value


def memory_allocated(device=None):
    """Bytes of tensor memory in use on a modal device (modal:0 when None), as
    torch.cuda.memory_allocated: the worker's live blocks over all its clients,
    read afresh. Work still queued here is not counted: synchronize(device)
    first to include it. 0 in-process (remote execution disabled) and from a
    worker too old to report it."""
    return _memory(_lib.mt_modal_memory_allocated, "mt_modal_memory_allocated", device)


def memory_reserved(device=None):
    """Bytes the worker holds on a modal device (modal:0 when None), as
    torch.cuda.memory_reserved: live blocks and the blocks its caching
    allocator keeps for reuse (on a cpu worker, its cache of freed host
    buffers, at most 512 MiB)."""
    return _memory(_lib.mt_modal_memory_reserved, "mt_modal_memory_reserved", device)


def synchronize(device=None):
    """Waits until the work queued for a modal device (every modal device
    when None) has run, and raises the first deferred error of that work."""
    if device is None:  # all at once: one round trip for every worker
        _check(_lib.mt_modal_synchronize_all(), "mt_modal_synchronize_all")
        return
    d = _Device("modal", device) if isinstance(device, int) else _as_device(device)
    _check(_lib.mt_synchronize(d.c), "mt_synchronize")


def stats():
    """This process's modal traffic (mt_modal_get_stats) as a dict: round
    trips, syncs, graphs, nodes, bytes up and down, messages, what
    content addressing skipped (bytes_skipped, uploads_skipped), the bytes of
    graph messages (graph_bytes) and the graphs sent by reference to a kept
    template (graphs_reused)."""
    s = _MtModalStats()
    _check(_lib.mt_modal_get_stats(_ctypes.byref(s)), "mt_modal_get_stats")
    return {name: getattr(s, name) for name, _ in s._fields_}


def configure(address=None, token=None, tls_ca=None, tls=None, timeout=None,
              connect_timeout=None):
    """Where the workers are and how to reach them, instead of the
    environment (mt_modal_configure): address (a worker address, a
    comma-separated list, or a list of them), token, tls_ca (a PEM file),
    tls (True: always, False: never), timeout and connect_timeout (seconds).
    Arguments left None keep what the environment says; configure() with
    none goes back to the environment alone. Call it before the first modal
    call (or after shutdown()): once the device is in use it raises."""
    if not isinstance(address, (str, type(None))):
        address = ",".join(address)
    if all(v is None for v in (address, token, tls_ca, tls, timeout, connect_timeout)):
        _check(_lib.mt_modal_configure(None), "mt_modal_configure")
        return
    enc = lambda v: None if v is None else str(v).encode()
    cfg = _MtModalConfig(enc(address), enc(token), enc(tls_ca),
                         -1 if tls is None else int(bool(tls)),
                         float(timeout or 0), float(connect_timeout or 0))
    _check(_lib.mt_modal_configure(_ctypes.byref(cfg)), "mt_modal_configure")


_KINDS = ("upload", "download")
_progress_installed = None  # the ctypes function the library calls: kept alive here


class _ProgressBar:
    """A one-line bar on a stream: redrawn at most 10 times a second, ended
    with a newline when the transfer is done."""

    def __init__(self, stream):
        self.stream, self.start, self.drawn = stream, 0.0, 0.0

    def __call__(self, kind, device, done, total):
        now = _time.monotonic()
        if done == 0:
            self.start = now
        elif done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        width = 30
        fill = width * done // total if total else width
        rate = done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(f"\rmodal:{device} {kind} [{'#' * fill}{'.' * (width - fill)}] "
                          f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB {rate:.0f} MB/s")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def set_progress(callback=True, min_bytes=16 << 20):
    """Reports transfers to and from the workers of min_bytes or more
    (mt_modal_set_progress): callback(kind, device, done, total), kind
    "upload" or "download", called once with done 0, after each chunk of
    about 1 MiB and last with done == total. True: a bar on stderr; None or
    False: no reports. The callback runs on the thread that moves the data
    and must not use modaltensor; an exception in it is printed and
    ignored. By default, when stderr is a terminal, a bar is shown for
    transfers of 64 MiB or more (MODALTENSOR_PROGRESS=0 turns it off)."""
    global _progress_installed
    min_bytes = _operator.index(min_bytes)
    if min_bytes < 0:
        raise ValueError(f"set_progress: min_bytes {min_bytes} is negative")
    if callback is True:
        callback = _ProgressBar(_sys.stderr)
    if not callback:
        _lib.mt_modal_set_progress(_MtModalProgressFn(), None, 0)
        _progress_installed = None
        return

    def report(_ctx, kind, device, done, total):
        callback(_KINDS[kind], device, done, total)

    installed = _MtModalProgressFn(report)
    if _progress_installed is None:  # the library must not call it once Python is gone
        _atexit.register(_lib.mt_modal_set_progress, _MtModalProgressFn(), None, 0)
    _lib.mt_modal_set_progress(installed, None, min_bytes)
    _progress_installed = installed


def _default_progress():
    try:
        interactive = _sys.stderr is not None and _sys.stderr.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive and _os.environ.get("MODALTENSOR_PROGRESS", "1") != "0":
        set_progress(True, 64 << 20)


_default_progress()


def reset_stats():
    """Sets every counter of stats() to 0."""
    _lib.mt_modal_stats_reset()


def enable_remote_execution():
    """Modal tensors made from now on run in a worker (the default)."""
    _lib.mt_set_remote_execution(1)


def disable_remote_execution():
    """Modal tensors made from now on run in-process, on the host (for
    development and tests without a worker)."""
    _lib.mt_set_remote_execution(0)


def is_remote_execution_enabled():
    return bool(_lib.mt_remote_execution_enabled())


@_contextlib.contextmanager
def remote_execution(enabled):
    """Runs a block with remote execution switched on or off, restoring the
    previous setting afterwards."""
    previous = is_remote_execution_enabled()
    _lib.mt_set_remote_execution(int(bool(enabled)))
    try:
        yield
    finally:
        _lib.mt_set_remote_execution(int(previous))


def shutdown():
    """Closes remote sessions and stops a worker the library started."""
    _lib.mt_shutdown()


if __name__ == "__main__":
    import sys

    from ._modal_cli import main
    sys.exit(main())
