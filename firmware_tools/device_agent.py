"""The device side of a deploy, run ON the device: ``python3 -m firmware_tools.device_agent COMMAND --root R``.

Commands: ``prepare`` (make the layout, say where to upload), ``install PKG`` (verify, write the inactive slot),
``activate SLOT`` (switch, health-check, roll back on failure), ``deploy PKG`` (both), ``rollback``, ``recover``
(finish an interrupted switch), ``status``, ``health``, ``trust KEY`` and ``service``. Every command that changes
anything holds the root's lock. The last line on stdout is one JSON object; a failure is one ``error: ...``
line on stderr and a non-zero exit: 2 the package was refused (nothing changed), 3 the new slot failed its
health check and the previous one is active again, 1 anything else.

Fault injection for tests: ``LPR_DEPLOY_CRASH_AT=<step>`` SIGKILLs the agent at that step (see
:data:`CRASH_STEPS`); ``health_check`` kills the health-check process instead, which makes the check fail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import string
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from firmware_tools.slots import SLOTS, DeviceError, SlotStore, crash_point, replace_file
from sdk.errors import BackendError, LprError
from sdk.package import Package, load_package, load_public_key

CRASH_STEPS = (
    "locked",
    "verified",
    "slot_half_written",
    "slot_written",
    "old_slot_moved",
    "slot_renamed",
    "pending_saved",
    "symlink_staged",
    "activated",
    "health_check",
    "health_passed",
    "committed",
)
EXIT_FAILED, EXIT_REFUSED, EXIT_ROLLED_BACK = 1, 2, 3
HEALTH_TIMEOUT_S = 300
UNIT_NAME = "lpr-camera.service"
AGENT_MODULE = "firmware_tools.device_agent"


class RefusedError(LprError):
    """The package failed verification; the device is unchanged."""


class RolledBackError(LprError):
    """The new slot failed its health check; the previous slot is active again."""


def trusted_key(store: SlotStore) -> Any | None:
    """The device's configured public key (``ROOT/trusted.pub``), or None: then signatures are not required."""
    return load_public_key(store.trusted_key) if store.trusted_key.is_file() else None


def slot_package(store: SlotStore, slot: str, check_models: bool = True) -> Package:
    """Load and verify the package in ``slot`` with the device's trusted key."""
    return load_package(store.slot_path(slot), trusted_key(store), check_models)


def check_slot(store: SlotStore, path: Path) -> dict[str, Any]:
    """Verify the package at ``path`` with the device's key, then run each model on a gray crop; the result names
    the device's runtime (:func:`sdk.interpreter.runtime_info`).

    A recogniser must decode and give logits of its manifest's [T, C]; any other model must run on zeros. Every
    model must then compute alike with the device's default CPU kernels and the reference kernels
    (:func:`sdk.interpreter.kernel_disagreement`; skipped where the runtime cannot choose its kernels).

    Raises:
        LprError: the package fails verification or a model fails.
    """
    from sdk.interpreter import frame_inputs, kernel_disagreement, make_interpreter, runtime_info, sample_frames
    from sdk.recognizer import Recognizer

    pkg = load_package(path.resolve(), trusted_key(store))
    frames = sample_frames(2)  # read once, for every bundle's kernel check
    results = {}
    for name, b in pkg.bundles.items():
        t0 = time.perf_counter()
        if b.manifest.kind == "recognizer":
            rec = Recognizer(b)
            crop = np.full((rec.height * 2, rec.width * 2, 3), 128, np.uint8)
            logits = rec.logits(rec.prepare(crop))
            want = tuple(b.manifest.output.shape[1:])
            if logits.shape != want:
                raise DeviceError(f"bundle {name}: output shape {list(logits.shape)}, manifest says {list(want)}")
            read = rec.recognize(crop)
            results[name] = {"kind": "recognizer", "text": read.text, "ms": (time.perf_counter() - t0) * 1e3}
        else:
            interp, _ = make_interpreter(b.model)
            inp = interp.get_input_details()[0]
            interp.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
            interp.invoke()
            results[name] = {"kind": b.manifest.kind, "ms": (time.perf_counter() - t0) * 1e3}
        try:
            kernels = kernel_disagreement(b.model, frame_inputs(b, frames))
        except BackendError:
            continue  # an older runtime: the check cannot run here, which is no reason to roll back
        results[name]["kernel_steps"] = kernels["mean_steps"]
        if kernels["faults"]:
            raise DeviceError(f"bundle {name}: {kernels['faults'][0]}")
        if not kernels["ok"]:
            raise DeviceError(
                f"bundle {name}: this device's CPU kernels compute it differently from the reference kernels "
                f"({kernels['mean_steps']} int8 steps on average); reads would be wrong here"
            )
    return {"ok": True, "version": pkg.version, "runtime": runtime_info(), "bundles": results}


