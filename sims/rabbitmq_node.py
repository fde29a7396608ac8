"""A private, throw-away RabbitMQ node for the test session and `hub demo`.

`RabbitNode(base_dir)` runs the locally installed RabbitMQ (`/usr/lib/rabbitmq/bin`) with
everything under `base_dir`: configuration, enabled-plugins file (none), mnesia and quorum
data, logs, crash dumps and HOME (the Erlang cookie). It picks free loopback ports for AMQP,
Erlang distribution and a private epmd, so several nodes (tests and a demo) can run side by
side. `start()` returns once the node answers an AMQP handshake, which RabbitMQ only does
after every boot step has run; `stop()` leaves no process behind (beam.smp, epmd,
erl_child_setup, inet_gethost ...). Safety nets: `stop()` runs at interpreter exit, a
watchdog process kills the node if its owner dies without stopping it, and `start()` clears
orphans left in the same `base_dir`. Linux only (process groups, /proc).

Given `tls` (a CA bundle, the node's certificate and key, PEM files), the node also listens for
AMQP over TLS (`tls_port`, `tls_url`) and admits there only clients presenting a certificate
signed by that CA (`verify_peer`, `fail_if_no_peer_cert`), as a production broker for the
hub should.

Given `ties` (`ClusterTies`), the node is meant to join others (`sims.rabbitmq_cluster`): it
registers with the cluster's epmd instead of starting its own (nodes on one host find each
other through one epmd), carries the cluster's Erlang cookie and its cluster name.

This module must never touch the system's RabbitMQ (its configuration, data, default ports or
epmd), listen on anything but 127.0.0.1, nor be used by `hub run`: production brokers are
configured by URL.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
LOOPBACK = "127.0.0.1"
# Every process the node spawns inherits this variable; it is how stop() finds processes
# that left our process groups or were orphaned by a killed parent.
MARKER_VAR = "HUB_RABBITMQ_NODE_DIR"

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_CONNECTION_START = b"\x00\x0a\x00\x0a"
_POLL_S = 0.1
_START_ATTEMPTS = 3

# Small footprint: two schedulers whatever the machine; Erlang distribution on loopback only.
_ERL_ARGS = "+S 2:2 -kernel inet_dist_use_interface {127,0,0,1}"


class RabbitNodeError(RuntimeError):
    """The node could not be started; the message carries the tail of its logs."""


class PortTaken(Exception):
    """A port picked as free was taken before the node bound it: pick others and retry."""


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    # All sockets stay bound until every port is read, so the ports are distinct.
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass(frozen=True)
class NodeTls:
    """PEM files of the node's TLS listener: the CA its clients' certificates are signed by,
    and the node's own certificate and key."""

    cacertfile: Path
    certfile: Path
    keyfile: Path


@dataclass(frozen=True)
class ClusterTies:
    """What the nodes of one cluster share: the epmd they register with (run by the cluster),
    the Erlang cookie that lets them (and `rabbitmqctl`) talk, and the cluster's name, which
    each node announces in its AMQP handshake (`start()` waits for it)."""

    epmd_port: int
    cookie: str
    cluster_name: str


@dataclass(frozen=True)
class _Ports:
    amqp: int
    dist: int
    epmd: int
    tls: int

    @classmethod
    def pick(cls, amqp: int | None) -> _Ports:
        # A fixed AMQP port that is free now could also come back from the kernel here.
        free = [p for p in free_ports(5) if p != amqp]
        return cls(amqp=amqp or free[0], dist=free[1], epmd=free[2], tls=free[3])


