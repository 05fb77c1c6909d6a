"""modaltensor-worker on a Modal GPU.

`python -m modaltensor.modal up` deploys this app and spawns `serve`; by hand:

    modal deploy remote_worker/modal/app.py
    python -c "import modal; modal.Function.from_name('modaltensor', 'serve').spawn()"

`serve` runs the worker with the CUDA backend inside a container built from an
nvidia/cuda devel image by scripts/setup.sh and scripts/build.sh (the same
steps as the README and CI), forwards its port through Modal's edge
(`modal.forward(port, h2_enabled=True)`: TLS ends there, gRPC's HTTP/2 goes
through), publishes the tunnel's address in a `modal.Dict` and clears it when
the worker exits: after --idle-exit seconds without a session or a call, at
the maximum lifetime, or when the call is cancelled.

Settings come from the environment when this module is imported (on the
deploying machine; `serve` gets the same values through its environment):

    MODALTENSOR_MODAL_GPU           GPU type and count: A100 (default), A100-80GB, H100, A100:2
    MODALTENSOR_MODAL_MAX_LIFETIME  seconds before the worker is stopped (default 3600)
    MODALTENSOR_MODAL_IDLE          seconds without a session or call before it exits (default 600)
    MODALTENSOR_MODAL_SECRET        modal.Secret holding MODALTENSOR_WORKER_TOKEN (default modaltensor)
    MODALTENSOR_MODAL_APP           app name; the Dict is "<app>-workers" (default modaltensor)
    MODALTENSOR_MODAL_BASE_IMAGE    CUDA devel base image (default nvidia/cuda:12.8.1-devel-ubuntu24.04)

Only the standard library and `modal` are imported: this file runs in the
container too, where the modaltensor Python package is not installed.
"""

import dataclasses
import os
import re
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

import modal

