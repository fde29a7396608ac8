"""A private, throw-away PostgreSQL server for the test session.

`PostgresNode(base_dir)` runs the locally installed PostgreSQL (Debian's `postgresql`
package: `/usr/lib/postgresql/<version>/bin`) on a cluster of its own: `initdb` in a folder,
the server on a free loopback port with its unix socket in that same folder, a role `hub`
with a random password (SCRAM), the C locale and UTF-8 (as the hub's store requires). `start()`
returns once the server accepts connections; `create_database()` gives each test a database
of its own; `stop()` leaves no process behind. Safety nets as for the RabbitMQ node: `stop()`
runs at interpreter exit, and a watchdog kills the server if its owner dies without stopping
it.

PostgreSQL refuses to run as root. Run by root, the node runs the server as the `postgres`
user (`HUB_TEST_POSTGRES_USER` names another) in a folder of its own under the system's
temporary directory (`base_dir` may sit under a folder only root can enter), owned by that
user and removed at `stop()`.

For speed the cluster runs without fsync (`durable=False`): a crash of the machine loses it,
which is what a test cluster is for. This module must never touch the system's PostgreSQL
(its clusters, data, default port or socket folder), listen on anything but 127.0.0.1, nor be
used by `hub run`: production stores are configured by URL.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sims.rabbitmq_node import Served, find_free_port, kill_marked, spawn_watchdog

LOOPBACK = "127.0.0.1"
BIN_VAR = "HUB_POSTGRES_BIN"  # a folder holding initdb and postgres, if not Debian's
USER_VAR = "HUB_TEST_POSTGRES_USER"  # who runs the server when the tests run as root
MARKER_VAR = "HUB_POSTGRES_NODE_DIR"
ROLE = "hub"
_POLL_S = 0.05


class PostgresNodeError(RuntimeError):
    """The server could not be started; the message carries the tail of its log."""


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs: `HUB_POSTGRES_BIN`, else the newest
    version Debian installed."""
    if found := os.environ.get(BIN_VAR):
        return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresNodeError(
            "PostgreSQL is not installed (/usr/lib/postgresql): run `make setup`"
        )
    return versions[-1].parent


