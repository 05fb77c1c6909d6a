"""modaltensor.modal: availability, devices, synchronisation and the
remote-execution switch."""

import pytest

import modaltensor as mt


def test_in_process_modal_device():
    with mt.modal.remote_execution(False):
        assert not mt.modal.is_remote_execution_enabled()
        assert mt.modal.is_available() and mt.modal.device_count() >= 1
        props = mt.modal.get_device_properties(0)
        assert props.name and props.total_memory > 0 and props.multi_processor_count >= 1
        assert props.free_memory <= props.total_memory
        assert "DeviceProperties(name=" in repr(props)
        assert mt.modal.get_device_properties("modal:0").name == props.name
        mt.modal.synchronize()
        mt.modal.synchronize(0)
        mt.modal.synchronize("modal:0")
        t = mt.ones(3, device="modal") * 2
        mt.modal.synchronize(t.device)
        assert t.sum().item() == 6.0


def test_switch_round_trip():
    before = mt.modal.is_remote_execution_enabled()
    mt.modal.enable_remote_execution()
    assert mt.modal.is_remote_execution_enabled()
    mt.modal.disable_remote_execution()
    assert not mt.modal.is_remote_execution_enabled()
    with mt.modal.remote_execution(True):
        assert mt.modal.is_remote_execution_enabled()
    assert not mt.modal.is_remote_execution_enabled()
    (mt.modal.enable_remote_execution if before else mt.modal.disable_remote_execution)()


def test_in_process_tensors_survive_a_switch():
    with mt.modal.remote_execution(False):
        t = mt.arange(4, device="modal")
    with mt.modal.remote_execution(True):
        assert t.tolist() == [0, 1, 2, 3]


def test_bad_devices():
    with mt.modal.remote_execution(False):
        with pytest.raises(mt.DeviceError, match="mt_modal_get_device_properties"):
            mt.modal.get_device_properties(mt.modal.device_count())
        with pytest.raises(mt.DeviceError):
            mt.modal.get_device_properties("cpu")
        with pytest.raises(mt.DeviceError, match="mt_synchronize"):
            mt.modal.synchronize(99)


def test_moving_between_devices(device):
    t = mt.arange(6, dtype="float32", device=device).reshape(2, 3)
    other = "cpu" if device == "modal" else "modal"
    moved = t.to(other)
    assert moved.device == other and moved.tolist() == t.tolist()
    assert moved.to(device).device == device
    mixed = t.to(other, "float16")
    assert mixed.dtype == mt.float16 and mixed.device == other


def test_shutdown_keeps_in_process_tensors():
    with mt.modal.remote_execution(False):
        t = mt.ones(2, device="modal")
        mt.modal.shutdown()
        mt.modal.shutdown()
        assert t.sum().item() == 2.0
