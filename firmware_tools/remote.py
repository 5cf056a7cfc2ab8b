"""The workstation side of a deploy: copy over SSH with the system ``ssh``/``scp``, then run the device agent.

All device-side logic (verification, slot write, atomic switch, health check, rollback) is in
:mod:`firmware_tools.device_agent`, run on the device by its own Python; this module only copies files and
invokes it. SSH runs with ``BatchMode=yes`` (never a password prompt) and, unless a known-hosts file is given,
``StrictHostKeyChecking=accept-new`` (trust a new host on first use, refuse a changed host key).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.errors import LprError

AGENT = "firmware_tools.device_agent"
DEFAULT_ROOT = "/opt/lpr"
SSH_TIMEOUT_S = 15
AGENT_TIMEOUT_S = 900
DEFAULT_RESERVE = 16 << 20  # bytes a deploy leaves free on the device beyond what it writes
# A device root must be an absolute path of these characters: it appears in scp targets, which the legacy scp
# protocol hands to the device's shell and the SFTP protocol does not, so only a path that needs no quoting
# means the same to both.
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")


class DeployError(LprError):
    """A deploy step failed: SSH, copy, or the device refused or rolled back."""


@dataclass(frozen=True)
class Target:
    """Where and how to reach a device.

    Attributes:
        destination: ``user@host`` (or a host alias from ~/.ssh/config).
        root: the device root holding the slots.
        port: SSH port (None: ssh's default or config).
        identity: private key file for SSH.
        known_hosts: known-hosts file to check the host key against strictly (None: accept-new in the default).
        python: the device's Python with lpr-sdk installed.
        ssh_options: extra ``-o`` options (e.g. ``ProxyJump=gw``).
        legacy_scp: copy with the legacy SCP protocol (``scp -O``: the device's shell reads the target path)
            rather than SFTP, for devices without an SFTP server.

    Raises:
        DeployError: ``root`` is not an absolute path of letters, digits and ``._/+-``.
    """

    destination: str
    root: str = DEFAULT_ROOT
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None
    python: str = "python3"
    ssh_options: tuple[str, ...] = field(default_factory=tuple)
    legacy_scp: bool = False

    def __post_init__(self) -> None:
        check_remote_path(self.root, "the device root (--root)")

    def _options(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_TIMEOUT_S}"]
        if self.known_hosts is not None:
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}"]
        else:
            opts += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.identity is not None:
            opts += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for o in self.ssh_options:
            opts += ["-o", o]
        return opts

    def ssh_command(self, remote: Sequence[str]) -> list[str]:
        """``ssh`` argv running ``remote`` (each word quoted for the remote shell)."""
        port = ["-p", str(self.port)] if self.port else []
        return ["ssh", *self._options(), *port, "--", self.destination, shlex.join(remote)]

    def scp_command(self, source: Path, remote_path: str) -> list[str]:
        """``scp`` argv copying one local file to a remote path (a :data:`SAFE_PATH`, quoted all the same)."""
        check_remote_path(remote_path, "an upload path")
        port = ["-P", str(self.port)] if self.port else []
        protocol = ["-O"] if self.legacy_scp else []
        target = f"{self.destination}:{shlex.quote(remote_path)}"
        return ["scp", "-q", *protocol, *self._options(), *port, "--", str(source), target]

    def agent(self, *args: str) -> list[str]:
        """The remote agent's argv for one command."""
        return [self.python, "-m", AGENT, args[0], "--root", self.root, *args[1:]]


def check_remote_path(path: str, what: str) -> str:
    """Refuse a remote path that is not absolute or holds a character a shell or scp would read specially."""
    if not SAFE_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise DeployError(
            f"{what} {path!r} must be an absolute path of letters, digits and ._/+- (no '..'), "
            "so that no shell on the device reads it as anything else"
        )
    return path


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    return (errors[-1].removeprefix("error: ") if errors else lines[-1]) if lines else "no output"


def _run(cmd: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as e:
        raise DeployError(f"{cmd[0]} is not installed here: install the OpenSSH client") from e
    except subprocess.TimeoutExpired as e:
        raise DeployError(f"{what} timed out after {timeout:.0f} s") from e


def run_agent(target: Target, *args: str, timeout: float = AGENT_TIMEOUT_S) -> dict[str, Any]:
    """Run one device-agent command over SSH and return its JSON result.

    Raises:
        DeployError: SSH failed, the device lacks lpr-sdk, or the agent reported an error (its message).
    """
    proc = _run(target.ssh_command(target.agent(*args)), f"{args[0]} on {target.destination}", timeout)
    if proc.returncode == 255:
        if not proc.stderr.strip():  # ssh says nothing when the remote command dies from a signal
            raise DeployError(
                f"{args[0]} on {target.destination} was cut off (connection lost or the agent was killed); "
                "the device keeps a complete slot active: see `lpr-sdk deploy --status`"
            )
        raise DeployError(f"ssh to {target.destination} failed: {_last_error(proc.stderr)}")
    if proc.returncode != 0:
        err = _last_error(proc.stderr)
        if "No module named" in err:
            err = f"{target.python} on the device cannot run {AGENT}: install lpr-sdk there ({err})"
        outcome = {2: "refused", 3: "rolled back"}.get(proc.returncode, "failed")
        raise DeployError(f"{target.destination}: {args[0]} {outcome}: {err}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as e:
        raise DeployError(f"{target.destination}: {args[0]} gave no result (output: {proc.stdout[-200:]!r})") from e


UPLOAD_NAMES = ("package.tar.gz", "trusted.pub", "camera_loop.py")


def upload(target: Target, files: Sequence[tuple[Path, str]], remote_dir: str) -> list[str]:
    """Copy files into ``remote_dir`` on the device; return their remote paths.

    Args:
        files: (local file, role) pairs; the role (one of :data:`UPLOAD_NAMES`) names the upload, never the local
            file's name: ``<pid>-<random>-<role>``, so nothing a user named reaches the device's shell.
    """
    tag = f"{os.getpid()}-{os.urandom(3).hex()}"
    remote = []
    for f, role in files:
        if role not in UPLOAD_NAMES:
            raise ValueError(f"unknown upload role {role!r}")
        dest = f"{remote_dir.rstrip('/')}/{tag}-{role}"
        proc = _run(target.scp_command(f, dest), f"copy to {target.destination}", AGENT_TIMEOUT_S)
        if proc.returncode != 0:
            raise DeployError(f"copy of {f.name} to {target.destination} failed: {_last_error(proc.stderr)}")
        remote.append(dest)
    return remote


def free_bytes(target: Target, remote_path: str) -> int:
    """Free bytes (for an unprivileged user) of the device's filesystem holding ``remote_path``, from ``df -Pk``.

    Raises:
        DeployError: ssh or df failed, or df's output is not POSIX.
    """
    cmd = target.ssh_command(["df", "-Pk", "--", check_remote_path(remote_path, "a path to measure")])
    proc = _run(cmd, f"df on {target.destination}", SSH_TIMEOUT_S * 2)
    if proc.returncode != 0:
        raise DeployError(f"cannot read the free space on {target.destination}: {_last_error(proc.stderr)}")
    try:
        return int(proc.stdout.strip().splitlines()[-1].split()[3]) * 1024
    except (IndexError, ValueError) as e:
        raise DeployError(f"cannot read df's output from {target.destination}: {proc.stdout[-200:]!r}") from e


def space_needed(package: Path, uploads: Sequence[Path], reserve: int = DEFAULT_RESERVE) -> int:
    """Bytes a deploy needs free on the device: the uploads, the unpacked slot (written in full before the old
    slot it replaces is removed), and ``reserve`` plus 5 % for file-system overhead."""
    from sdk.package import read_package_files

    unpacked = sum(len(d) for d in read_package_files(package).values())
    need = sum(f.stat().st_size for f in uploads) + unpacked
    return need + need // 20 + reserve


def check_space(
    target: Target, remote_dir: str, package: Path, uploads: Sequence[Path], reserve: int = DEFAULT_RESERVE
) -> int:
    """Refuse to upload when the device has too little free space for this deploy; return the free bytes.

    Raises:
        DeployError: too little space (with both numbers), or the space cannot be read.
    """
    need, free = space_needed(package, uploads, reserve), free_bytes(target, remote_dir)
    if free < need:
        mib = 1 << 20
        raise DeployError(
            f"{target.destination} has {free / mib:.1f} MiB free under {target.root}, and this deploy needs "
            f"{need / mib:.1f} MiB (upload, the unpacked slot and {reserve / mib:.0f} MiB kept free): free space on "
            "the device, nothing was copied"
        )
    return free


def deploy(
    target: Target,
    package: Path,
    pubkey: Path | None = None,
    allow_downgrade: bool = False,
    reserve: int = DEFAULT_RESERVE,
    insecure: bool = False,
) -> dict[str, Any]:
    """Copy a package to the device, verify it there, switch slots, health-check, roll back on failure.

    Args:
        target: the device.
        package: the package ``.tar.gz`` (verified here first by the caller).
        pubkey: install this public key as the device's trusted key before verifying (packages must then be
            signed by it from now on).
        allow_downgrade: let the device take a package created before the one it last took (recorded there).
        reserve: bytes to leave free on the device beyond what the deploy writes (see :func:`check_space`).
        insecure: let a device without a trusted key take the package unchecked (else it refuses it).

    Returns:
        The agent's result (``active`` slot, ``version``, ``previous``).

    Raises:
        DeployError: with the device's one-line reason; on ``rolled back`` the previous slot is active again.
    """
    prep = run_agent(target, "prepare", "--clean")  # also removes what killed deploys left, before measuring
    incoming = check_remote_path(str(prep["incoming"]), "the device's upload folder")
    files = [(package, "package.tar.gz")] + ([(pubkey, "trusted.pub")] if pubkey is not None else [])
    check_space(target, incoming, package, [f for f, _ in files], reserve)
    remote = upload(target, files, incoming)
    args = ["deploy", remote[0], *(["--trust-key", remote[1]] if pubkey is not None else [])]
    args += ["--allow-downgrade"] if allow_downgrade else []
    return run_agent(target, *args, *(["--insecure"] if insecure else []))


def install_service(target: Target, script: Path, bundle: str | None = None) -> dict[str, Any]:
    """Copy the camera-loop script and write the systemd unit for the active slot into the device root."""
    prep = run_agent(target, "prepare")
    (remote,) = upload(target, [(script, "camera_loop.py")], prep["incoming"])
    args = ["service", "--script", remote, "--python", prep["python"]]
    if bundle:
        args += ["--bundle", bundle]
    return run_agent(target, *args)
