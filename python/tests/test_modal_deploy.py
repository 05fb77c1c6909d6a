"""The Modal deployment without Modal: remote_worker/modal/app.py imported
with the real `modal` package (what it declares, and its `serve` run
locally against a real worker with Modal's calls replaced), and
`python -m modaltensor.modal up|status|down` against the stand-in registry
and launcher (MODALTENSOR_MODAL_STANDIN) with a real worker on loopback.

The worker is the one CTest names in MODALTENSOR_WORKER_BINARY. The app
tests need `modal` (pip install modal); they skip without it unless
MODALTENSOR_REQUIRE_MODAL=1 (set by .ci/run once it has installed it).
"""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modaltensor import _modal_cli

REPO = Path(__file__).resolve().parents[2]
APP_FILE = REPO / "remote_worker" / "modal" / "app.py"
PACKAGE_ROOT = REPO / "python"
WORKER = os.environ.get("MODALTENSOR_WORKER_BINARY", "")
TOKEN = "test-token-4f1c"
READY = "modaltensor-worker listening on "
# The shortest lifetime the app accepts: its record expires 1 s after publication.
SHORTEST_LIFETIME_S = 31

needs_worker = pytest.mark.skipif(not os.path.isfile(WORKER),
                                  reason="MODALTENSOR_WORKER_BINARY names no worker")


def require_modal():
    if os.environ.get("MODALTENSOR_REQUIRE_MODAL") == "1":
        import modal
        return modal
    return pytest.importorskip("modal")