class PostgresNode(Served):
    """One private PostgreSQL server with its cluster under `base_dir`."""

    def __init__(self, base_dir: Path, *, durable: bool = False) -> None:
        self._durable = durable
        self._user = _server_user()
        if self._user is None:
            self._base = Path(base_dir).resolve()
            self._owned_base = False
        else:
            # Root's pytest folders are closed to other users: a folder of the server's own.
            self._base = Path(tempfile.mkdtemp(prefix="hub-postgres-"))
            os.chown(self._base, self._user.pw_uid, self._user.pw_gid)
            self._owned_base = True
        self._password = secrets.token_urlsafe(18)
        self._port = find_free_port()
        self._server: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._marker = f"{MARKER_VAR}={self._base}".encode()

    @property
    def port(self) -> int:
        return self._port

    @property
    def socket_dir(self) -> Path:
        return self._base

    def url(self, database: str = "postgres") -> str:
        """The URL of one of the node's databases, password included (a test secret)."""
        return f"postgresql://{ROLE}:{quote(self._password)}@{LOOPBACK}:{self._port}/{database}"

    def is_running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    @property
    def pid(self) -> int:
        """The postmaster's process id (its children are the server's other processes)."""
        if self._server is None:
            raise PostgresNodeError("the server is not running")
        return self._server.pid

    def start(self, timeout_s: float = 60.0) -> None:
        """Make the cluster (the first time) and start the server; return once it answers."""
        if self.is_running():
            return
        atexit.register(self.stop)
        try:
            if not (self._data / "PG_VERSION").exists():
                self._initdb()
            if self._watchdog is None:
                self._watchdog = spawn_watchdog(self._marker)
            self._server = self._spawn()
            self._wait_ready(time.monotonic() + timeout_s)
        except BaseException:
            self.stop()
            raise

    def create_database(self, name: str) -> str:
        """A new, empty database (from `template0`, C locale, UTF-8); its URL."""
        create_database(self._socket_url(), name, password=self._password)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        drop_database(self._socket_url(), name, password=self._password)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; `start()` brings it back with its data."""
        server, self._server = self._server, None
        if server is not None:
            with suppress(ProcessLookupError):
                server.kill()
            server.wait()
        kill_marked(self._marker, 10.0)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server (fast shutdown), kill what is left, remove a folder the node made.
        Safe to call repeatedly."""
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown: ends sessions, then exits
            with suppress(subprocess.TimeoutExpired):
                server.wait(timeout_s)
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        kill_marked(self._marker, 10.0)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        if self._owned_base:
            shutil.rmtree(self._base, ignore_errors=True)
            self._owned_base = False
        atexit.unregister(self.stop)

    # -- internals ---------------------------------------------------------------------------

    @property
    def _data(self) -> Path:
        return self._base / "data"

    @property
    def _log(self) -> Path:
        return self._base / "server.log"

    def _run(self, program: str, *args: str, timeout_s: float = 120.0) -> None:
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own programs, no shell
            [str(postgres_bin() / program), *args],
            env=self._env(),
            cwd=self._base,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )
        if done.returncode != 0:
            why = (done.stderr or done.stdout).decode(errors="replace")[-800:]
            raise PostgresNodeError(f"{program} failed: {why}")

    def _initdb(self) -> None:
        pwfile = self._base / "pwfile"
        pwfile.write_text(self._password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self._data),
                "-U",
                ROLE,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                *([] if self._durable else ["--no-sync"]),
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self._port),
            "unix_socket_directories": str(self._base),
            "max_connections": "200",
            "shared_buffers": "32MB",
        }
        if not self._durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
        log = self._log.open("ab")
        try:
            return subprocess.Popen(  # noqa: S603 - PostgreSQL's own server, no shell
                [str(postgres_bin() / "postgres"), "-D", str(self._data), *args],
                env=self._env(),
                cwd=self._base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )
        finally:
            log.close()

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._server is None or self._server.poll() is not None:
                raise PostgresNodeError(f"the server exited:\n{self._log_tail()}")
            if (self._base / f".s.PGSQL.{self._port}").exists() and self._answers():
                return
            time.sleep(_POLL_S)
        raise PostgresNodeError(f"the server did not start in time:\n{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            self._psql("SELECT 1")
        except PostgresNodeError:
            return False
        return True

    def _socket_url(self) -> str:
        return f"postgresql://{ROLE}@/postgres?host={quote(str(self._base))}&port={self._port}"

    def _psql(self, sql: str) -> None:
        """One statement through `psql` on the node's socket."""
        psql(self._socket_url(), sql, password=self._password)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        key, _, value = self._marker.decode().partition("=")
        env[key] = value
        env["LC_ALL"] = "C"
        return env

    @property
    def _uid(self) -> int | None:
        return self._user.pw_uid if self._user else None

    @property
    def _gid(self) -> int | None:
        return self._user.pw_gid if self._user else None

    @property
    def _groups(self) -> list[int] | None:
        return [] if self._user else None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self._log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def create_database(server_url: str, name: str, *, password: str | None = None) -> str:
    """A new, empty database on the server `server_url` names (from `template0`, C locale,
    UTF-8, as the hub's store needs); its URL. `name` is a plain identifier."""
    if not name.isidentifier():
        raise ValueError(f"not a plain database name: {name!r}")
    sql = f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
    psql(server_url, sql, password=password)
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str, *, password: str | None = None) -> None:
    """Drop a database `create_database` made (its sessions ended first)."""
    if not name.isidentifier():
        raise ValueError(f"not a plain database name: {name!r}")
    psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', password=password)


def psql(url: str, sql: str, *, password: str | None = None) -> None:
    """One statement through PostgreSQL's `psql` client (no Python driver needed). A password
    in `url` travels in psql's environment, not on its command line (which `ps` shows)."""
    parts = urlsplit(url)
    if parts.password is not None:
        password = unquote(parts.password)
        netloc = parts.netloc.rsplit("@", 1)[1]
        url = urlunsplit(parts._replace(netloc=f"{unquote(parts.username or '')}@{netloc}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    done = subprocess.run(  # noqa: S603 - PostgreSQL's own client, no shell
        [str(postgres_bin() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        env=env,
        capture_output=True,
        timeout=60.0,
        check=False,
    )
    if done.returncode != 0:
        raise PostgresNodeError(f"psql failed: {done.stderr.decode(errors='replace')[-500:]}")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (this process's user) unless this process is root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(USER_VAR, "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresNodeError(
            f"running as root, the test PostgreSQL needs a user to run as: {name!r} does not "
            f"exist (install `postgresql`, or set {USER_VAR})"
        ) from None
