"""``lpr-sdk deploy``: push a package to a device over SSH, roll a device back, or show its slots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sdk.cli._common import echo_json, json_option
from sdk.errors import LprError

EXAMPLE_LOOP = Path(__file__).resolve().parents[2] / "examples" / "camera_loop.py"


def _echo_status(dest: str, s: dict[str, Any]) -> None:
    click.echo(f"{'device':<12} {dest}:{s['root']}")
    active = s["active"]
    click.echo(f"{'active':<12} " + (f"slot {active}, version {s['active_version']}" if active else "none"))
    for name, slot in s["slots"].items():
        if slot is None:
            line = "empty"
        elif slot["valid"]:
            line = f"version {slot['version']}, bundles {', '.join(slot['bundles'])}"
        else:
            line = f"INVALID: {slot['error']}"
        click.echo(f"{'slot ' + name:<12} {line}{'  (active)' if name == active else ''}")
    pending = s["pending"]
    click.echo(f"{'pending':<12} " + (f"slot {pending['slot']} not yet confirmed" if pending else "none"))
    taken = s.get("installed")
    if taken:
        click.echo(f"{'newest':<12} version {taken['version']}, created {taken['created']} (older ones are refused)")
    key = s["trusted_key"]
    click.echo(f"{'trusted key':<12} " + (key or "none (packages need not be signed)"))
    for e in s["history"]:
        detail = f" ({e['detail']})" if e.get("detail") else ""
        click.echo(f"{'history':<12} {e['time']} {e['action']} {e.get('version') or ''} {e['result']}{detail}")


@click.command("deploy", short_help="Push a package to a device over SSH, with A/B slots and rollback.")
@click.argument("args", nargs=-1, required=True, metavar="[PKG] USER@HOST")
@click.option("--port", type=click.IntRange(1, 65535), help="SSH port.")
@click.option("--identity", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="SSH private key.")
@click.option(
    "--known-hosts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check the device's host key strictly against this file.  [default: accept a new host, refuse a changed one]",
)
@click.option("--root", default="/opt/lpr", show_default=True, help="Device root holding the A/B slots.")
@click.option("--python", "python", default="python3", show_default=True, help="The device's Python with lpr-sdk.")
@click.option("-o", "--ssh-option", "ssh_options", multiple=True, help="Extra ssh -o option (repeatable).")
@click.option(
    "--legacy-scp",
    is_flag=True,
    help="Copy with the legacy SCP protocol (scp -O), for devices without an SFTP server.",
)
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify the signature here and make this the device's trusted key (signatures required from then on).",
)
@click.option(
    "--allow-downgrade",
    is_flag=True,
    help="Let the device take a package created before the one it last took (recorded in its history).",
)
@click.option(
    "--reserve",
    "reserve_mib",
    type=click.FloatRange(0),
    default=16,
    show_default=True,
    help="MiB to leave free on the device beyond what the deploy writes; checked before copying.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Let a device without a trusted key take the package unchecked (it refuses it otherwise).",
)
@click.option("--rollback", is_flag=True, help="Switch the device back to its other slot (health-checked).")
@click.option("--status", is_flag=True, help="Show the device's slots, active version and recent history.")
@click.option("--service", is_flag=True, help="Also write the systemd unit (and camera loop) into the device root.")
@click.option(
    "--camera-loop",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Script the unit runs.  [default: examples/camera_loop.py of this checkout]",
)
@click.option("--service-bundle", help="Bundle the unit runs.  [default: the package's first recogniser]")
@json_option
def deploy_cmd(
    args: tuple[str, ...],
    port: int | None,
    identity: Path | None,
    known_hosts: Path | None,
    root: str,
    python: str,
    ssh_options: tuple[str, ...],
    legacy_scp: bool,
    pubkey: Path | None,
    allow_downgrade: bool,
    reserve_mib: float,
    insecure: bool,
    rollback: bool,
    status: bool,
    service: bool,
    camera_loop: Path | None,
    service_bundle: str | None,
    as_json: bool,
) -> None:
    """Deploy PKG to a device over SSH: copy it, verify it there with the device's own lpr-sdk, write it into
    the inactive A/B slot, switch the active slot atomically, health-check it, and roll back if the check fails.

    \b
    lpr-sdk deploy PKG USER@HOST [--service]   update the device
    lpr-sdk deploy --rollback USER@HOST        switch back to the other slot
    lpr-sdk deploy --status USER@HOST          show the slots
    lpr-sdk deploy --service USER@HOST         only (re)write the systemd unit for the active slot
    """
    from firmware_tools import remote
    from sdk.package import load_package

    if rollback and status:
        raise click.UsageError("give --rollback or --status, not both")
    if (rollback or status) and len(args) != 1:
        raise click.UsageError("--rollback and --status take only USER@HOST")
    if not (rollback or status) and not (len(args) == 2 or (len(args) == 1 and service)):
        raise click.UsageError("give PKG USER@HOST (or --rollback/--status/--service USER@HOST)")
    dest = args[-1]
    target = remote.Target(
        dest,
        root=root,
        port=port,
        identity=identity,
        known_hosts=known_hosts,
        python=python,
        ssh_options=tuple(ssh_options),
        legacy_scp=legacy_scp,
    )
    if status:
        s = remote.run_agent(target, "status")
        if as_json:
            echo_json(s)
        else:
            _echo_status(dest, s)
        return
    if rollback:
        r = remote.run_agent(target, "rollback")
        if as_json:
            echo_json(r)
        else:
            click.echo(f"{dest}: rolled back to slot {r['active']}, version {r['version']}")
        return
    results: dict[str, Any] = {}
    if len(args) == 2:
        package = Path(args[0])
        local = load_package(package, pubkey)  # fail here, before anything is copied
        r = results["deploy"] = remote.deploy(
            target, package, pubkey, allow_downgrade, int(reserve_mib * (1 << 20)), insecure
        )
        if not as_json:
            click.echo(
                f"{dest}: version {local.version} active in slot {r['active']} (health check passed; "
                f"previous slot: {r['previous'] or 'none'}{'; a downgrade, allowed' if r.get('downgrade') else ''})"
            )
    if service:
        script = camera_loop or EXAMPLE_LOOP
        if not script.is_file():
            raise LprError(f"no camera loop script at {script}: pass --camera-loop PATH")
        r = results["service"] = remote.install_service(target, script, service_bundle)
        if not as_json:
            det = f" and detector {r['detector']}" if r.get("detector") else ""
            click.echo(
                f"{dest}: wrote {r['unit']} (runs {r['script']} on bundle {r['bundle']}{det} of the active slot); "
                f"enable it on the device: sudo systemctl link {r['unit']} && sudo systemctl enable --now "
                f"{Path(r['unit']).name}"
            )
    if as_json:
        echo_json(results)
