"""Devices: "cpu", "modal" (= "modal:0"), "modal:N"."""

import ctypes

from ._lib import MtDevice, lib
from .errors import check

CPU = 0
MODAL = 1
_TYPE_NAMES = {CPU: "cpu", MODAL: "modal"}


class Device:
    """Where a tensor lives. Compares equal to its spelling:
    `t.device == "modal:0"`, `t.device == "modal"`."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=0):
        self.type = type    # "cpu" or "modal"
        self.index = index

    @property
    def c(self):
        """The struct mt_device."""
        return MtDevice(CPU if self.type == "cpu" else MODAL, self.index)

    def __str__(self):
        return "cpu" if self.type == "cpu" else f"modal:{self.index}"

    def __repr__(self):
        return f"device('{self}')"

    def __eq__(self, other):
        if isinstance(other, (str, Device)):
            try:
                other = as_device(other)
            except ValueError:
                return False
            return self.type == other.type and self.index == other.index
        return NotImplemented

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (as_device, (str(self),))


def from_c(device):
    """The Device of a struct mt_device."""
    return Device(_TYPE_NAMES.get(device.type, f"type{device.type}"), device.index)


def as_device(spec):
    """The Device named by spec: a Device, a string, or None (cpu). Parsed by
    the library, so the spellings are exactly those of mt_device_parse."""
    if spec is None:
        return Device("cpu")
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        spec = str(spec)
    out = MtDevice()
    check(lib.mt_device_parse(spec.encode(), ctypes.byref(out)), "mt_device_parse")
    return from_c(out)