def health(store: SlotStore, slot: str = "current") -> dict[str, Any]:
    """The health check of the active slot (or a named one): see :func:`check_slot`."""
    crash_point("health_check")
    return check_slot(store, store.current if slot == "current" else store.slot_path(slot))


def run_health(store: SlotStore) -> tuple[bool, str]:
    """Health-check the active slot in a child process (a native crash in a model cannot take the agent down)."""
    cmd = [sys.executable, "-m", "firmware_tools.device_agent", "health", "--root", str(store.root)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HEALTH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {HEALTH_TIMEOUT_S} s"
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    detail = lines[-1].removeprefix("error: ") if lines else f"exit code {proc.returncode}"
    return False, detail if proc.returncode > 0 else f"the check process died (signal {-proc.returncode})"


def _switch_back(store: SlotStore, previous: str | None) -> str:
    """Make ``previous`` active again after a failed check; say what is active now."""
    if previous is not None and store.slot_path(previous).is_dir():
        store.activate(previous)
        return f"slot {previous} is active again"
    store.current.unlink(missing_ok=True)  # there was no model before this one: leave none rather than a bad one
    return "there was no previous slot: no model is active"


def recover(store: SlotStore, state: dict[str, Any]) -> str | None:
    """Finish a switch that an interrupted run left unconfirmed: keep it if healthy, else switch back.

    Returns:
        What was done, or None if nothing was pending.
    """
    pending = state.get("pending")
    if not pending:
        return None
    if store.active() != pending.get("slot"):
        state["pending"] = None
        store.record(state, action="recover", result="cleared", detail="the switch had not happened")
        return "cleared an unfinished deploy (the switch had not happened)"
    ok, detail = run_health(store)
    if ok:
        state["pending"] = None
        if pending.get("created"):
            state["installed"] = {"version": pending.get("version"), "created": pending["created"]}
        store.record(state, action="recover", slot=pending["slot"], version=pending.get("version"), result="kept")
        return f"kept slot {pending['slot']} (health check passed)"
    now = _switch_back(store, pending.get("previous"))
    state["pending"] = None
    store.record(state, action="recover", slot=pending["slot"], result="rolled_back", detail=detail)
    return f"slot {pending['slot']} failed its health check ({detail}); {now}"


def created_time(text: str | None) -> datetime | None:
    """A package's ``created`` (ISO 8601, as package.json holds it) as an aware UTC time; None if unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def installed_mark(store: SlotStore, state: dict[str, Any]) -> dict[str, Any] | None:
    """The package the device last took by deploy (``version``, ``created``): older ones are downgrades.

    ``state.json`` keeps it (``installed``); a device deployed before it did falls back to its active slot.
    """
    mark = state.get("installed")
    if isinstance(mark, dict) and created_time(mark.get("created")) is not None:
        return mark
    active = store.active()
    if active is None:
        return None
    try:
        pkg = slot_package(store, active, check_models=False)
    except LprError:
        return None
    if created_time(pkg.manifest.created) is None:
        return None
    return {"version": pkg.version, "created": pkg.manifest.created}


def check_order(store: SlotStore, state: dict[str, Any], pkg: Package, allow_downgrade: bool) -> bool:
    """Refuse a package created before the one the device last took (a downgrade or a replayed old package).

    The order is package.json's ``created`` time, which the signature covers; a package just as old (the same
    one again) is no downgrade. Returns whether it is a downgrade that ``allow_downgrade`` let through.

    Raises:
        LprError: an older package (or one without a readable creation time) and ``allow_downgrade`` is False.
    """
    mark = installed_mark(store, state)
    if mark is None:
        return False
    new, old = created_time(pkg.manifest.created), created_time(mark["created"])
    if old is None or (new is not None and new >= old):
        return False
    if allow_downgrade:
        return True
    when = (
        f"created {pkg.manifest.created}"
        if new is not None
        else f"no readable creation time ({pkg.manifest.created!r})"
    )
    raise LprError(
        f"version {pkg.version} ({when}) is older than version {mark['version']} (created {mark['created']}), "
        "which this device already took: a downgrade or a replayed package; give --allow-downgrade to install it"
    )


def install(
    store: SlotStore,
    package_file: Path,
    state: dict[str, Any],
    allow_downgrade: bool = False,
    insecure: bool = False,
) -> tuple[str, Package, bool]:
    """Verify a package with the device's own SDK, check it is no older than the device's, and write it into
    the inactive slot (no switch). Returns the slot, the package and whether it is an allowed downgrade."""
    try:
        pkg = load_package(package_file, trusted_key(store))
        if not pkg.signature_checked and not insecure:
            raise LprError(
                f"this device has no trusted key ({store.trusted_key.name}), so nothing checks who made the package: "
                "deploy with --pubkey KEY to pin the fleet key, or --insecure to take it unchecked"
            )
        downgrade = check_order(store, state, pkg, allow_downgrade)
    except LprError as e:
        store.record(state, action="install", package=package_file.name, result="refused", detail=str(e))
        raise RefusedError(f"refused, the device is unchanged: {e}") from e
    crash_point("verified")
    slot = store.other(store.active())
    store.write_slot(slot, pkg.files)
    return slot, pkg, downgrade


def activate(
    store: SlotStore,
    slot: str,
    state: dict[str, Any],
    version: str,
    action: str,
    created: str | None = None,
    downgrade: bool = False,
) -> dict[str, Any]:
    """Switch to ``slot``, health-check it, and switch back if the check fails.

    ``created``: a deploy's package creation time; once the slot passes, the state records it as the package the
    device took (``installed``), so that older ones are refused from then on. A rollback passes none: it
    changes what runs, not what the device has taken.
    """
    previous = store.active()
    state["pending"] = {"slot": slot, "previous": previous, "version": version}
    if created is not None:
        state["pending"]["created"] = created
    store.write_state(state)
    crash_point("pending_saved")
    store.activate(slot)
    crash_point("activated")
    ok, detail = run_health(store)
    if not ok:
        now = _switch_back(store, previous)
        state["pending"] = None
        store.record(state, action=action, slot=slot, version=version, result="rolled_back", detail=detail)
        raise RolledBackError(f"{version} in slot {slot} failed its health check ({detail}); {now}")
    crash_point("health_passed")
    state["pending"] = None
    if created is not None:
        state["installed"] = {"version": version, "created": created}
    extra = {"detail": "downgrade allowed (--allow-downgrade)"} if downgrade else {}
    store.record(state, action=action, slot=slot, version=version, result="ok", **extra)
    crash_point("committed")
    return {"ok": True, "action": action, "active": slot, "version": version, "previous": previous}


def _discard_upload(store: SlotStore, path: Path) -> None:
    if path.parent.resolve() == store.incoming.resolve():
        path.unlink(missing_ok=True)


def cmd_deploy(
    store: SlotStore,
    package_file: Path,
    activate_it: bool = True,
    trust_key_file: Path | None = None,
    allow_downgrade: bool = False,
    insecure: bool = False,
) -> dict[str, Any]:
    if trust_key_file is not None:
        cmd_trust(store, trust_key_file)
    with store.lock():
        t0 = time.monotonic()
        crash_point("locked")
        store.clean_leftovers(keep=(package_file,))  # a killed or disk-full deploy's: they would block this one
        state = store.read_state()
        recovered = recover(store, state)
        try:
            slot, pkg, downgrade = install(store, package_file, state, allow_downgrade, insecure)
        except RefusedError:
            _discard_upload(store, package_file)
            raise
        _discard_upload(store, package_file)
        if not activate_it:
            store.record(state, action="install", slot=slot, version=pkg.version, result="ok")
            return {"ok": True, "action": "install", "slot": slot, "version": pkg.version, "recovered": recovered}
        result = activate(store, slot, state, pkg.version, "deploy", pkg.manifest.created, downgrade)
        return {
            **result,
            "downgrade": downgrade,
            "recovered": recovered,
            "locked_s": round(time.monotonic() - t0, 3),
        }


def cmd_activate(store: SlotStore, slot: str | None, action: str = "activate") -> dict[str, Any]:
    """Switch to ``slot`` (None: the other slot, i.e. a rollback) after verifying it, with a health check."""
    with store.lock():
        store.clean_leftovers()  # first: on a full disk, they may be what keeps state.json from being written
        state = store.read_state()
        recover(store, state)
        active = store.active()
        if slot is None:
            if active is None:
                raise DeviceError(f"no active slot under {store.root}; deploy a package first")
            slot = store.other(active)
        if slot == active:
            raise DeviceError(f"slot {slot} is already active")
        try:
            pkg = slot_package(store, slot)
        except LprError as e:
            raise DeviceError(f"slot {slot} holds no valid package ({e}); nothing to switch to") from e
        return activate(store, slot, state, pkg.version, action)


def cmd_rollback(store: SlotStore) -> dict[str, Any]:
    return cmd_activate(store, None, "rollback")


def cmd_recover(store: SlotStore) -> dict[str, Any]:
    with store.lock():
        store.clean_temporaries()
        return {"ok": True, "action": "recover", "result": recover(store, store.read_state()) or "nothing pending"}


def cmd_status(store: SlotStore) -> dict[str, Any]:
    state = store.read_state()
    slots: dict[str, Any] = {}
    for slot in SLOTS:
        if not store.slot_path(slot).is_dir():
            slots[slot] = None
            continue
        try:
            pkg = slot_package(store, slot)
            slots[slot] = {"valid": True, "version": pkg.version, "bundles": list(pkg.manifest.bundles)}
        except LprError as e:
            slots[slot] = {"valid": False, "error": str(e)}
    active = store.active()
    key = None
    if store.trusted_key.is_file():
        from sdk.package import key_id

        key = key_id(trusted_key(store))
    return {
        "root": str(store.root),
        "active": active,
        "active_version": (slots.get(active) or {}).get("version") if active else None,
        "pending": state.get("pending"),
        "installed": installed_mark(store, state),
        "trusted_key": key,
        "slots": slots,
        "history": state.get("history", [])[-5:],
    }


def cmd_trust(store: SlotStore, key_file: Path, replace: bool = False) -> dict[str, Any]:
    """Pin ``key_file`` as the trusted key. A different key already pinned is kept (trust is pinned: whoever can
    log in must not swap the fleet key) unless ``replace``, the explicit reset run on the device itself."""
    from sdk.package import key_id

    try:
        pub = load_public_key(key_file)
        with store.lock():
            if store.trusted_key.is_file() and not replace:
                old = key_id(trusted_key(store))
                if old != key_id(pub):
                    raise RefusedError(
                        f"this device already trusts key {old}, not {key_id(pub)}: a pinned key is not replaced "
                        f"by a deploy; on the device, run `python3 -m {AGENT_MODULE} trust --replace --root "
                        f"{store.root} NEW.pub` to re-key it"
                    )
                return {"ok": True, "action": "trust", "trusted_key": old, "changed": False}
            replace_file(store.trusted_key, key_file.read_bytes())
    finally:
        _discard_upload(store, key_file)
    return {"ok": True, "action": "trust", "trusted_key": key_id(pub), "changed": True}


def cmd_prepare(store: SlotStore, clean: bool = False) -> dict[str, Any]:
    """Make the layout and say where to upload; ``clean``: first remove what killed deploys left (under the
    lock), so that the free space the client then measures is what a deploy can use."""
    store.ensure_layout()
    removed = 0
    if clean:
        with store.lock():
            removed = store.clean_leftovers()
    try:
        sdk_version = version("lpr-sdk")
    except PackageNotFoundError:
        sdk_version = "0+unknown"
    return {
        "ok": True,
        "incoming": str(store.incoming),
        "python": sys.executable,
        "lpr_sdk": sdk_version,
        "removed_uploads": removed,
    }


# A loop that stops delivering frames for this long (a camera read that hangs) is restarted by systemd.
WATCHDOG_S = 120
NOTIFY = f"""Type=notify
NotifyAccess=main
# camera_loop.py says READY=1 once the camera is open and pets the watchdog with every frame.
TimeoutStartSec=180
WatchdogSec={WATCHDOG_S}"""


def render_unit(
    root: Path, python: str, script: Path, bundle: str, detector: str | None = None, notify: bool = True
) -> str:
    """The systemd unit text, from ``firmware_tools/templates/lpr-camera.service``.

    ``detector``: a detector folder of the package (else the camera loop uses the detector shipped with lpr-sdk).
    ``notify``: the script speaks systemd's notify protocol (the unit is ``Type=notify`` with a watchdog); else
    ``Type=simple``.
    """
    text = resources.files("firmware_tools").joinpath("templates", UNIT_NAME).read_text(encoding="utf-8")
    return string.Template(text).substitute(
        root=root,
        python=python,
        script=script,
        bundle=bundle,
        detector_args=f" --detector {root}/current/bundles/{detector}" if detector else "",
        service_type=NOTIFY if notify else "Type=simple",
        unit_name=UNIT_NAME,
        unit_path=root / UNIT_NAME,
    )


def cmd_service(store: SlotStore, script: Path, bundle: str | None, python: str) -> dict[str, Any]:
    with store.lock():
        active = store.active()
        if active is None:
            raise DeviceError("no active slot: deploy a package before installing the service")
        pkg = slot_package(store, active, check_models=False)
        names = list(pkg.manifest.bundles)
        if bundle is None:
            bundle = next((n for n, b in pkg.bundles.items() if b.manifest.kind == "recognizer"), names[0])
        elif bundle not in names:
            raise DeviceError(f"the active package has no bundle {bundle!r} (it has {', '.join(names)})")
        dest = store.root / "camera_loop.py"
        code = script.read_bytes()
        replace_file(dest, code, 0o755)
        _discard_upload(store, script)
        unit = store.root / UNIT_NAME
        detector = next(iter(pkg.detectors()), None)
        notify = b"NOTIFY_SOCKET" in code  # a loop of your own gets the watchdog only if it speaks sd_notify
        replace_file(unit, render_unit(store.root, python, dest, bundle, detector, notify).encode("utf-8"))
    return {
        "ok": True,
        "action": "service",
        "unit": str(unit),
        "script": str(dest),
        "bundle": bundle,
        "detector": detector,
        "watchdog_s": WATCHDOG_S if notify else None,
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.device_agent", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("prepare", "status", "rollback", "recover", "health", "deploy", "install", "activate", "trust"):
        p = sub.add_parser(name)
        p.add_argument("--root", required=True, type=Path)
        if name in ("deploy", "install"):
            p.add_argument("package", type=Path)
            p.add_argument("--trust-key", type=Path, help="install this public key as trusted.pub first")
            p.add_argument("--allow-downgrade", action="store_true", help="take a package older than the device's")
            p.add_argument("--insecure", action="store_true", help="take a package no trusted key checked")
        if name == "activate":
            p.add_argument("slot", choices=SLOTS)
        if name == "health":
            p.add_argument("--slot", default="current", choices=("current", *SLOTS))
        if name == "trust":
            p.add_argument("key", type=Path)
            p.add_argument("--replace", action="store_true", help="replace a different pinned key (re-key)")
        if name == "prepare":
            p.add_argument("--clean", action="store_true", help="remove what killed deploys left first")
    p = sub.add_parser("service")
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--script", required=True, type=Path)
    p.add_argument("--bundle")
    p.add_argument("--python", default=sys.executable)
    return ap


def run(argv: list[str] | None = None) -> int:
    """Run one agent command; return its exit code."""
    args = _parser().parse_args(argv)
    store = SlotStore(args.root)
    try:
        if args.command == "deploy":
            out = cmd_deploy(
                store,
                args.package,
                trust_key_file=args.trust_key,
                allow_downgrade=args.allow_downgrade,
                insecure=args.insecure,
            )
        elif args.command == "install":
            out = cmd_deploy(
                store,
                args.package,
                activate_it=False,
                trust_key_file=args.trust_key,
                allow_downgrade=args.allow_downgrade,
                insecure=args.insecure,
            )
        elif args.command == "activate":
            out = cmd_activate(store, args.slot)
        elif args.command == "health":
            out = health(store, args.slot)
        elif args.command == "service":
            out = cmd_service(store, args.script, args.bundle, args.python)
        elif args.command == "trust":
            out = cmd_trust(store, args.key, args.replace)
        elif args.command == "prepare":
            out = cmd_prepare(store, args.clean)
        else:
            out = {
                "status": cmd_status,
                "rollback": cmd_rollback,
                "recover": cmd_recover,
            }[args.command](store)
    except LprError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return (
            EXIT_REFUSED if isinstance(e, RefusedError) else EXIT_ROLLED_BACK if isinstance(e, RolledBackError) else 1
        )
    except OSError as e:
        print(f"error: {args.command} failed on the device: {e}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    with contextlib.suppress(BrokenPipeError):  # the deploy client went away; the work is done
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