def load_app(monkeypatch, **settings):
    """A fresh import of app.py with MODALTENSOR_MODAL_<name> = value."""
    require_modal()
    for name in ("APP", "GPU", "SECRET", "MAX_LIFETIME", "IDLE", "BASE_IMAGE"):
        monkeypatch.delenv(f"MODALTENSOR_MODAL_{name}", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(f"MODALTENSOR_MODAL_{name}", str(value))
    spec = importlib.util.spec_from_file_location("modaltensor_modal_app_under_test", APP_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unwrapped(modal_object):
    """modal's internal object behind a public one (private to modal, like
    `declared`: .ci/run pins the version range these were written for)."""
    from modal._utils.async_utils import synchronizer
    return synchronizer._translate_in(modal_object)


def declared(modal_object):
    """The arguments Modal recorded for a Function or Image: its loader's closure."""
    load = unwrapped(modal_object)._load
    return dict(zip(load.__code__.co_freevars, (c.cell_contents for c in load.__closure__ or ())))


def image_commands(image):
    """Every Dockerfile command of an image's layers, base first."""
    closure = declared(image)
    commands = []
    for base in (closure.get("base_images") or {}).values():
        commands += image_commands(base)
    if closure.get("dockerfile_function"):
        commands += closure["dockerfile_function"]("2025.06").commands
    return commands


# --- the app ---------------------------------------------------------------

def test_app_declares_gpu_secret_and_timeouts(monkeypatch):
    app = load_app(monkeypatch)
    cfg = app.config
    assert (cfg.gpu, cfg.secret_name, cfg.max_lifetime_s, cfg.idle_exit_s) == \
        ("A100", "modaltensor", 3600, 600)
    function = declared(app.serve)
    assert function["gpu"] == "A100" == app.FUNCTION_OPTIONS["gpu"]
    assert function["timeout"] == 3600 == app.FUNCTION_OPTIONS["timeout"]
    assert function["max_containers"] == 1
    assert "modal.Secret.from_name('modaltensor')" in repr(function["secrets"])
    assert unwrapped(function["image"]) is unwrapped(app.image)
    assert app.config.base_image.startswith("nvidia/cuda:12.") and "-devel-" in app.config.base_image
    assert app.worker_command(cfg)[1:] == ["--backend", "cuda", "--listen", "0.0.0.0:50051",
                                           "--idle-exit", "600"]


@pytest.mark.parametrize("gpu", ["A100-80GB", "H100", "A100:2"])
def test_app_settings_come_from_the_environment(monkeypatch, gpu):
    app = load_app(monkeypatch, GPU=gpu, MAX_LIFETIME=7200, IDLE=120, SECRET="team-token",
                   APP="mt-test")
    function = declared(app.serve)
    assert function["gpu"] == gpu
    assert function["timeout"] == 7200
    assert "modal.Secret.from_name('team-token')" in repr(function["secrets"])
    assert app.app.name == "mt-test" and app.config.dict_name == "mt-test-workers"
    assert "--idle-exit" in app.worker_command(app.config)
    assert app.worker_command(app.config)[-1] == "120"
    # The container imports the module again: the function's environment
    # must give it the same configuration.
    assert app.Config.from_env(app.FUNCTION_OPTIONS["env"]) == app.config


@pytest.mark.parametrize("name,value,message", [
    ("GPU", "A100 x2", "is not a GPU type"),
    ("IDLE", "0", "not a positive number of seconds"),
    ("MAX_LIFETIME", "soon", "not a positive number of seconds"),
    ("MAX_LIFETIME", "90000", "outside"),
])
def test_app_rejects_bad_settings(monkeypatch, name, value, message):
    with pytest.raises(ValueError, match=f"MODALTENSOR_MODAL_{name}: .*{message}"):
        load_app(monkeypatch, **{name: value})


def test_image_is_built_by_the_projects_scripts(monkeypatch):
    app = load_app(monkeypatch)
    runs = [c for c in image_commands(app.image) if c.startswith("RUN ")]
    assert runs == [f"RUN {app.SETUP_COMMANDS[0]}", f"RUN {app.BUILD_COMMANDS[0]}"]
    assert runs[0] == "RUN bash /opt/modaltensor/scripts/setup.sh"
    assert re.fullmatch(r"RUN cd /opt/modaltensor && bash scripts/build\.sh --worker-only "
                        r"--build-dir /opt/modaltensor/build -DMT_ENABLE_CUDA=ON", runs[1])
    assert app.WORKER_IN_IMAGE == "/opt/modaltensor/build/remote_worker/modaltensor-worker"


class LocalTunnel:
    """What modal.forward yields, for a port on this machine."""

    def __init__(self, port):
        self.url = f"127.0.0.1:{port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class MemoryRegistry:
    def __init__(self, on_publish=None):
        self.record = None
        self.published = []
        self.on_publish = on_publish

    def publish(self, record, only_if_absent=False):
        self.record = record
        self.published.append(record)
        if self.on_publish:
            self.on_publish(record)

    def read(self):
        return self.record

    def clear(self):
        self.record = None


@needs_worker
def test_serve_forwards_publishes_and_clears(monkeypatch):
    """`serve` itself, run locally: a cpu worker stands in for the CUDA one,
    a local "tunnel" for modal.forward; the worker must answer the library
    at the published address, and the record goes when the worker stops
    (here: at the end of a 31 s maximum lifetime, 1 s after publication)."""
    app = load_app(monkeypatch, MAX_LIFETIME=SHORTEST_LIFETIME_S)
    assert app.STOP_GRACE_S + 1 == SHORTEST_LIFETIME_S
    monkeypatch.setenv("MODALTENSOR_WORKER_TOKEN", TOKEN)
    monkeypatch.setenv("MODALTENSOR_TOKEN", TOKEN)
    forwarded = []

    def forward(port, h2_enabled=False):
        forwarded.append((port, h2_enabled))
        return LocalTunnel(port)

    answers = []
    registry = MemoryRegistry(on_publish=lambda record: answers.append(
        _modal_cli.probe(record["address"])))
    monkeypatch.setattr(app.modal, "forward", forward)
    monkeypatch.setattr(app.modal, "current_function_call_id", lambda: "fc-local")
    monkeypatch.setattr(app, "DictRegistry", lambda name: registry)
    monkeypatch.setattr(app, "worker_command",
                        lambda cfg: [WORKER, "--backend", "cpu", "--listen", "127.0.0.1:0"])
    previous = signal.getsignal(signal.SIGTERM)
    try:
        status = app.serve.local()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 0
    assert len(forwarded) == 1 and forwarded[0][1] is True
    record = registry.published[0]
    assert record["address"] == f"127.0.0.1:{forwarded[0][0]}"
    assert record["function_call_id"] == "fc-local" and record["gpu"] == "A100"
    assert record["expires_at"] == pytest.approx(record["started_at"] + 1)
    assert answers[0].answered, answers[0].message
    assert registry.record is None


@needs_worker
def test_serve_returns_when_the_worker_exits_idle(monkeypatch):
    """The real command line (idle exit after 1 s) with a cpu worker: once
    the probe's session has ended the worker exits by itself with status 0,
    and `serve` clears the record and returns that status."""
    app = load_app(monkeypatch, IDLE=1)
    monkeypatch.setenv("MODALTENSOR_WORKER_TOKEN", TOKEN)
    monkeypatch.setenv("MODALTENSOR_TOKEN", TOKEN)
    answers = []
    registry = MemoryRegistry(on_publish=lambda record: answers.append(
        _modal_cli.probe(record["address"])))
    monkeypatch.setattr(app.modal, "forward", lambda port, h2_enabled=False: LocalTunnel(port))
    monkeypatch.setattr(app.modal, "current_function_call_id", lambda: "fc-idle")
    monkeypatch.setattr(app, "DictRegistry", lambda name: registry)
    command = app.worker_command(app.config, WORKER, "127.0.0.1:0", backend="cpu")
    assert command[-2:] == ["--idle-exit", "1"]
    monkeypatch.setattr(app, "worker_command", lambda cfg: command)
    previous = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    try:
        status = app.serve.local()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 0
    assert answers[0].answered, answers[0].message
    assert registry.record is None
    assert time.monotonic() - started < 60


def test_serve_requires_the_token(monkeypatch):
    app = load_app(monkeypatch)
    monkeypatch.delenv("MODALTENSOR_WORKER_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="has no MODALTENSOR_WORKER_TOKEN"):
        app.serve.local()


@needs_worker
def test_start_worker_reports_an_early_exit(monkeypatch):
    app = load_app(monkeypatch)
    with pytest.raises(RuntimeError, match="exited with status .* before it was ready"):
        app.start_worker([WORKER, "--backend", "no-such-backend"], dict(os.environ))


def clear_settings(monkeypatch):
    """Empties the MODALTENSOR_MODAL_* variables (defaults apply), so that
    what the CLI sets in os.environ is undone after the test."""
    for name in ("APP", "GPU", "SECRET", "MAX_LIFETIME", "IDLE", "BASE_IMAGE", "STANDIN"):
        monkeypatch.setenv(f"MODALTENSOR_MODAL_{name}", "")


def test_cli_without_standin_uses_the_apps_dict_and_launcher(monkeypatch):
    require_modal()
    clear_settings(monkeypatch)
    args = _modal_cli.parse_args(["up", "--gpu", "H100", "--idle", "60"])
    settings = _modal_cli.settings_from_args(args)
    registry, launcher = _modal_cli.open_backend(args, settings)
    assert isinstance(launcher, _modal_cli.ModalLauncher)
    assert launcher.app_module.config.gpu == "H100"
    assert launcher.app_module.config.idle_exit_s == 60
    assert type(registry).__name__ == "DictRegistry"
    assert declared(launcher.app_module.serve)["gpu"] == "H100"


def test_cli_reports_bad_settings(monkeypatch):
    require_modal()
    clear_settings(monkeypatch)
    args = _modal_cli.parse_args(["up", "--gpu", "A100 x2"])
    with pytest.raises(SystemExit, match="MODALTENSOR_MODAL_GPU: 'A100 x2' is not a GPU type"):
        _modal_cli.open_backend(args, _modal_cli.settings_from_args(args))


# --- the CLI against the stand-ins -------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def worker():
    """A worker on a loopback port that requires TOKEN; yields its address."""
    if not os.path.isfile(WORKER):
        pytest.skip("MODALTENSOR_WORKER_BINARY names no worker")
    env = dict(os.environ, MODALTENSOR_WORKER_TOKEN=TOKEN)
    process = subprocess.Popen([WORKER, "--backend", "cpu", "--listen", "127.0.0.1:0"], env=env,
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith(READY), line
    yield line[len(READY):].strip()
    process.terminate()
    process.wait(timeout=30)


def run_cli(state_file, *args, token=TOKEN):
    """The CLI with the stand-ins in state_file; its default worker file is
    under the test's directory (XDG_CACHE_HOME), never the user's."""
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT),
               MODALTENSOR_MODAL_STANDIN=str(state_file),
               XDG_CACHE_HOME=str(state_file.parent / "cache"))
    env.pop("MODALTENSOR_TOKEN", None)
    if token is not None:
        env["MODALTENSOR_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "modaltensor.modal", *args], env=env,
                          capture_output=True, text=True, timeout=240)


def published(address, function_call_id="fc-1"):
    now = time.time()
    return {"address": address, "gpu": "A100", "started_at": now, "expires_at": now + 3600,
            "idle_exit_s": 600, "function_call_id": function_call_id}


def write_state(path, **state):
    path.write_text(json.dumps(state))


def read_state(path):
    return json.loads(path.read_text())


def default_worker_file(state_file):
    return state_file.parent / "cache" / "modaltensor" / "modal-worker"


def evaluated(stdout):
    """MODALTENSOR_WORKER_FILE and MODALTENSOR_WORKER after a shell that had
    the latter set evals stdout."""
    script = 'eval "$1"; printf "%s\\n%s" "$MODALTENSOR_WORKER_FILE" "${MODALTENSOR_WORKER-unset}"'
    done = subprocess.run(["sh", "-c", script, "sh", stdout], capture_output=True, text=True,
                          env=dict(os.environ, MODALTENSOR_WORKER="stale.example:443"), check=True)
    return done.stdout.split("\n")


def test_up_starts_waits_and_prints_the_export_line(tmp_path, worker):
    state = tmp_path / "state.json"
    record = published(worker)
    del record["function_call_id"]
    write_state(state, publish_on_start=record)
    done = run_cli(state, "up", "--gpu", "H100", "--idle", "120", "--wait", "60")
    assert done.returncode == 0, done.stderr
    worker_file = default_worker_file(state)
    lines = done.stdout.splitlines()
    assert lines[0] == f"export MODALTENSOR_WORKER_FILE={worker_file}"
    assert lines[1] == "unset MODALTENSOR_WORKER"
    assert lines[2].startswith(f"# the worker is at {worker}; MODALTENSOR_WORKER={worker} ")
    assert "MODALTENSOR_TOKEN" in lines[3]
    assert evaluated(done.stdout) == [str(worker_file), "unset"]
    assert worker_file.read_text() == f"{worker}\n"
    assert worker_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in worker_file.parent.iterdir()] == ["modal-worker"]
    assert "ready: yes, 1 device(s): cpu" in done.stderr
    saved = read_state(state)
    assert saved["launches"] == [{"function_call_id": "standin-call-1",
                                  "settings": {"MODALTENSOR_MODAL_GPU": "H100",
                                               "MODALTENSOR_MODAL_IDLE": "120"}}]
    assert saved["record"]["function_call_id"] == "standin-call-1"


def test_up_reuses_a_worker_that_answers(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker))
    chosen = tmp_path / "my files" / "worker"
    done = run_cli(state, "up", "--wait", "60", "--worker-file", str(chosen))
    assert done.returncode == 0, done.stderr
    assert evaluated(done.stdout) == [str(chosen), "unset"]
    assert chosen.read_text() == f"{worker}\n"
    assert not default_worker_file(state).exists()
    assert "already up" in done.stderr
    assert "launches" not in read_state(state)


