"""`python -m modaltensor.modal up|down|status`: a modaltensor-worker on a
Modal GPU, found without copy-paste (docs/modal.md).

    up      deploys remote_worker/modal/app.py, spawns its `serve` function,
            waits until the address it publishes answers, writes that
            address to the worker file (--worker-file, default
            $XDG_CACHE_HOME/modaltensor/modal-worker, else
            ~/.cache/modaltensor/modal-worker) and prints
            `export MODALTENSOR_WORKER_FILE=...` on stdout (progress goes to
            stderr, so `eval "$(python -m modaltensor.modal up)"` works);
            reuses a worker that is already up. The library reads the file
            again whenever it reconnects, so running programs follow a
            later `up` to the worker's new address.
    status  prints the published record, the worker file and whether the
            worker answers
    down    cancels the function call, clears the record and removes the
            worker file

The Modal calls sit behind two small interfaces: a registry (publish, read,
clear the worker record) and a launcher (start, stop, failure). With
MODALTENSOR_MODAL_STANDIN=FILE (or --standin FILE) both are stand-ins kept in
a JSON file, so the rest of this module (waiting for the record, the
readiness check through the library, the output) runs in tests without a
Modal account.

The readiness check is real: a child process with MODALTENSOR_WORKER set to
the published address and MODALTENSOR_TOKEN from this environment asks the
library for the modal devices (mt_modal_device_count), so "up" means that
the library itself can reach the worker.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import Status

STANDIN_ENV = "MODALTENSOR_MODAL_STANDIN"
APP_ENV = "MODALTENSOR_MODAL_APP_FILE"
DEFAULT_APP_FILE = Path(__file__).resolve().parents[2] / "remote_worker" / "modal" / "app.py"
POLL_INTERVAL_S = 2.0
PROBE_CONNECT_TIMEOUT_S = 10
PROBE_PROCESS_TIMEOUT_S = 90


def log(message):
    """Progress and errors go to stderr: stdout is for the export line."""
    print(f"modaltensor.modal: {message}", file=sys.stderr, flush=True)


class FileRegistry:
    """Stand-in registry: the record under "record" in a JSON file."""

    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def save(self, state):
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def publish(self, record, only_if_absent=False):
        state = self.load()
        if not (only_if_absent and state.get("record")):
            state["record"] = record
            self.save(state)

    def read(self):
        return self.load().get("record")

    def clear(self):
        state = self.load()
        state.pop("record", None)
        self.save(state)


class StandinLauncher:
    """Stand-in launcher over the same JSON file: start() notes the settings
    under "launches" and, playing the app, publishes "publish_on_start" (if
    the test put one there) as the new call's record; stop() notes the call
    under "stops"; "failure" holds what a failed call would report."""

    def __init__(self, registry):
        self.registry = registry

    def start(self, settings):
        state = self.registry.load()
        launches = state.setdefault("launches", [])
        call_id = f"standin-call-{len(launches) + 1}"
        launches.append({"function_call_id": call_id, "settings": settings})
        self.registry.save(state)
        if state.get("publish_on_start"):
            record = dict(state["publish_on_start"], function_call_id=call_id)
            self.registry.publish(record)
        return call_id

    def stop(self, function_call_id):
        state = self.registry.load()
        state.setdefault("stops", []).append(function_call_id)
        self.registry.save(state)

    def failure(self, function_call_id):
        return self.registry.load().get("failure")


class ModalLauncher:
    """The real launcher: deploys the app (image build when its inputs
    changed), spawns `serve`, cancels calls. `app_module` is
    remote_worker/modal/app.py, imported with the settings in the
    environment."""

    def __init__(self, app_module):
        self.app_module = app_module

    def start(self, settings):
        """Deploys (Modal's progress and build log go to stderr: stdout
        carries only the export line) and spawns; returns the call's id."""
        import modal
        cfg = self.app_module.config
        with contextlib.redirect_stdout(sys.stderr), modal.enable_output():
            self.app_module.app.deploy(name=cfg.app_name)
        call = modal.Function.from_name(cfg.app_name, "serve").spawn()
        return call.object_id

    def stop(self, function_call_id):
        import modal
        modal.FunctionCall.from_id(function_call_id).cancel(terminate_containers=True)

    def failure(self, function_call_id):
        """None while the call runs; otherwise why it ended."""
        import modal
        try:
            result = modal.FunctionCall.from_id(function_call_id).get(timeout=0)
        except modal.exception.TimeoutError:
            return None
        except Exception as error:  # the call's own exception, re-raised by Modal
            return f"the Modal function failed: {error}"
        return f"the Modal function ended (worker exit status {result})"


