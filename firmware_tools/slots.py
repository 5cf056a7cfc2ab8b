"""The device's A/B slots: crash-safe writes and an atomic switch of the active slot.

Layout under the device root::

    slots/a/, slots/b/   two unpacked packages (package.json, bundles/...)
    current -> slots/a   the active slot: a relative symlink, only ever replaced by rename()
    state.json           pending switch (if a health check has not confirmed it yet) and a short history
    trusted.pub          optional Ed25519 public key: packages must then be signed by it
    incoming/            uploads waiting to be installed
    .lock                held (flock) by the agent while it changes anything

A slot is written into a temporary directory beside it, every file and directory fsync'ed, and renamed into
place; ``current`` is switched by renaming a new symlink over it. So whenever the process dies, ``current``
names a complete slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdk.errors import LprError

SLOTS = ("a", "b")
CRASH_ENV = "LPR_DEPLOY_CRASH_AT"
HISTORY = 20


class DeviceError(LprError):
    """A device-side step cannot be done (lock held, no slot to roll back to, unwritable root)."""


def crash_point(step: str) -> None:
    """Fault injection for tests: SIGKILL this process when ``$LPR_DEPLOY_CRASH_AT`` names ``step``."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that entries created, renamed or removed in it are on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file and fsync it (not its directory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_synced(tmp, data, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _remove(p: Path) -> None:
    """Remove a file, link or directory tree (what is already gone is fine)."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


class SlotStore:
    """The A/B slots under one device root.

    Args:
        root: the device root (e.g. ``/opt/lpr``); created if missing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self.slots_dir = self.root / "slots"
        self.current = self.root / "current"
        self.incoming = self.root / "incoming"
        self.state_path = self.root / "state.json"
        self.lock_path = self.root / ".lock"
        self.trusted_key = self.root / "trusted.pub"

    def ensure_layout(self) -> None:
        """Create the root, ``slots/`` and ``incoming/`` if missing."""
        try:
            for d in (self.root, self.slots_dir, self.incoming):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeviceError(f"cannot create the device root {self.root} ({e.strerror or e})") from e

    @contextlib.contextmanager
    def lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Hold the root's lock (released by the kernel if this process dies); wait up to ``timeout`` seconds."""
        self.ensure_layout()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DeviceError(f"{self.root} is locked by another deploy for {timeout:.0f} s") from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for operators and the fault benchmark
            yield
        finally:
            os.close(fd)

    def slot_path(self, slot: str) -> Path:
        return self.slots_dir / slot

    def active(self) -> str | None:
        """The active slot's name, or None if ``current`` is missing or points elsewhere."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = Path(target).name
        return name if name in SLOTS and Path(target).parent.name == "slots" else None

    def other(self, slot: str | None) -> str:
        """The slot that is not ``slot`` (``a`` if there is no active slot)."""
        return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]

    def clean_temporaries(self) -> None:
        """Remove leftovers of interrupted writes: ``slots/.*`` (``.X.new``, ``.X.old``), staged ``.current.*``
        symlinks and ``.*.tmp`` files of :func:`replace_file` (``.state.json.PID.tmp``, ...). Call it only
        under the lock: then no write of this root is under way."""
        if self.slots_dir.is_dir():
            for p in self.slots_dir.iterdir():
                if not p.name.startswith("."):
                    continue
                _remove(p)
        for pattern in (".current.*", ".*.tmp"):
            for p in self.root.glob(pattern):
                if not p.is_dir() or p.is_symlink():
                    p.unlink(missing_ok=True)

    def clean_uploads(self, keep: tuple[Path | None, ...] = ()) -> int:
        """Remove every upload in ``incoming/`` but ``keep`` (left by killed or failed deploys); return how many.

        An upload of a deploy that runs at this moment from another workstation is removed too: that deploy is
        then refused (its package is gone), the device unchanged.
        """
        if not self.incoming.is_dir():
            return 0
        kept = {p.absolute() for p in keep if p is not None}
        n = 0
        for p in self.incoming.iterdir():
            if p.absolute() not in kept:
                _remove(p)
                n += 1
        return n

    def clean_leftovers(self, keep: tuple[Path | None, ...] = ()) -> int:
        """:meth:`clean_temporaries` and :meth:`clean_uploads` (under the lock); return the uploads removed."""
        self.clean_temporaries()
        return self.clean_uploads(keep)

    def write_slot(self, slot: str, files: dict[str, bytes]) -> Path:
        """Replace slot ``slot`` (never the active one) with ``files``, crash-safely.

        Raises:
            DeviceError: ``slot`` is active.
        """
        if slot == self.active():
            raise DeviceError(f"slot {slot} is active; refusing to overwrite it")
        self.ensure_layout()
        self.clean_temporaries()
        tmp = self.slots_dir / f".{slot}.new"
        tmp.mkdir()
        names = sorted(files)
        dirs = {tmp}
        for n, name in enumerate(names):
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dirs.update(p for p in dest.parents if tmp in (p, *p.parents))
            write_synced(dest, files[name])
            if n == len(names) // 2:
                crash_point("slot_half_written")
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)
        crash_point("slot_written")
        final = self.slot_path(slot)
        if final.exists():
            old = self.slots_dir / f".{slot}.old"
            os.rename(final, old)
            fsync_dir(self.slots_dir)
            crash_point("old_slot_moved")
            shutil.rmtree(old)
        os.rename(tmp, final)
        fsync_dir(self.slots_dir)
        crash_point("slot_renamed")
        return final

    def activate(self, slot: str) -> None:
        """Make ``slot`` the active one: a new symlink renamed over ``current`` (atomic), then fsync the root."""
        if not self.slot_path(slot).is_dir():
            raise DeviceError(f"slot {slot} is empty; nothing to activate")
        tmp = self.root / f".current.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(f"slots/{slot}", tmp)
        crash_point("symlink_staged")
        os.replace(tmp, self.current)
        fsync_dir(self.root)

    def read_state(self) -> dict[str, Any]:
        """state.json (``{"pending": ..., "history": [...]}``); a fresh state if missing or unreadable."""
        try:
            d = json.loads(self.state_path.read_text(encoding="utf-8"))
            if isinstance(d, dict):
                d.setdefault("pending", None)
                d.setdefault("history", [])
                return d
        except (OSError, ValueError):
            pass
        return {"pending": None, "history": []}

    def write_state(self, state: dict[str, Any]) -> None:
        state["history"] = state.get("history", [])[-HISTORY:]
        replace_file(self.state_path, (json.dumps(state, indent=2) + "\n").encode("utf-8"))

    def record(self, state: dict[str, Any], **event: Any) -> None:
        """Append an event (with the UTC time) to the history and write the state."""
        event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state.setdefault("history", []).append(event)
        self.write_state(state)