def test_up_times_out_when_the_address_never_answers(tmp_path):
    state = tmp_path / "state.json"
    dead = f"127.0.0.1:{free_port()}"
    write_state(state, publish_on_start=published(dead))
    started = time.monotonic()
    done = run_cli(state, "up", "--wait", "3")
    assert done.returncode == 1
    assert f"up: the worker at {dead} did not answer within 3 s" in done.stderr
    assert "down` stops it" in done.stderr
    assert done.stdout == ""
    assert not default_worker_file(state).exists()
    assert time.monotonic() - started < 120


def test_up_times_out_when_nothing_is_published(tmp_path):
    state = tmp_path / "state.json"
    write_state(state)
    done = run_cli(state, "up", "--wait", "2")
    assert done.returncode == 1
    assert "no address was published within 2 s" in done.stderr
    status = run_cli(state, "status")
    assert status.returncode == 1
    assert "function call: standin-call-1" in status.stdout and "no address yet" in status.stdout
    down = run_cli(state, "down")
    assert down.returncode == 0
    assert read_state(state)["stops"] == ["standin-call-1"]
    assert "record" not in read_state(state)


def test_up_reports_a_failed_call(tmp_path):
    state = tmp_path / "state.json"
    write_state(state, failure="the Modal function failed: Secret 'modaltensor' not found")
    done = run_cli(state, "up", "--wait", "30")
    assert done.returncode == 1
    assert "Secret 'modaltensor' not found" in done.stderr
    assert "record" not in read_state(state)


