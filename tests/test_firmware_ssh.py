"""Deploys over a real OpenSSH server on 127.0.0.1 to a temporary device root, with faults injected."""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_tools.device_agent import CRASH_STEPS
from firmware_tools.remote import DeployError, deploy
from firmware_tools.testing import LocalSshd, active_health, deploy_argv, fault_trial, missing_tools, redate

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LocalSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def cli(sshd: LocalSshd, root: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """``lpr-sdk deploy`` as a user runs it: a separate process with the system ssh."""
    base = deploy_argv(sshd, root, Path("unused"))
    i = base.index("deploy") + 1
    cmd = [*base[:i], *map(str, args), *base[i + 1 :]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def device(sshd, pkgs, tmp_path_factory) -> Path:
    """A device root that trusts the fleet key, first deployed with v1 over SSH (shared by this module's tests)."""
    root = tmp_path_factory.mktemp("device") / "opt-lpr"
    proc = cli(sshd, root, pkgs["v1"], "--pubkey", pkgs["pub"])
    assert proc.returncode == 0, proc.stderr
    assert "version v1 active in slot a" in proc.stdout
    return root


def test_deploy_status_rollback(sshd, device, pkgs):
    proc = cli(sshd, device, pkgs["v2"])
    assert proc.returncode == 0, proc.stderr
    s = json.loads(cli(sshd, device, "--status", "--json").stdout)
    active, other = s["active"], "a" if s["active"] == "b" else "b"
    assert f"version v2 active in slot {active}" in proc.stdout and f"previous slot: {other}" in proc.stdout
    assert s["active_version"] == "v2" and s["slots"][other]["valid"] and s["trusted_key"] is not None
    proc = cli(sshd, device, "--rollback")
    assert proc.returncode == 0, proc.stderr
    assert f"rolled back to slot {other}, version {s['slots'][other]['version']}" in proc.stdout
    assert active_health(device) == (True, s["slots"][other]["version"])


def test_device_refuses_a_tampered_package_and_stays_on_its_slot(sshd, device, pkgs):
    # the CLI checks locally first: one line, nothing copied
    assert "does not match its sha256" in one_error_line(cli(sshd, device, pkgs["tampered"]))
    assert not list((device / "incoming").iterdir())
    # the device checks again with its own SDK (here the local check is bypassed)
    before = active_health(device)
    target = sshd.target(device, sys.executable)
    with pytest.raises(DeployError, match=r"deploy refused: refused, the device is unchanged: .*sha256"):
        deploy(target, pkgs["tampered"])
    assert before[0] and active_health(device) == before
    assert not list((device / "incoming").iterdir())


def test_service_unit_over_ssh(sshd, device, tmp_path):
    script = tmp_path / "camera_loop.py"
    script.write_text("print('camera loop')\n")
    proc = cli(sshd, device, "--service", "--camera-loop", script)
    assert proc.returncode == 0, proc.stderr
    unit = (device / "lpr-camera.service").read_text()
    assert f"--recognizer {device}/current/bundles/tiny" in unit and "systemctl enable" in proc.stdout


def _pwned_markers(device: Path) -> list[Path]:
    """Where a ``touch PWNED`` run by the device's shell would leave its file (its login directory, the root)."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    return [home / "PWNED", device / "PWNED", device / "incoming" / "PWNED", Path.cwd() / "PWNED"]


@pytest.mark.parametrize("legacy_scp", [True, False], ids=["scp-protocol", "sftp-protocol"])
def test_a_package_name_cannot_run_commands_on_the_device(sshd, device, pkgs, tmp_path, legacy_scp):
    markers = _pwned_markers(device)
    assert not [m for m in markers if m.exists()], "a PWNED file exists before the test: remove it"
    evil = tmp_path / "x;touch PWNED;.tar.gz"
    shutil.copyfile(pkgs["v2"], evil)
    proc = cli(sshd, device, evil, *(["--legacy-scp"] if legacy_scp else []))
    assert not [m for m in markers if m.exists()], proc.stderr
    assert proc.returncode == 0, proc.stderr  # uploaded under a fixed name: the deploy simply works
    assert "version v2 active" in proc.stdout
    assert not list((device / "incoming").iterdir())


def test_an_unsafe_device_root_is_refused_before_ssh(sshd, pkgs, tmp_path):
    root = f"{tmp_path}/x;touch PWNED;"
    line = one_error_line(cli(sshd, root, pkgs["v1"]))
    assert "must be an absolute path" in line
    assert not [m for m in _pwned_markers(tmp_path) if m.exists()]


def test_an_older_package_is_refused_unless_a_downgrade_is_allowed(sshd, pkgs, tmp_path):
    old = redate(pkgs["v1"], tmp_path / "old.tar.gz", "old", "2090-01-01T00:00:00+00:00", pkgs["key"])
    new = redate(pkgs["v1"], tmp_path / "new.tar.gz", "new", "2090-01-02T00:00:00+00:00", pkgs["key"])
    root = tmp_path / "device"
    assert cli(sshd, root, old, "--pubkey", pkgs["pub"]).returncode == 0
    proc = cli(sshd, root, new)
    assert proc.returncode == 0, proc.stderr
    # a replay of the older (validly signed) package: refused, nothing changes
    line = one_error_line(cli(sshd, root, old))
    assert "version old" in line and "older than version new" in line and "--allow-downgrade" in line
    assert active_health(root) == (True, "new") and not list((root / "incoming").iterdir())
    s = json.loads(cli(sshd, root, "--status", "--json").stdout)
    assert s["installed"]["version"] == "new" and s["history"][-1]["result"] == "refused"
    # --rollback to the older slot is the operator's own step, not a deploy: allowed, and the mark stays
    assert cli(sshd, root, "--rollback").returncode == 0 and active_health(root) == (True, "old")
    assert "older than version new" in one_error_line(cli(sshd, root, old))
    # told to, the device takes it and records that it did
    proc = cli(sshd, root, old, "--allow-downgrade")
    assert proc.returncode == 0, proc.stderr
    assert "a downgrade, allowed" in proc.stdout and active_health(root) == (True, "old")
    s = json.loads(cli(sshd, root, "--status", "--json").stdout)
    assert s["installed"]["version"] == "old" and "downgrade allowed" in s["history"][-1]["detail"]
    assert cli(sshd, root, new).returncode == 0 and active_health(root) == (True, "new")
    assert cli(sshd, root, new).returncode == 0  # the same package again is no downgrade


def _leave_leftovers(root: Path, pkg: Path) -> list[Path]:
    """What deploys killed mid-way (or stopped by a full disk) leave under a device root."""
    upload = root / "incoming" / "4242-abcdef-package.tar.gz"
    shutil.copyfile(pkg, upload)
    partial = root / "slots" / ".b.new" / "bundles" / "tiny"
    partial.mkdir(parents=True)
    (partial / "model.tflite").write_bytes(b"\0" * 1000)
    old = root / "slots" / ".a.old"
    old.mkdir()
    state_tmp = root / ".state.json.4242.tmp"
    state_tmp.write_text('{"pending": nul')
    staged = root / ".current.4242"
    staged.symlink_to("slots/b")
    return [upload, partial.parents[1], old, state_tmp, staged]


def test_leftovers_of_killed_deploys_are_removed_by_the_next_deploy_and_rollback(sshd, pkgs, tmp_path):
    root = tmp_path / "device"
    for pkg in (pkgs["v1"], pkgs["v2"]):
        assert cli(sshd, root, pkg, "--pubkey", pkgs["pub"]).returncode == 0
    left = _leave_leftovers(root, pkgs["v1"])
    proc = cli(sshd, root, "--rollback")
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in left if p.exists() or p.is_symlink()] and active_health(root) == (True, "v1")
    left = _leave_leftovers(root, pkgs["v1"])
    proc = cli(sshd, root, pkgs["v2"])
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in left if p.exists() or p.is_symlink()] and active_health(root) == (True, "v2")
    assert not list((root / "incoming").iterdir())
    assert sorted(p.name for p in root.iterdir()) == [
        ".lock",
        "current",
        "incoming",
        "slots",
        "state.json",
        "trusted.pub",
    ]


def test_too_little_free_space_is_refused_before_copying(sshd, pkgs, tmp_path):
    root = tmp_path / "device"
    assert cli(sshd, root, pkgs["v1"], "--pubkey", pkgs["pub"]).returncode == 0
    _leave_leftovers(root, pkgs["v1"])
    line = one_error_line(cli(sshd, root, pkgs["v2"], "--reserve", str(1 << 40)))  # more than any disk here
    assert "MiB free under" in line and "this deploy needs" in line and "nothing was copied" in line
    assert not list((root / "incoming").iterdir())  # the killed deploy's upload was removed all the same
    assert active_health(root) == (True, "v1")


def test_pinned_trust_over_ssh(sshd, device, pkgs, tmp_path):
    before = active_health(device)
    other_pub = pkgs["other"].with_suffix(".pub")  # whoever can log in, with a key of their own
    line = one_error_line(cli(sshd, device, pkgs["wrong-key"], "--pubkey", other_pub))
    assert "already trusts key" in line and active_health(device) == before
    from sdk.package import key_id, load_public_key

    fleet = key_id(load_public_key(pkgs["pub"]))
    assert json.loads(cli(sshd, device, "--status", "--json").stdout)["trusted_key"] == fleet
    fresh = tmp_path / "fresh"
    assert "--insecure" in one_error_line(cli(sshd, fresh, pkgs["unsigned"]))
    assert not (fresh / "current").exists()
    assert cli(sshd, fresh, pkgs["unsigned"], "--insecure").returncode == 0 and active_health(fresh) == (True, "v3")


def test_ssh_failure_is_one_line(sshd, pkgs, tmp_path):
    base = deploy_argv(sshd, tmp_path / "root", pkgs["v1"])
    base[base.index("--port") + 1] = "1"  # nothing listens there
    proc = subprocess.run(base, capture_output=True, text=True, timeout=120, check=False)
    assert "ssh to" in one_error_line(proc)


def test_killed_deploys_never_brick_the_device(sshd, device, pkgs):
    """A handful of the fault benchmark's trials (benchmarks/deploy_faults.py runs 50+)."""
    rng = random.Random(5)
    span = 3.0
    trials = [
        fault_trial(sshd, device, pkgs["v2"], "kill-client", rng, span),
        fault_trial(sshd, device, pkgs["v1"], "kill-agent", rng, span),
        fault_trial(sshd, device, pkgs["v2"], "crash-at", rng, span, step=rng.choice(CRASH_STEPS)),
    ]
    assert not [t for t in trials if t.bricked], trials
    assert trials[2].exit_code == 2  # the agent died: the client says so in one line
    proc = cli(sshd, device, pkgs["v2"])
    assert proc.returncode == 0, proc.stderr
    assert active_health(device) == (True, "v2")