def load_app_module(app_file, settings):
    """Imports the Modal app with `settings` (MODALTENSOR_MODAL_*) in the
    environment, which its Config reads at import."""
    os.environ.update(settings)
    spec = importlib.util.spec_from_file_location("modaltensor_modal_app", app_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_from_args(args):
    """The MODALTENSOR_MODAL_* variables the options ask for."""
    named = {"GPU": args.gpu, "IDLE": args.idle, "MAX_LIFETIME": args.max_lifetime}
    return {f"MODALTENSOR_MODAL_{k}": str(v) for k, v in named.items() if v is not None}


def open_backend(args, settings):
    """(registry, launcher): the stand-ins when a stand-in file is named,
    otherwise Modal's Dict and the deployed app."""
    standin = args.standin or os.environ.get(STANDIN_ENV)
    if standin:
        registry = FileRegistry(standin)
        return registry, StandinLauncher(registry)
    app_file = Path(args.app or os.environ.get(APP_ENV) or DEFAULT_APP_FILE)
    if not app_file.is_file():
        raise SystemExit(f"modaltensor.modal: the Modal app {app_file} is not there: run from a "
                         f"checkout of the repository or name the file with --app or {APP_ENV}")
    try:
        app_module = load_app_module(app_file, settings)
    except ImportError as missing:
        raise SystemExit(f"modaltensor.modal: {missing}: install Modal's client (pip install modal) "
                         "and log in (modal token new)") from None
    except ValueError as invalid:
        raise SystemExit(f"modaltensor.modal: {invalid}") from None
    return app_module.DictRegistry(app_module.config.dict_name), ModalLauncher(app_module)


class Probe:
    """What the library said about one address: `answered` when it counted
    devices there, `refused` when the worker rejected the token."""

    def __init__(self, devices, status, message, name=""):
        self.devices = devices
        self.status = status
        self.message = message
        self.name = name

    @property
    def answered(self):
        return self.devices > 0

    @property
    def refused(self):
        return self.status == Status.UNAUTHENTICATED

    def describe(self):
        if self.answered:
            return f"yes, {self.devices} device(s): {self.name}"
        if self.refused:
            return f"it refuses MODALTENSOR_TOKEN: {self.message}"
        return f"no: {self.message}"


PROBE_CODE = """
import json
import modaltensor
from modaltensor._lib import lib
count = modaltensor.modal.device_count()
report = {"devices": count, "status": lib.mt_last_status(),
          "message": (lib.mt_last_error() or b"").decode(errors="replace")}
if count:
    report["name"] = modaltensor.modal.get_device_properties(0).name
print(json.dumps(report))
"""


def probe(address):
    """Asks the library, in a child process (it reads its configuration once
    per process), whether a worker answers at `address`."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, MODALTENSOR_WORKER=address,
               MODALTENSOR_CONNECT_TIMEOUT=str(PROBE_CONNECT_TIMEOUT_S),
               PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run([sys.executable, "-c", PROBE_CODE], env=env, capture_output=True,
                              text=True, timeout=PROBE_PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Probe(0, Status.TIMEOUT, f"the check took more than {PROBE_PROCESS_TIMEOUT_S} s")
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return Probe(0, Status.INTERNAL, f"the check failed (exit status {done.returncode}): "
                                         f"{done.stderr.strip()[-500:]}")
    return Probe(report["devices"], report["status"], report["message"], report.get("name", ""))


def default_worker_file():
    """$XDG_CACHE_HOME/modaltensor/modal-worker, else under ~/.cache."""
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache or not os.path.isabs(cache):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "modaltensor" / "modal-worker"


def write_worker_file(path, address):
    """Replaces the worker file at once (a private temporary file renamed
    over it, mode 0600): a program that reads it while it changes sees the
    old address or the new one, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(address + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_worker_file(path):
    """The address in the worker file (its first non-empty line, as the
    library reads it), or None when it is missing or empty."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    return next((line.strip() for line in lines if line.strip()), None)


def export_lines(record, worker_file):
    """What `up` prints on stdout, fit for `eval`: the worker file, which
    programs read again when they reconnect, and no MODALTENSOR_WORKER
    (which would win over the file); the address itself as a comment."""
    return (f"export MODALTENSOR_WORKER_FILE={shlex.quote(str(worker_file))}\n"
            "unset MODALTENSOR_WORKER\n"
            f"# the worker is at {record['address']}; MODALTENSOR_WORKER={record['address']} "
            "also works, but a program given it does not follow a later `up`\n"
            "# MODALTENSOR_TOKEN must hold the token of the Modal secret "
            "(MODALTENSOR_WORKER_TOKEN) where the program runs\n")


def announce(args, record):
    """Writes the worker's address to the worker file and prints the export
    lines: the end of every successful `up`."""
    write_worker_file(args.worker_file, record["address"])
    log(f"wrote {record['address']} to {args.worker_file}")
    sys.stdout.write(export_lines(record, args.worker_file))


def is_expired(record, now):
    """A published worker past its lifetime, or a start past its wait."""
    limit = record.get("expires_at") if record.get("address") else record.get("wait_until")
    return limit is not None and now >= limit


def wait_for_address(registry, launcher, call_id, deadline):
    """The record `call_id` published, once it has an address; None at the
    deadline. Raises SystemExit when the call failed."""
    while True:
        record = registry.read()
        if record and record.get("function_call_id") == call_id and record.get("address"):
            return record
        failure = launcher.failure(call_id)
        if failure:
            registry.clear()
            raise SystemExit(f"modaltensor.modal: up: {failure}")
        if time.time() >= deadline:
            return None
        time.sleep(POLL_INTERVAL_S)


def wait_until_answering(address, deadline):
    """Probes until the library counts devices at `address`, the worker
    refuses the token, or the deadline passes; returns the last Probe."""
    while True:
        result = probe(address)
        if result.answered or result.refused or time.time() >= deadline:
            return result
        time.sleep(POLL_INTERVAL_S)


def reuse_or_retire(registry, launcher, record, settings):
    """With a record already published: a worker that answers is reused;
    a start in progress is resumed; anything else is stopped and cleared.
    Returns (record to report, call id to wait for) or (None, None); raises
    SystemExit when the worker refuses the token (it is up: keep it)."""
    now = time.time()
    call_id = record.get("function_call_id")
    if not is_expired(record, now):
        if not record.get("address"):
            log(f"a start is in progress (function call {call_id}): waiting for it")
            return None, call_id
        result = probe(record["address"])
        if result.refused:
            raise SystemExit(f"modaltensor.modal: up: the worker at {record['address']} refuses "
                             f"MODALTENSOR_TOKEN ({result.message}): set it to the "
                             "MODALTENSOR_WORKER_TOKEN of the Modal secret")
        if result.answered:
            log(f"a worker is already up at {record['address']} ({result.describe()})")
            wanted = settings.get("MODALTENSOR_MODAL_GPU")
            if wanted and wanted != record.get("gpu"):
                log(f"it runs on {record.get('gpu')}, not {wanted}: `down` first to change the GPU")
            return record, None
        log(f"the published worker at {record['address']} does not answer ({result.message}): "
            "replacing it")
    else:
        log(f"the published record of function call {call_id} has expired: replacing it")
    if call_id:
        launcher.stop(call_id)
    registry.clear()
    return None, None


def command_up(args, registry, launcher, settings):
    """Reuses a worker that answers, or starts one and waits until the
    library reaches it; prints the export line. 0 when ready, 1 otherwise."""
    if not os.environ.get("MODALTENSOR_TOKEN"):
        log("up: set MODALTENSOR_TOKEN to the MODALTENSOR_WORKER_TOKEN stored in the Modal secret "
            "first: the worker refuses calls without it")
        return 1
    deadline = time.time() + args.wait
    record, call_id = (None, None)
    existing = registry.read()
    if existing:
        record, call_id = reuse_or_retire(registry, launcher, existing, settings)
    if record:
        announce(args, record)
        return 0
    if call_id is None:
        log(f"starting the worker ({settings or 'default settings'})")
        call_id = launcher.start(settings)
        registry.publish({"function_call_id": call_id, "address": None,
                          "requested_at": time.time(), "wait_until": deadline}, only_if_absent=True)
    log(f"function call {call_id}: waiting up to {args.wait} s for the worker's address")
    record = wait_for_address(registry, launcher, call_id, deadline)
    if record is None:
        log(f"up: no address was published within {args.wait} s; the function call {call_id} may "
            "still be starting: `python -m modaltensor.modal status` shows it, `... down` stops it")
        return 1
    log(f"published at {record['address']}: checking that the worker answers")
    result = wait_until_answering(record["address"], deadline)
    if result.refused:
        log(f"up: the worker at {record['address']} refuses MODALTENSOR_TOKEN ({result.message}): "
            "set it to the MODALTENSOR_WORKER_TOKEN of the Modal secret")
        return 1
    if not result.answered:
        log(f"up: the worker at {record['address']} did not answer within {args.wait} s: "
            f"{result.message}; `python -m modaltensor.modal down` stops it")
        return 1
    log(f"ready: {result.describe()}")
    announce(args, record)
    return 0


def format_time(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def command_status(args, registry, launcher, settings):
    """Prints the record and asks the worker; 0 when it answers."""
    record = registry.read()
    if not record:
        print("no worker is published (start one: python -m modaltensor.modal up)")
        return 1
    print(f"function call: {record.get('function_call_id')}")
    if not record.get("address"):
        print(f"starting since: {format_time(record['requested_at'])} (no address yet)")
        return 1
    print(f"address:       {record['address']}")
    print(f"gpu:           {record.get('gpu')}")
    print(f"started:       {format_time(record['started_at'])}")
    print(f"expires:       {format_time(record['expires_at'])}")
    print(f"idle exit:     after {record.get('idle_exit_s')} s without a session or a call")
    in_file = read_worker_file(args.worker_file)
    if in_file == record["address"]:
        file_state = "names this worker"
    else:
        file_state = f"names {in_file}" if in_file else "missing or empty: `up` writes it"
    print(f"worker file:   {args.worker_file} ({file_state})")
    result = probe(record["address"])
    print(f"answers:       {result.describe()}")
    return 0 if result.answered else 1


def command_down(args, registry, launcher, settings):
    """Cancels the published call, clears its record and removes the worker
    file (programs that read it then say that no worker is up); 0 also when
    there was nothing to stop."""
    record = registry.read()
    if args.worker_file.exists():
        args.worker_file.unlink()
        print(f"removed the worker file {args.worker_file}")
    if not record:
        print("no worker is published: nothing to stop")
        return 0
    call_id = record.get("function_call_id")
    if call_id:
        launcher.stop(call_id)
    registry.clear()
    print(f"stopped function call {call_id} (worker at {record.get('address') or 'not yet published'})")
    return 0


COMMANDS = {"up": command_up, "status": command_status, "down": command_down}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m modaltensor.modal",
        description="A modaltensor-worker on a Modal GPU (docs/modal.md).")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--gpu", help="GPU type and count: A100 (default), A100-80GB, H100, A100:2")
    parser.add_argument("--idle", type=int, metavar="SECONDS",
                        help="stop after this long without a session or call (default 600)")
    parser.add_argument("--max-lifetime", type=int, metavar="SECONDS",
                        help="stop after this long in any case (default 3600)")
    parser.add_argument("--wait", type=int, default=600, metavar="SECONDS",
                        help="up: how long to wait for the worker to answer (default 600)")
    parser.add_argument("--app", metavar="FILE", help=f"the Modal app (default {DEFAULT_APP_FILE})")
    parser.add_argument("--worker-file", type=Path, metavar="PATH", default=default_worker_file(),
                        help="up writes the worker's address here, down removes it; programs "
                             "name it in MODALTENSOR_WORKER_FILE (default %(default)s)")
    parser.add_argument("--standin", metavar="FILE",
                        help=f"use a JSON file instead of Modal (tests; also {STANDIN_ENV})")
    return parser.parse_args(argv)


def main(argv=None):
    """Entry of `python -m modaltensor.modal`; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_from_args(args)
    try:
        registry, launcher = open_backend(args, settings)
        return COMMANDS[args.command](args, registry, launcher, settings)
    except Exception as error:
        # The modal package's own errors (no token, no such app, network)
        # already say what to do: one line, not a traceback.
        if not type(error).__module__.startswith("modal."):
            raise
        print(f"modaltensor.modal {args.command}: {error}", file=sys.stderr)
        return 1
