"""A private, throw-away RabbitMQ cluster of several nodes on loopback, for the tests.

`RabbitCluster(base_dir, size=3)` runs `size` private nodes (`sims.rabbitmq_node.RabbitNode`),
each under `base_dir/node-<i>` with AMQP, distribution and CLI ports of its own and a fixed
node name (`hub-<id>-<i>@localhost`), and joins them into one cluster the way an operator
would: one Erlang cookie for all, then `rabbitmqctl stop_app`, `reset`, `join_cluster
<first node>`, `start_app` on every node but the first. Nodes on one host find each other
through one epmd, so the cluster runs its own (on a free port) and every node registers there.
`start()` returns once every node answers AMQP and the first one lists all of them as running.

A node of the cluster can be stopped (`ctl("stop_app")`), killed (`kill()`) and brought back
(`ctl("start_app")` then `wait_ready()`, or `start()`): it keeps its name, ports and data, and
rejoins the cluster by itself. `stop()` leaves no process behind (the nodes' own clean-up, then
the cluster's epmd); a watchdog kills that epmd if the owner dies without stopping it.

Like the single node, this must never touch the system's RabbitMQ, listen on anything but
127.0.0.1, nor be used by `hub run`.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sims.rabbitmq_node import (
    MARKER_VAR,
    ClusterTies,
    PortTaken,
    RabbitNode,
    RabbitNodeError,
    Served,
    free_ports,
    kill_group,
    kill_marked,
    spawn_epmd,
    spawn_watchdog,
)

_EPMD_ATTEMPTS = 3


class RabbitCluster(Served):
    """`size` private RabbitMQ nodes joined into one cluster, living under `base_dir`."""

    def __init__(self, base_dir: Path, *, size: int = 3) -> None:
        if size < 2:
            raise ValueError("a cluster has at least two nodes")
        self._base = Path(base_dir).resolve()
        self._size = size
        self._id = secrets.token_hex(3)
        self._cookie = secrets.token_hex(20)
        self._ports = free_ports(size + 1)  # AMQP ports of the nodes, then epmd's
        self._epmd: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.nodes = self._build_nodes()

    # -- public API ------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """Every node's AMQP URL, first node first (what the hub's `broker.urls` lists)."""
        return [node.url for node in self.nodes]

    def node_at(self, port: int) -> RabbitNode:
        """The node listening for AMQP on `port`."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node of the cluster listens on port {port}")

    def running_nodes(self, asking: RabbitNode | None = None) -> set[str]:
        """Names of the nodes the cluster reports running, asked of `asking` (else the first
        node that answers)."""
        for node in [asking] if asking else self.nodes:
            try:
                status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
            except (RabbitNodeError, ValueError):
                continue
            return set(status.get("running_nodes", []))
        return set()

    def start(self, timeout_s: float = 240.0) -> None:
        """Start every node, join them, and return once the cluster runs them all."""
        deadline = time.monotonic() + timeout_s
        self._base.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            kill_marked(self._marker, 10.0)  # an epmd left by a killed run in this directory
            self._watchdog = spawn_watchdog(self._marker)
            self._start_epmd(deadline)
            with ThreadPoolExecutor(self._size) as pool:
                starts = [
                    pool.submit(node.start, max(deadline - time.monotonic(), 1.0))
                    for node in self.nodes
                ]
                for started in starts:
                    started.result()
            for node in self.nodes[1:]:
                self._join(node, deadline)
            self._wait_formed(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node, then the cluster's epmd. Safe to call repeatedly."""
        with ThreadPoolExecutor(self._size) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))
        epmd, self._epmd = self._epmd, None
        if epmd is not None:
            kill_group(epmd)
        kill_marked(self._marker, 5.0)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        atexit.unregister(self.stop)

    # -- start -----------------------------------------------------------------------------

    def _build_nodes(self) -> list[RabbitNode]:
        ties = ClusterTies(
            epmd_port=self._ports[-1], cookie=self._cookie, cluster_name=f"hub-{self._id}"
        )
        return [
            RabbitNode(
                self._base / f"node-{i}",
                port=port,
                nodename=f"hub-{self._id}-{i}@localhost",
                ties=ties,
            )
            for i, port in enumerate(self._ports[:-1], start=1)
        ]

    def _start_epmd(self, deadline: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env[MARKER_VAR] = str(self._base)
        for attempt in range(1, _EPMD_ATTEMPTS + 1):
            try:
                self._epmd = spawn_epmd(self._ports[-1], env, self._base / "epmd.out", deadline)
                return
            except PortTaken:
                if attempt == _EPMD_ATTEMPTS:
                    raise RabbitNodeError("no free port for the cluster's epmd") from None
                # The nodes are not started yet: they take the new epmd port with them.
                self._ports = [*self._ports[:-1], free_ports(1)[0]]
                self.nodes = self._build_nodes()
            except TimeoutError as exc:
                raise RabbitNodeError(str(exc)) from None

    def _join(self, node: RabbitNode, deadline: float) -> None:
        first = self.nodes[0].nodename
        for command in (("stop_app",), ("reset",), ("join_cluster", first), ("start_app",)):
            node.ctl(*command, timeout_s=max(deadline - time.monotonic(), 5.0))
        node.wait_ready(max(deadline - time.monotonic(), 1.0))

    def _wait_formed(self, deadline: float) -> None:
        names = {node.nodename for node in self.nodes}
        while (running := self.running_nodes(self.nodes[0])) != names:
            if time.monotonic() > deadline:
                raise RabbitNodeError(f"the cluster runs {sorted(running)}, not {sorted(names)}")
            time.sleep(0.2)

    @property
    def _marker(self) -> bytes:
        return f"{MARKER_VAR}={self._base}".encode()