ENV_PREFIX = "MODALTENSOR_MODAL_"
RECORD_KEY = "worker"
READY_PREFIX = "modaltensor-worker listening on "
REPO_IN_IMAGE = "/opt/modaltensor"
BUILD_DIR_IN_IMAGE = f"{REPO_IN_IMAGE}/build"
WORKER_IN_IMAGE = f"{BUILD_DIR_IN_IMAGE}/remote_worker/modaltensor-worker"
MAX_MODAL_TIMEOUT_S = 24 * 3600
# Seconds between the worker's stop at the maximum lifetime and Modal's own
# timeout, so that the record is cleared before Modal kills the container.
STOP_GRACE_S = 30
WORKER_READY_TIMEOUT_S = 120
GPU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(:[1-8])?$")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the deployment is told: one object, read from the
    environment, so that the CLI, the function's declaration and the tests
    all see the same values."""
    app_name: str = "modaltensor"
    gpu: str = "A100"
    secret_name: str = "modaltensor"
    max_lifetime_s: int = 3600
    idle_exit_s: int = 600
    port: int = 50051
    # Ubuntu 24.04: CMake >= 3.25 and libdlpack-dev, as scripts/setup.sh
    # expects (22.04 has neither). CUDA 12.8 runs on drivers >= 570 and
    # compiles for sm_80 (A100) and sm_90 (H100).
    base_image: str = "nvidia/cuda:12.8.1-devel-ubuntu24.04"

    @property
    def dict_name(self):
        return f"{self.app_name}-workers"

    @classmethod
    def from_env(cls, environ):
        """The settings named by MODALTENSOR_MODAL_* in `environ`, defaults
        for the others; raises ValueError naming the variable at fault."""
        def text(name, default):
            return environ.get(ENV_PREFIX + name, "").strip() or default

        def seconds(name, default):
            raw = text(name, str(default))
            if not raw.isdigit() or int(raw) <= 0:
                raise ValueError(f"{ENV_PREFIX}{name}: '{raw}' is not a positive number of seconds")
            return int(raw)

        defaults = cls()
        config = cls(app_name=text("APP", defaults.app_name),
                     gpu=text("GPU", defaults.gpu),
                     secret_name=text("SECRET", defaults.secret_name),
                     max_lifetime_s=seconds("MAX_LIFETIME", defaults.max_lifetime_s),
                     idle_exit_s=seconds("IDLE", defaults.idle_exit_s),
                     base_image=text("BASE_IMAGE", defaults.base_image))
        config.validate()
        return config

    def validate(self):
        """Rejects values Modal or the worker would refuse later, at a worse moment."""
        if not GPU_PATTERN.match(self.gpu):
            raise ValueError(f"{ENV_PREFIX}GPU: '{self.gpu}' is not a GPU type with an optional "
                             "count (A100, A100-80GB, H100, A100:2)")
        if not STOP_GRACE_S < self.max_lifetime_s <= MAX_MODAL_TIMEOUT_S - STOP_GRACE_S:
            raise ValueError(f"{ENV_PREFIX}MAX_LIFETIME: {self.max_lifetime_s} s is outside "
                             f"{STOP_GRACE_S + 1}..{MAX_MODAL_TIMEOUT_S - STOP_GRACE_S} s")

    def as_env(self):
        """The environment that makes from_env return this configuration
        (given to `serve`, which imports this module again in the container)."""
        return {ENV_PREFIX + "APP": self.app_name, ENV_PREFIX + "GPU": self.gpu,
                ENV_PREFIX + "SECRET": self.secret_name,
                ENV_PREFIX + "MAX_LIFETIME": str(self.max_lifetime_s),
                ENV_PREFIX + "IDLE": str(self.idle_exit_s),
                ENV_PREFIX + "BASE_IMAGE": self.base_image}


config = Config.from_env(os.environ)
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# The image's build steps: the dependency script first (its own layer, cached
# while scripts/setup.sh is unchanged), then the repository and the worker
# build, by the scripts the README and .ci/run use.
SETUP_COMMANDS = [f"bash {REPO_IN_IMAGE}/scripts/setup.sh"]
BUILD_COMMANDS = [f"cd {REPO_IN_IMAGE} && bash scripts/build.sh --worker-only "
                  f"--build-dir {BUILD_DIR_IN_IMAGE} -DMT_ENABLE_CUDA=ON"]
# Local build trees, VCS data and caches stay out of the image (and out of its hash).
REPO_IGNORE = [".git", "build", "build-*", "**/__pycache__", "**/*.pyc", ".cache", ".pytest_cache",
               ".hypothesis", "shared"]

image = (
    modal.Image.from_registry(config.base_image, add_python="3.12")
    .env({"DEBIAN_FRONTEND": "noninteractive"})
    .add_local_file(REPO_ROOT / "scripts" / "setup.sh", f"{REPO_IN_IMAGE}/scripts/setup.sh",
                    copy=True)
    .run_commands(*SETUP_COMMANDS)
    .add_local_dir(REPO_ROOT, REPO_IN_IMAGE, copy=True, ignore=REPO_IGNORE)
    .run_commands(*BUILD_COMMANDS)
)

app = modal.App(config.app_name)

# What `serve` is declared with; kept as data so tests can compare it with
# the configuration and with what Modal recorded.
FUNCTION_OPTIONS = dict(
    image=image,
    gpu=config.gpu,
    secrets=[modal.Secret.from_name(config.secret_name, required_keys=["MODALTENSOR_WORKER_TOKEN"])],
    timeout=config.max_lifetime_s,
    env=config.as_env(),
    retries=0,
    max_containers=1,
)


class DictRegistry:
    """The published worker record in the app's modal.Dict (one key)."""

    def __init__(self, dict_name):
        self._dict = modal.Dict.from_name(dict_name, create_if_missing=True)

    def publish(self, record, only_if_absent=False):
        self._dict.put(RECORD_KEY, record, skip_if_exists=only_if_absent)

    def read(self):
        return self._dict.get(RECORD_KEY)

    def clear(self):
        self._dict.pop(RECORD_KEY, None)


