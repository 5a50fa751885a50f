"""Separate "hosts" on one machine for the scale-out test: a network namespace per host where the machine
allows it (root with CAP_NET_ADMIN and iproute2), else separate loopback addresses.

Namespaces: a bridge in the root namespace holds the shared services' address (server, S3); each host is a
namespace joined to the bridge by a veth pair, with its own loopback — a host reaches the server and the store
only by their configured address, never by a 127.0.0.1 it happens to share with them.
Fallback: the shared services listen on 127.0.0.2 (every host reaches them there) and the hosts keep 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(("netns", "exec", ns, "ip") if ns else ()), *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Hosts:
    """`service_addr`: where the shared services listen; `prefix(name)`: the command prefix that runs a process
    on host `name`; `kind`: "netns" or "loopback"."""

    kind: str
    service_addr: str
    namespaces: dict[str, str] = field(default_factory=dict)
    _links: list[str] = field(default_factory=list)

    def prefix(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[name]] if name in self.namespaces else []

    def close(self) -> None:
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        for link in self._links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)


def make_hosts(names: list[str]) -> Hosts:
    """Network namespaces for `names` when possible (STUDIO_TEST_NETNS=0 forces the loopback fallback)."""
    if os.environ.get("STUDIO_TEST_NETNS", "1") != "0" and shutil.which("ip") and os.geteuid() == 0:
        tag = f"st{os.getpid() % 100000}"
        net = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        hosts = Hosts("netns", f"{net}.1")
        try:
            bridge = f"{tag}br"
            _ip("link", "add", "name", bridge, "type", "bridge")
            hosts._links.append(bridge)
            _ip("addr", "add", f"{net}.1/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
            for i, name in enumerate(names):
                ns, outer, inner = f"{tag}-{i}", f"{tag}h{i}", f"{tag}n{i}"
                _ip("netns", "add", ns)
                hosts.namespaces[name] = ns
                _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                hosts._links.append(outer)
                _ip("link", "set", outer, "master", bridge)
                _ip("link", "set", outer, "up")
                _ip("link", "set", inner, "netns", ns)
                _ip("addr", "add", f"{net}.{10 + i}/24", "dev", inner, ns=ns)
                _ip("link", "set", inner, "up", ns=ns)
                _ip("link", "set", "lo", "up", ns=ns)
            return hosts
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
            hosts.close()  # no CAP_NET_ADMIN (a container) or no bridge support: fall back
    return Hosts("loopback", "127.0.0.2")