def test_up_reports_a_refused_token(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, publish_on_start=published(worker))
    done = run_cli(state, "up", "--wait", "60", token="wrong-token")
    assert done.returncode == 1
    assert "refuses MODALTENSOR_TOKEN" in done.stderr


def test_up_keeps_a_running_worker_that_refuses_the_token(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker))
    done = run_cli(state, "up", "--wait", "60", token="wrong-token")
    assert done.returncode == 1
    assert "refuses MODALTENSOR_TOKEN" in done.stderr
    saved = read_state(state)
    assert "stops" not in saved and saved["record"]["address"] == worker


def test_up_says_when_the_running_worker_has_another_gpu(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker))
    done = run_cli(state, "up", "--gpu", "H100", "--wait", "60")
    assert done.returncode == 0, done.stderr
    assert "it runs on A100, not H100: `down` first to change the GPU" in done.stderr


def test_up_needs_a_token(tmp_path):
    state = tmp_path / "state.json"
    write_state(state)
    done = run_cli(state, "up", token=None)
    assert done.returncode == 1
    assert "set MODALTENSOR_TOKEN" in done.stderr
    assert "launches" not in read_state(state)


def test_up_replaces_an_expired_record(tmp_path, worker):
    state = tmp_path / "state.json"
    old = published(worker, "fc-old")
    old["expires_at"] = time.time() - 1
    write_state(state, record=old, publish_on_start=published(worker))
    done = run_cli(state, "up", "--wait", "60")
    assert done.returncode == 0, done.stderr
    saved = read_state(state)
    assert saved["stops"] == ["fc-old"]
    assert saved["record"]["function_call_id"] == "standin-call-1"