class Served:
    """A server process the tests start and stop: `with Node(...) as node:` starts it and
    stops it whatever happens (RabbitMQ nodes, a cluster, PostgreSQL)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RabbitNode(Served):
    """One private RabbitMQ node living under `base_dir` (one node per directory)."""

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        nodename: str | None = None,
        tls: NodeTls | None = None,
        ties: ClusterTies | None = None,
    ) -> None:
        self._base = Path(base_dir).resolve()
        self._tls = tls
        self._ties = ties
        self._fixed_port = port
        self._fixed_nodename = nodename
        self._ports = self._pick_ports()
        self._cluster_name = ties.cluster_name if ties else f"hub-node-{secrets.token_hex(6)}"
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self._ready = False

    # -- public API ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._ports.amqp

    @property
    def tls_port(self) -> int | None:
        """The AMQP-over-TLS port, when the node was given `tls`."""
        return self._ports.tls if self._tls is not None else None

    @property
    def tls_url(self) -> str | None:
        port = self.tls_port
        return None if port is None else f"amqps://guest:guest@{LOOPBACK}:{port}/"

    @property
    def nodename(self) -> str:
        return self._fixed_nodename or f"hub-{self._ports.amqp}@localhost"

    @property
    def base_dir(self) -> Path:
        return self._base

    @property
    def log_dir(self) -> Path:
        return self._base / "log"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self._ports.amqp}/"

    def is_running(self) -> bool:
        return self._ready and self._server is not None and self._server.poll() is None

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the node; return once it is fully booted and accepts AMQP connections."""
        if self.is_running():
            return
        deadline = time.monotonic() + timeout_s
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise RabbitNodeError(f"RabbitMQ is not installed in {RABBITMQ_BIN}: run `make setup`")
        if self._fixed_port is not None and _accepts(self._fixed_port):
            raise RabbitNodeError(f"port {self._fixed_port} is already in use on {LOOPBACK}")
        self._acquire_lock()
        atexit.register(self.stop)
        try:
            self._halt(10.0)  # what is left of an earlier start whose node died
            if self._watchdog is None:
                self._watchdog = spawn_watchdog(self._marker)
            self._start_with_retries(deadline)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the running node answers AMQP (after `ctl("start_app")`, say)."""
        server = self._server
        if server is None:
            raise RabbitNodeError(f"RabbitMQ node {self.nodename} is not started")
        self._wait_ready(server, time.monotonic() + timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the node gracefully, then kill whatever is left. Safe to call repeatedly."""
        self._halt(timeout_s)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        atexit.unregister(self.stop)

    def ctl(self, *args: str, timeout_s: float = 120.0) -> str:
        """Run `rabbitmqctl` against this node (`stop_app`, `start_app`, `list_queues`, ...)
        and return what it printed; raises `RabbitNodeError` when it fails."""
        try:
            done = subprocess.run(  # noqa: S603 - fixed executable, no shell
                [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.nodename, "-q", *args],
                env=self._env(),
                cwd=self._base,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RabbitNodeError(f"rabbitmqctl {' '.join(args)} did not finish in time") from None
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace")[-500:]
            raise RabbitNodeError(f"rabbitmqctl {' '.join(args)} failed: {why}")
        return done.stdout.decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the node, as a crash or an OOM kill would; `start()` brings it back on the
        same port with its data (durable queues and their messages)."""
        self._ready = False
        server, self._server = self._server, None
        epmd, self._epmd = self._epmd, None
        for proc in (server, epmd):
            if proc is not None:
                kill_group(proc)
        kill_marked(self._marker, 10.0)

    def freeze(self) -> None:
        """SIGSTOP the node: its sockets stay open and nothing answers (a hung host); `thaw`
        lets it go on."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        server = self._server
        if server is None:
            raise RabbitNodeError(f"RabbitMQ node {self.nodename} is not started")
        os.killpg(server.pid, sig)

    # -- start -----------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        self._base.mkdir(parents=True, exist_ok=True)
        if self._lock is not None:
            return
        lock = (self._base / ".lock").open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise RabbitNodeError(f"{self._base} is used by another running RabbitNode") from None
        self._lock = lock
        # Holding the lock, anything still carrying our marker is an orphan of a killed run.
        kill_marked(self._marker, 10.0)

    def _start_with_retries(self, deadline: float) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start_once(deadline)
                return
            except PortTaken as exc:
                self._halt(10.0)
                if attempt == _START_ATTEMPTS:
                    raise RabbitNodeError(self._failure(str(exc))) from None
                self._ports = self._pick_ports()

    def _pick_ports(self) -> _Ports:
        ports = _Ports.pick(self._fixed_port)
        if self._ties is None:
            return ports
        return _Ports(amqp=ports.amqp, dist=ports.dist, epmd=self._ties.epmd_port, tls=ports.tls)

    def _start_once(self, deadline: float) -> None:
        self._prepare_dirs()
        env = self._env()
        if self._ties is None:  # a cluster's node registers with the cluster's epmd
            self._epmd = self._spawn_epmd(env, deadline)
        with (self.log_dir / "server.out").open("wb") as out:
            self._server = subprocess.Popen(  # noqa: S603 - fixed executable, no shell
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=env,
                cwd=self._base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(self._server, deadline)
        self._ready = True

    def _prepare_dirs(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self._base / sub).mkdir(exist_ok=True)
        if self._ties is not None:
            write_cookie(self._base / "home", self._ties.cookie)
        self._prune_other_nodes()
        (self.log_dir / "rabbit.log").write_bytes(b"")  # the log of this start only
        (self._base / "enabled_plugins").write_text("[].\n")
        (self._base / "rabbitmq-env.conf").write_text("")
        (self._base / "rabbitmq.conf").write_text(
            "# Written by sims.rabbitmq_node at each start: a private, throw-away node.\n"
            f"cluster_name = {self._cluster_name}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "raft.wal_max_size_bytes = 16777216\n"
            "log.console = false\n"
            "log.file.level = info\n" + self._tls_config()
        )

    def _tls_config(self) -> str:
        tls = self._tls
        if tls is None:
            return ""
        return (
            f"listeners.ssl.default = {LOOPBACK}:{self._ports.tls}\n"
            f"ssl_options.cacertfile = {Path(tls.cacertfile).resolve()}\n"
            f"ssl_options.certfile = {Path(tls.certfile).resolve()}\n"
            f"ssl_options.keyfile = {Path(tls.keyfile).resolve()}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
        )

    def _prune_other_nodes(self) -> None:
        # A node's data is keyed by its name, which follows its port: data left by an earlier
        # node in this directory can never be read again, only accumulate.
        for entry in (self._base / "mnesia").iterdir():
            if entry.name == self.nodename or entry.name.startswith(f"{self.nodename}-"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _env(self) -> dict[str, str]:
        # The caller's own RabbitMQ/Erlang settings must not leak into a private node.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        base, log = self._base, self.log_dir
        env.update(
            {
                MARKER_VAR: str(base),
                "HOME": str(base / "home"),
                "RABBITMQ_NODENAME": self.nodename,
                "RABBITMQ_USE_LONGNAME": "false",
                "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
                "RABBITMQ_NODE_PORT": str(self._ports.amqp),
                "RABBITMQ_DIST_PORT": str(self._ports.dist),
                "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
                "RABBITMQ_LOG_BASE": str(log),
                "RABBITMQ_LOGS": str(log / "rabbit.log"),
                "RABBITMQ_MAX_NUMBER_OF_PROCESSES": "131072",
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": _ERL_ARGS,
                "ERL_EPMD_PORT": str(self._ports.epmd),
                "ERL_EPMD_ADDRESS": LOOPBACK,
                "ERL_CRASH_DUMP": str(log / "erl_crash.dump"),
            }
        )
        return env

    def _spawn_epmd(self, env: dict[str, str], deadline: float) -> subprocess.Popen[bytes]:
        # Our own foreground epmd, started before the node, so the node never daemonises one
        # outside our reach, and a port clash shows up here rather than as a shared epmd.
        try:
            return spawn_epmd(self._ports.epmd, env, self.log_dir / "epmd.out", deadline)
        except TimeoutError:
            raise RabbitNodeError(self._failure("epmd did not start in time")) from None

    def _wait_ready(self, server: subprocess.Popen[bytes], deadline: float) -> None:
        while not self._answers_amqp():
            if server.poll() is not None:
                reason = f"exited with status {server.returncode} while starting"
                if "eaddrinuse" in self._log_text().lower():
                    raise PortTaken(reason)
                raise RabbitNodeError(self._failure(reason))
            if time.monotonic() > deadline:
                raise RabbitNodeError(self._failure("did not become ready in time"))
            time.sleep(_POLL_S)

    def _answers_amqp(self) -> bool:
        """Whether *this* node (told apart by its cluster name) sends AMQP Connection.Start."""
        payload = _connection_start(self._ports.amqp)
        if payload is None or self._cluster_name.encode() not in payload:
            return False
        return self._tls is None or _accepts(self._ports.tls)  # both listeners open

    # -- stop ------------------------------------------------------------------------------

    def _halt(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        self._ready = False
        server, self._server = self._server, None
        epmd, self._epmd = self._epmd, None
        if server is not None:
            # SIGTERM to the start script: it relays to beam, which shuts RabbitMQ down cleanly.
            _terminate(server, max(deadline - time.monotonic() - 5.0, 1.0))
        for proc in (server, epmd):
            if proc is not None:
                kill_group(proc)
        kill_marked(self._marker, max(deadline - time.monotonic(), 2.0))

    @property
    def _marker(self) -> bytes:
        return f"{MARKER_VAR}={self._base}".encode()

    # -- diagnostics -----------------------------------------------------------------------

    def _log_text(self) -> str:
        return "\n".join(_tail(self.log_dir / name) for name in ("rabbit.log", "server.out"))

    def _failure(self, reason: str) -> str:
        parts = [f"RabbitMQ node {self.nodename} {reason}; logs in {self.log_dir}"]
        for name in ("rabbit.log", "server.out", "epmd.out"):
            text = _excerpt(_tail(self.log_dir / name, 400))
            if text:
                parts.append(f"--- {name} ---\n{text}")
        return "\n".join(parts)


# -- helpers -----------------------------------------------------------------------------


def spawn_epmd(
    port: int, env: dict[str, str], out_path: Path, deadline: float
) -> subprocess.Popen[bytes]:
    """A foreground epmd on 127.0.0.1:`port`, once it answers; raises `PortTaken` when the
    port is someone else's, `TimeoutError` past `deadline` (a `time.monotonic()` instant)."""
    epmd = shutil.which("epmd", path=env.get("PATH")) or "/usr/bin/epmd"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed executable, no shell
            [epmd, "-port", str(port), "-address", LOOPBACK],
            env=env,
            cwd=out_path.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while not _epmd_answers(port):
        if proc.poll() is not None:
            raise PortTaken(f"epmd could not listen on port {port}")
        if time.monotonic() > deadline:
            kill_group(proc)
            raise TimeoutError(f"epmd did not answer on port {port} in time")
        time.sleep(0.02)
    if proc.poll() is not None:
        raise PortTaken(f"another process listens on epmd port {port}")
    return proc


def write_cookie(home: Path, cookie: str) -> None:
    """The Erlang cookie in `home`, readable by its owner only (Erlang refuses it otherwise)."""
    path = home / ".erlang.cookie"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(cookie)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def _epmd_answers(port: int) -> bool:
    # A NAMES request rather than a bare connect, which epmd would log as a partial packet.
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            sock.sendall(b"\x00\x01n")
            return int.from_bytes(_recv_exactly(sock, 4), "big") == port
    except OSError:
        return False


def _connection_start(port: int) -> bytes | None:
    """The payload of the broker's first AMQP frame, or None if it sent none (yet)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2.0) as sock:
            sock.sendall(_AMQP_HEADER)
            header = _recv_exactly(sock, 7)
            size = int.from_bytes(header[3:7], "big")
            if header[0] != 1 or size > 65536:
                return None
            payload = _recv_exactly(sock, size)
    except OSError:
        return None
    return payload if payload.startswith(_CONNECTION_START) else None


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed during the AMQP handshake")
        data += chunk
    return data


def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The process was started as a session leader, so its pid is its process group's id.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(5.0)


# Runs beside the node, reading a pipe only this process holds: end of file means the owner is
# gone, and if it died without stop() (SIGKILL, os._exit on a test time-out) the node would
# otherwise live on as an orphan. atexit cannot cover those deaths; this does.
_WATCHDOG = """
import os, signal, sys
sys.stdin.buffer.read()
marker = os.fsencode(sys.argv[1])
for _ in range(3):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\\0"):
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
"""


def spawn_watchdog(marker: bytes) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-I", "-S", "-c", _WATCHDOG, os.fsdecode(marker)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _marked_pids(marker: bytes) -> list[int]:
    """Live processes whose environment carries `marker` (zombies expose no environment)."""
    found: list[int] = []
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return found
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_marked(marker: bytes, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pids := _marked_pids(marker):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _excerpt(text: str, lines: int = 40) -> str:
    """From the first error on (the cause, not the shutdown that follows it), else the end."""
    all_lines = text.splitlines()
    first_error = next((i for i, line in enumerate(all_lines) if "[error]" in line), None)
    if first_error is None:
        return "\n".join(all_lines[-lines:])
    return "\n".join(all_lines[first_error : first_error + lines])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - 65536, 0))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
