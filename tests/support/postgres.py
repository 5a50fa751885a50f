"""A throw-away PostgreSQL cluster in a temp folder (Debian's binaries), on 127.0.0.1, for one test.

initdb and pg_ctl refuse to run as root, so when the tests run as root the cluster belongs to the `postgres`
user (`runuser -u postgres`), which Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support.env import free_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Postgres:
    data: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"

    def stop(self) -> None:
        subprocess.run(_as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """A fresh cluster in its own temp folder (not under pytest's tmp_path, which the postgres user cannot
    enter); `stop()` removes it."""
    pg = postgres_bin()
    if pg is None:
        raise RuntimeError("PostgreSQL is not installed: `apt-get install -y postgresql` (scripts/setup.sh does)")
    root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
    data, sock = root / "pgdata", root / "pgsock"
    sock.mkdir()
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_owner([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(_as_owner([str(pg / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(data / "log.txt"), "-w",
                              "start"]), check=True, capture_output=True, timeout=120)
    for _ in range(50):
        r = subprocess.run([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"createdb failed: {r.stderr}")
    return Postgres(data, port, pg)