def worker_command(cfg, binary=WORKER_IN_IMAGE, listen=None, backend="cuda"):
    """The worker's command line in the container: CUDA backend, every
    interface (Modal's edge connects from outside the container; the token
    from the secret is required on every call), idle exit."""
    return [binary, "--backend", backend, "--listen", listen or f"0.0.0.0:{cfg.port}",
            "--idle-exit", str(cfg.idle_exit_s)]


def start_worker(command, env, ready_timeout_s=WORKER_READY_TIMEOUT_S):
    """Starts the worker and waits for its readiness line; returns the
    process and the address it printed. Raises RuntimeError when it exits or
    stays silent first. Its later output is echoed to this container's log."""
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([worker.stdout], [], [], remaining)[0]:
            worker.kill()
            worker.wait()
            raise RuntimeError(f"modaltensor-worker printed no readiness line in {ready_timeout_s} s")
        line = worker.stdout.readline()
        if not line:
            status = worker.wait()
            raise RuntimeError(f"modaltensor-worker exited with status {status} before it was ready "
                               "(its log is above)")
        print(line, end="", flush=True)
        if line.startswith(READY_PREFIX):
            threading.Thread(target=_echo, args=(worker.stdout,), daemon=True).start()
            return worker, line[len(READY_PREFIX):].strip()


def _echo(stream):
    """Keeps the worker's stdout drained (a full pipe would block it)."""
    for line in stream:
        print(line, end="", flush=True)


def listening_port(address):
    """The port of the address the worker printed ("0.0.0.0:50051")."""
    return int(address.rsplit(":", 1)[1])


def make_record(cfg, address, function_call_id, started_at):
    """What clients read: where to connect and until when."""
    return {"address": address, "gpu": cfg.gpu, "started_at": started_at,
            "expires_at": started_at + cfg.max_lifetime_s - STOP_GRACE_S,
            "idle_exit_s": cfg.idle_exit_s, "function_call_id": function_call_id}


def run_worker_session(cfg, registry, forward, command, env, function_call_id):
    """Runs one worker from start to exit: start, forward its port, publish
    the record, wait for its exit or the end of its lifetime, stop it, clear
    the record if it is still ours. Returns the worker's exit status."""
    started_at = time.time()
    worker, listening = start_worker(command, env)
    try:
        with forward(listening_port(listening)) as tunnel:
            record = make_record(cfg, tunnel.url, function_call_id, started_at)
            registry.publish(record)
            print(f"published {record}", flush=True)
            try:
                return _wait_until_exit(worker, record["expires_at"])
            finally:
                current = registry.read()
                if current and current.get("function_call_id") == function_call_id:
                    registry.clear()
                print("record cleared", flush=True)
    finally:
        _stop(worker)


def _wait_until_exit(worker, expires_at):
    try:
        return worker.wait(timeout=max(0.0, expires_at - time.time()))
    except subprocess.TimeoutExpired:
        print("maximum lifetime reached: stopping the worker", flush=True)
        return _stop(worker)


def _stop(worker):
    """SIGTERM, then SIGKILL when it lingers; returns the exit status."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
    return worker.wait()


def _exit_on_sigterm():
    """Modal stops a container (cancel, preemption) with a signal: turn
    SIGTERM into SystemExit so the record is cleared on the way out."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


@app.function(**FUNCTION_OPTIONS)
def serve():
    """The deployed function: one worker on this container's GPU(s)."""
    cfg = Config.from_env(os.environ)
    if not os.environ.get("MODALTENSOR_WORKER_TOKEN"):
        raise RuntimeError(f"the modal.Secret '{cfg.secret_name}' has no MODALTENSOR_WORKER_TOKEN")
    _exit_on_sigterm()
    status = run_worker_session(
        cfg, DictRegistry(cfg.dict_name),
        lambda port: modal.forward(port, h2_enabled=True),
        worker_command(cfg), dict(os.environ), modal.current_function_call_id())
    print(f"modaltensor-worker exited with status {status}", flush=True)
    return status
