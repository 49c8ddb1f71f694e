"""A throwaway PostgreSQL cluster for the Django tests: initdb in a temp dir, one loopback port.

PostgreSQL refuses to run as root, so as root the cluster is made and run as the ``postgres``
OS user (Debian's package creates it) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from tests.redis_server import free_port


def _bindir() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(versions[-1]) if versions else None


class PostgresServer:
    """``start()`` a cluster with a database ``test`` that user ``postgres`` may use."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = "postgres"
        self.dbname = "test"
        self.dir = ""
        self.bindir = _bindir()

    @staticmethod
    def available() -> bool:
        return _bindir() is not None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        self.dir = tempfile.mkdtemp(prefix="cd-pg-")
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", self.user, "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", data, "-o", options, "-l", f"{self.dir}/log", "-w", "start")
        for _ in range(50):
            try:
                self.psql(f"CREATE DATABASE {self.dbname}", db="postgres")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        return self

    def psql(self, sql: str, db: str | None = None) -> str:
        done = self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
            "-d", db or self.dbname, "-At", "-c", sql,
        )  # fmt: skip
        return done.stdout.strip()

    def env(self) -> dict[str, str]:
        return {
            "TEST_DB_ENGINE": "postgresql",
            "TEST_DB_NAME": self.dbname,
            "TEST_DB_USER": self.user,
            "TEST_DB_HOST": "127.0.0.1",
            "TEST_DB_PORT": str(self.port),
        }

    def stop(self) -> None:
        if not self.dir:
            return
        data = os.path.join(self.dir, "data")
        try:
            self._run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = ""
