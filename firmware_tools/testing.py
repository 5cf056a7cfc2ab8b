"""A throwaway OpenSSH server on 127.0.0.1 for the deploy tests and the fault benchmark.

It runs ``sshd -D -e -f <temp config>`` as the current user with a fresh host key and client key, key-only
login for this user, an ``internal-sftp`` subsystem (for scp), and ``AcceptEnv LPR_DEPLOY_CRASH_AT`` so a test
can inject a crash into the device agent through ``-o SendEnv``.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware_tools.remote import Target
from firmware_tools.slots import CRASH_ENV

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def find_sshd() -> str | None:
    """The sshd binary, or None."""
    found = shutil.which("sshd")
    return found or next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def missing_tools() -> str | None:
    """Why a local SSH server cannot run here (None if it can)."""
    if find_sshd() is None:
        return "needs the OpenSSH server: apt-get install openssh-server"
    for tool in ("ssh", "scp", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"needs the OpenSSH client tool {tool}: apt-get install openssh-client"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSshd:
    """A real sshd on 127.0.0.1 for the current user, in ``workdir``; use as a context manager.

    Args:
        workdir: a fresh directory for keys, config and logs.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.user = getpass.getuser()
        self.client_key = workdir / "client_key"
        self.known_hosts = workdir / "known_hosts"
        self.log = workdir / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def target(self, root: Path | str, python: str, **kw: object) -> Target:
        """A deploy :class:`Target` for this server (strict host-key check against its known-hosts file)."""
        return Target(
            f"{self.user}@127.0.0.1",
            root=str(root),
            port=self.port,
            identity=self.client_key,
            known_hosts=self.known_hosts,
            python=python,
            **kw,  # type: ignore[arg-type]
        )

    def start(self, timeout: float = 20.0) -> LocalSshd:
        sshd = find_sshd()
        if sshd is None:
            raise RuntimeError("sshd is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = self.workdir / "host_ed25519"
        for key in (host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lpr-test", "-f", str(key)],
                check=True,
                capture_output=True,
            )
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        self.port = _free_port()
        host_pub = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        config = self.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    f"AllowUsers {self.user}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    f"AcceptEnv {CRASH_ENV}",
                    "MaxStartups 100",
                    "MaxSessions 100",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir, as systemd makes it
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child for its whole life
        self._proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited ({self._proc.returncode}): {self.log.read_text()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LocalSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def active_health(root: str | Path) -> tuple[bool, str]:
    """Does the device root's active slot verify and read a gray crop? Returns (ok, version or the reason).

    This is the "not bricked" check of the fault tests: it runs in this process, independently of the agent,
    with the device's trusted key if it has one.
    """
    from firmware_tools.device_agent import check_slot
    from firmware_tools.slots import SlotStore
    from sdk.errors import LprError

    store = SlotStore(root)
    if store.active() is None:
        return False, f"no active slot under {root}"
    try:
        return True, check_slot(store, store.current)["version"]
    except (LprError, OSError) as e:
        return False, str(e)


def repack(
    src: Path,
    out: Path,
    edit: Callable[[dict[str, bytes]], None],
    rehash: bool = False,
    sign_key: Path | None = None,
    keep_signature: bool = True,
) -> Path:
    """Write a changed copy of a package, for tests of what a device refuses.

    Args:
        src: a package.
        out: the changed package.
        edit: changes the files dict (path -> bytes) in place.
        rehash: rewrite package.json for the edited files (as a careless or hostile packer would), keeping its
            version; otherwise package.json is left as it was.
        sign_key: sign the result with this key (after ``rehash``).
        keep_signature: keep the original package.sig when not re-signing.
    """
    import json

    from firmware_tools.keys import load_private_key, sign_manifest
    from firmware_tools.packager import manifest_bytes, write_archive
    from sdk.package import PACKAGE_MANIFEST, SIGNATURE_NAME, read_package_files

    files = read_package_files(src)
    edit(files)
    if rehash:
        old = json.loads(files[PACKAGE_MANIFEST])
        bundle_files = {n: d for n, d in files.items() if n not in (PACKAGE_MANIFEST, SIGNATURE_NAME)}
        files[PACKAGE_MANIFEST] = manifest_bytes(bundle_files, old["bundles"], old["version"], old["created"])
    if sign_key is not None:
        files[SIGNATURE_NAME] = sign_manifest(files[PACKAGE_MANIFEST], load_private_key(sign_key))
    elif not keep_signature:
        files.pop(SIGNATURE_NAME, None)
    return write_archive(files, out)


def redate(src: Path, out: Path, version: str, created: str, sign_key: Path | None) -> Path:
    """A copy of a package with another version and creation time in package.json, signed with ``sign_key``
    (None: unsigned), for tests of the device's version order."""
    import json

    def edit(files: dict[str, bytes]) -> None:
        doc = json.loads(files["package.json"])
        doc["version"], doc["created"] = version, created
        files["package.json"] = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    return repack(src, out, edit, sign_key=sign_key, keep_signature=False)


FAULT_MODES = ("kill-client", "kill-agent", "crash-at")


@dataclass(frozen=True)
class Trial:
    """One fault trial: how the deploy was interrupted and whether the device still works.

    Attributes:
        mode: ``kill-client`` (SIGKILL the local ``lpr-sdk deploy`` and its ssh/scp), ``kill-agent`` (SIGKILL the
            device agent mid-run), or ``crash-at`` (the agent SIGKILLs itself at a named step, sent over SSH).
        detail: the delay in seconds, or the step.
        exit_code: the deploy command's exit code (negative: killed by that signal).
        killed: whether a kill actually landed (a late delay may find the deploy already done).
        healthy_now: the active slot verified and read a crop right after the fault.
        healthy_settled: the same once no agent was running any more.
        version: the active version after settling (or the reason it is not healthy).
    """

    mode: str
    detail: str
    exit_code: int | None
    killed: bool
    healthy_now: bool
    healthy_settled: bool
    version: str

    @property
    def bricked(self) -> bool:
        return not (self.healthy_now and self.healthy_settled)


def deploy_argv(sshd: LocalSshd, root: Path, package: Path, python: str = sys.executable) -> list[str]:
    """``lpr-sdk deploy`` argv (as ``python -m lpr_cli``) for the local sshd, forwarding the crash variable."""
    return [
        python,
        "-m",
        "lpr_cli",
        "deploy",
        str(package),
        f"{sshd.user}@127.0.0.1",
        "--port",
        str(sshd.port),
        "--identity",
        str(sshd.client_key),
        "--known-hosts",
        str(sshd.known_hosts),
        "--root",
        str(root),
        "--python",
        python,
        "-o",
        f"SendEnv={CRASH_ENV}",
    ]


def _agent_pid(root: Path) -> int | None:
    """The pid of the device agent now holding ``root``'s lock, or None."""
    lock = Path(root) / ".lock"
    if not lock.is_file():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None  # nobody holds it
        except BlockingIOError:
            pass
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)
    if not text.isdigit():
        return None
    try:
        cmdline = Path(f"/proc/{text}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"firmware_tools.device_agent" in cmdline and str(root).encode() in cmdline:
        return int(text)
    return None


def wait_idle(root: Path, timeout: float = 120.0) -> None:
    """Wait until no device agent holds ``root``'s lock."""
    lock = Path(root) / ".lock"
    deadline = time.monotonic() + timeout
    while lock.is_file() and time.monotonic() < deadline:
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.05)
        finally:
            os.close(fd)


def fault_trial(
    sshd: LocalSshd,
    root: Path,
    package: Path,
    mode: str,
    rng: random.Random,
    span_s: float,
    step: str | None = None,
    agent_span_s: float | None = None,
) -> Trial:
    """Deploy ``package`` over SSH and interrupt it; then check the device's active slot.

    Args:
        sshd: the running server.
        root: the device root (already holding a working slot).
        package: the package to deploy.
        mode: one of :data:`FAULT_MODES`.
        rng: draws the kill delay.
        span_s: about how long a whole deploy takes: ``kill-client`` waits uniform [0, span_s] from the start.
        step: for ``crash-at``, the agent step to crash at.
        agent_span_s: about how long the agent holds the device lock: ``kill-agent`` waits uniform [0, this]
            once it holds it (default: half of ``span_s``).
    """
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if mode == "crash-at":
        env[CRASH_ENV] = step or "verified"
    proc = subprocess.Popen(
        [*deploy_argv(sshd, root, package), "--allow-downgrade"],  # trials alternate two packages on purpose
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the client, ssh and scp are killed together
    )
    killed, detail = False, step or ""
    if mode == "kill-client":
        delay = rng.uniform(0.0, span_s)
        detail = f"{delay:.2f}s after start"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
    elif mode == "kill-agent":
        deadline = time.monotonic() + 60
        pid = None
        while pid is None and proc.poll() is None and time.monotonic() < deadline:
            pid = _agent_pid(root)
            time.sleep(0.01)
        delay = rng.uniform(0.0, agent_span_s if agent_span_s is not None else span_s / 2)
        detail = f"{delay:.2f}s after the agent locked"
        time.sleep(delay)
        if pid is not None and _agent_pid(root) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed = True
    code = proc.wait(timeout=600)
    killed = killed or mode == "crash-at"
    now, _ = active_health(root)
    wait_idle(root)
    settled, version = active_health(root)
    return Trial(mode, detail, code, killed, now, settled, version)