def test_status_when_nothing_is_published(tmp_path):
    done = run_cli(tmp_path / "state.json", "status")
    assert done.returncode == 1
    assert done.stdout == "no worker is published (start one: python -m modaltensor.modal up)\n"


def test_status_shows_the_record_and_the_answer(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker))
    done = run_cli(state, "status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"address:       {worker}" in done.stdout
    assert "gpu:           A100" in done.stdout
    assert "answers:       yes, 1 device(s): cpu" in done.stdout
    assert f"worker file:   {default_worker_file(state)} (missing or empty" in done.stdout
    default_worker_file(state).parent.mkdir(parents=True)
    default_worker_file(state).write_text(f"\n{worker}\n")
    done = run_cli(state, "status")
    assert f"worker file:   {default_worker_file(state)} (names this worker)" in done.stdout


def test_status_with_a_wrong_token(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker))
    done = run_cli(state, "status", token="wrong-token")
    assert done.returncode == 1
    assert "answers:       it refuses MODALTENSOR_TOKEN" in done.stdout


def test_down_cancels_and_clears(tmp_path, worker):
    state = tmp_path / "state.json"
    write_state(state, record=published(worker, "fc-7"))
    up = run_cli(state, "up", "--wait", "60")
    assert up.returncode == 0, up.stderr
    assert default_worker_file(state).read_text() == f"{worker}\n"
    done = run_cli(state, "down")
    assert done.returncode == 0
    assert not default_worker_file(state).exists()
    assert f"removed the worker file {default_worker_file(state)}" in done.stdout
    assert "stopped function call fc-7" in done.stdout
    saved = read_state(state)
    assert saved["stops"] == ["fc-7"] and "record" not in saved
    again = run_cli(state, "down")
    assert again.returncode == 0 and "nothing to stop" in again.stdout


# --- one list of build steps -------------------------------------------------

def test_ci_and_readme_build_through_scripts_build_sh():
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/build.sh -DMT_WERROR=ON" in ci
    assert "bash scripts/build.sh --build-dir build-asan" in ci
    assert not re.search(r"^\s*cmake ", ci, re.M), "builds in .ci/run go through scripts/build.sh"
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2 and all("bash scripts/build.sh" in c for c in commands)
    assert not any(re.search(r"\bcmake\b", c) for c in commands)
    app = APP_FILE.read_text()
    assert "scripts/setup.sh" in app and "bash scripts/build.sh --worker-only" in app
