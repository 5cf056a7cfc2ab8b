"""The device agent, run locally as it runs on a device: A/B slots, atomic switch, health check, rollback, crashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, needs_shipped_detector

from firmware_tools.device_agent import CRASH_STEPS
from firmware_tools.slots import CRASH_ENV, SlotStore
from firmware_tools.testing import active_health


def agent(root: Path, *args: object, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    cmd = [sys.executable, "-m", "firmware_tools.device_agent", str(args[0]), "--root", str(root), *map(str, args[1:])]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def device(tmp_path, pkgs) -> Path:
    """A device root that trusts the fleet key, with v1 active."""
    root = tmp_path / "device"
    assert ok(agent(root, "deploy", pkgs["v1"], "--trust-key", pkgs["pub"]))["active"] == "a"
    return root


def test_health_check_compares_the_cpu_kernels_with_the_reference_kernels(device, monkeypatch):
    import sdk.interpreter
    from firmware_tools.device_agent import check_slot
    from firmware_tools.slots import DeviceError

    store = SlotStore(device)
    report = check_slot(store, store.current)
    assert all(b["kernel_steps"] <= sdk.interpreter.KERNEL_TOLERANCE_STEPS for b in report["bundles"].values())
    monkeypatch.setattr(sdk.interpreter, "KERNEL_TOLERANCE_STEPS", -1.0)  # any difference now counts as wrong
    with pytest.raises(DeviceError, match="reference kernels"):
        check_slot(store, store.current)


def test_deploy_switches_slots_and_rollback_returns(device, pkgs):
    r = ok(agent(device, "deploy", pkgs["v2"]))
    assert (r["active"], r["version"], r["previous"]) == ("b", "v2", "a")
    assert os.readlink(device / "current") == "slots/b"
    s = ok(agent(device, "status"))
    assert s["slots"]["a"]["version"] == "v1" and s["slots"]["b"]["version"] == "v2" and s["pending"] is None
    r = ok(agent(device, "rollback"))
    assert (r["active"], r["version"]) == ("a", "v1")
    assert active_health(device) == (True, "v1")


def test_a_refused_package_leaves_the_device_untouched(device, pkgs):
    ok(agent(device, "trust", pkgs["pub"]))
    before = tree_digest(device / "slots")
    for bad, words in [
        ("tampered", "does not match its sha256"),
        ("truncated", "says"),
        ("lying", "disagrees with the model"),
        ("wrong-key", "signature does not verify"),
        ("unsigned", "is not signed"),
    ]:
        line = one_line(agent(device, "deploy", pkgs[bad]), code=2)
        assert words in line and "the device is unchanged" in line, bad
        assert tree_digest(device / "slots") == before, bad
        assert active_health(device) == (True, "v1"), bad


def test_a_device_without_a_trusted_key_takes_nothing_unchecked_unless_insecure(tmp_path, pkgs):
    root = tmp_path / "fresh"
    for name in ("unsigned", "v1"):  # signed or not: without a pinned key nothing checks who signed it
        line = one_line(agent(root, "deploy", pkgs[name]), code=2)
        assert "no trusted key" in line and "--insecure" in line and not (root / "current").exists()
    assert ok(agent(root, "deploy", pkgs["unsigned"], "--insecure"))["version"] == "v3"


def test_a_pinned_key_is_not_replaced_by_a_deploy(device, pkgs):
    other_pub = pkgs["other"].with_suffix(".pub")
    line = one_line(agent(device, "deploy", pkgs["wrong-key"], "--trust-key", other_pub), code=2)
    assert "already trusts key" in line and "trust --replace" in line
    assert active_health(device) == (True, "v1") and not list((device / "incoming").iterdir())
    assert ok(agent(device, "trust", pkgs["pub"]))["changed"] is False  # the same key again: nothing to do
    assert ok(agent(device, "trust", other_pub, "--replace"))["changed"] is True  # the reset on the device
    assert ok(agent(device, "deploy", pkgs["wrong-key"]))["version"] == "v4"


def test_failed_health_check_rolls_back(device, pkgs):
    line = one_line(agent(device, "deploy", pkgs["v2"], crash="health_check"), code=3)
    assert "failed its health check" in line and "slot a is active again" in line
    assert active_health(device) == (True, "v1")
    history = ok(agent(device, "status"))["history"]
    assert history[-1]["result"] == "rolled_back"


def test_first_deploy_that_fails_its_check_leaves_no_model_active(tmp_path, pkgs):
    root = tmp_path / "fresh"
    proc = agent(root, "deploy", pkgs["v1"], "--insecure", crash="health_check")
    assert "no model is active" in one_line(proc, code=3)
    assert not (root / "current").exists()
    assert "no active slot" in one_line(agent(root, "rollback"), code=1)


def test_crash_at_every_step_leaves_a_working_active_slot(device, pkgs):
    ok(agent(device, "deploy", pkgs["v2"]))  # both slots full, so the inactive one is replaced, not just written
    versions = []
    for i, step in enumerate(s for s in CRASH_STEPS if s != "health_check"):
        pkg = pkgs["v1"] if i % 2 == 0 else pkgs["v2"]
        proc = agent(device, "deploy", pkg, "--allow-downgrade", crash=step)  # v1 may be a second older
        assert proc.returncode == -9, (step, proc.stderr)
        healthy, version = active_health(device)
        assert healthy, f"bricked after a crash at {step}: {version}"
        versions.append(version)
    assert set(versions) == {"v1", "v2"}  # crashes before the switch keep the old one, after it the new one
    r = ok(agent(device, "recover"))
    assert r["action"] == "recover"
    r = ok(agent(device, "deploy", pkgs["v2"]))
    assert r["version"] == "v2" and ok(agent(device, "status"))["pending"] is None
    assert not [p for p in (device / "slots").iterdir() if p.name.startswith(".")]


def test_recover_keeps_a_healthy_unconfirmed_switch(device, pkgs):
    assert agent(device, "deploy", pkgs["v2"], crash="activated").returncode == -9
    assert ok(agent(device, "status"))["pending"]["slot"] == "b"
    assert "kept slot b" in ok(agent(device, "recover"))["result"]
    s = ok(agent(device, "status"))
    assert s["pending"] is None and s["active_version"] == "v2"


def test_service_unit_is_written_into_the_root(device, tmp_path):
    script = tmp_path / "camera_loop.py"
    script.write_text("print('loop')\n")
    r = ok(agent(device, "service", "--script", script, "--python", "/usr/bin/python3"))
    unit = Path(r["unit"]).read_text()
    assert r["bundle"] == "tiny" and r["detector"] is None and Path(r["unit"]).parent == device
    assert f"ExecStart=/usr/bin/python3 {device}/camera_loop.py --recognizer {device}/current/bundles/tiny" in unit
    assert f"ExecStartPre=/usr/bin/python3 -m firmware_tools.device_agent recover --root {device}" in unit
    assert (device / "camera_loop.py").read_text() == "print('loop')\n"
    assert "no bundle 'nope'" in one_line(agent(device, "service", "--script", script, "--bundle", "nope"), code=1)
    assert "--detector" not in unit  # the camera loop uses the detector shipped with lpr-sdk
    assert "Type=simple" in unit and "WatchdogSec" not in unit and r["watchdog_s"] is None  # it cannot pet one
    script.write_bytes((REPO / "examples" / "camera_loop.py").read_bytes())  # speaks sd_notify
    r = ok(agent(device, "service", "--script", script, "--python", "/usr/bin/python3"))
    unit = Path(r["unit"]).read_text()
    assert "Type=notify" in unit and f"WatchdogSec={r['watchdog_s']}" in unit and r["watchdog_s"] > 0


@needs_shipped_detector
def test_a_package_with_a_detector_is_health_checked_and_run_by_the_service(tiny_bundle, tmp_path):
    from firmware_tools.packager import build_package

    pkg = build_package(["detector", tiny_bundle], tmp_path / "d.tar.gz", version="d1").source
    root = tmp_path / "device"
    assert ok(agent(root, "deploy", pkg, "--insecure"))["active"] == "a"
    health = ok(agent(root, "health"))
    assert set(health["bundles"]) == {"detector/proposal", "detector/corners", tiny_bundle.name}
    assert health["runtime"]["backend"] == "ai-edge-litert" and health["runtime"]["machine"]
    script = tmp_path / "camera_loop.py"
    script.write_text("print('loop')\n")
    r = ok(agent(root, "service", "--script", script, "--python", "/usr/bin/python3"))
    assert r["detector"] == "detector" and r["bundle"] == tiny_bundle.name
    bundles = f"{root}/current/bundles"
    assert f"--recognizer {bundles}/{tiny_bundle.name} --detector {bundles}/detector\n" in Path(r["unit"]).read_text()


def test_slot_store_refuses_to_overwrite_the_active_slot(device):
    store = SlotStore(device)
    with pytest.raises(Exception, match="is active"):
        store.write_slot(store.active(), {"x": b""})
    shutil.rmtree(device)
