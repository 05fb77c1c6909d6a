"""modaltensor.modal: availability, devices, synchronisation and the
remote-execution switch."""

import gc

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


def test_memory_in_process_is_zero():
    with mt.modal.remote_execution(False):
        t = mt.ones(1 << 10, device="modal")
        assert mt.modal.memory_allocated() == 0 and mt.modal.memory_reserved("modal:0") == 0
        with pytest.raises(mt.DeviceError, match="mt_modal_memory_allocated"):
            mt.modal.memory_allocated(1)
        with pytest.raises(mt.DeviceError):
            mt.modal.memory_reserved("cpu")
        del t


def test_memory_follows_a_worker_tensor():
    """On a worker, a new 4 MiB tensor adds at least its bytes once synced,
    and freeing it takes them back."""
    if not mt.modal.is_remote_execution_enabled() or not mt.modal.is_available():
        pytest.skip("needs a worker (MODALTENSOR_TEST_MODAL=worker)")
    gc.collect()  # tensors of earlier tests: their frees go with this sync
    mt.modal.synchronize(0)
    before = mt.modal.memory_allocated(0)
    assert mt.modal.memory_reserved() >= before >= 0
    t = mt.zeros(1 << 20, dtype="float32", device="modal")
    mt.modal.synchronize(0)
    grown = mt.modal.memory_allocated("modal:0")
    assert grown - before >= 4 << 20
    assert mt.modal.memory_reserved(0) >= grown
    del t
    gc.collect()
    mt.modal.synchronize(0)
    assert mt.modal.memory_allocated() == before
    with pytest.raises(mt.DeviceError, match="mt_modal_memory_reserved"):
        mt.modal.memory_reserved(mt.modal.device_count())
    with pytest.raises(mt.DeviceError):
        mt.modal.memory_allocated("cpu")


def test_configure_checks_its_arguments():
    with pytest.raises(mt.InvalidArgumentError, match="ftp://host:1"):
        mt.modal.configure(address="ftp://host:1")
    with pytest.raises(mt.InvalidArgumentError, match="timeout_s"):
        mt.modal.configure(timeout=-1)


def test_configure_is_refused_while_the_device_is_in_use():
    if not mt.modal.is_remote_execution_enabled() or not mt.modal.is_available():
        pytest.skip("needs a worker (MODALTENSOR_TEST_MODAL=worker)")
    with pytest.raises(mt.UnsupportedError, match="shutdown"):
        mt.modal.configure(address=["127.0.0.1:1", "127.0.0.1:2"], timeout=5)


def test_stats_count_uploads_the_worker_held():
    """The same 2 MiB uploaded twice in a session: the second goes by reference."""
    if not mt.modal.is_remote_execution_enabled() or not mt.modal.is_available():
        pytest.skip("needs a worker (MODALTENSOR_TEST_MODAL=worker)")
    import numpy as np
    values = np.arange(1 << 19, dtype=np.float32)
    first = mt.from_numpy(values).to("modal")
    mt.modal.synchronize(0)
    mt.modal.reset_stats()
    second = mt.from_numpy(values).to("modal")
    mt.modal.synchronize(0)
    s = mt.modal.stats()
    assert s["uploads_skipped"] == 1 and s["bytes_skipped"] == values.nbytes
    assert s["bytes_up"] < values.nbytes // 100
    assert np.array_equal(second.numpy(), values)
    del first, second


def test_progress_callback_sees_uploads_and_downloads():
    """A 3 MiB upload and its download each report 0 first, grow, end at the
    total; under min_bytes nothing is reported; set_progress(None) stops it."""
    if not mt.modal.is_remote_execution_enabled() or not mt.modal.is_available():
        pytest.skip("needs a worker (MODALTENSOR_TEST_MODAL=worker)")
    import numpy as np
    events = []
    mt.modal.set_progress(lambda *e: events.append(e), min_bytes=1 << 20)
    try:
        values = np.random.default_rng(5).standard_normal(3 << 18).astype(np.float32)
        t = mt.from_numpy(values).to("modal")
        back = t.numpy()
        assert np.array_equal(back, values)
        small = mt.from_numpy(values[:100]).to("modal")
        small.numpy()
    finally:
        mt.modal.set_progress(None)
    for kind in ("upload", "download"):
        seen = [e for e in events if e[0] == kind]
        assert seen, f"no {kind} reported: {events}"
        done = [e[2] for e in seen]
        assert done[0] == 0 and done[-1] == values.nbytes and done == sorted(done)
        assert all(e[1] == 0 and e[3] == values.nbytes for e in seen)
    count = len(events)
    t.numpy()
    assert len(events) == count
    with pytest.raises(TypeError):
        mt.modal.set_progress(lambda *e: None, min_bytes="big")


def test_progress_bar_draws_on_a_stream():
    import io
    out = io.StringIO()
    bar = mt.modal._ProgressBar(out)
    bar("upload", 0, 0, 4 << 20)
    bar("upload", 0, 4 << 20, 4 << 20)
    text = out.getvalue()
    assert "modal:0 upload" in text and "4.0/4.0 MiB" in text and text.endswith("\n")
