"""The one hardened reader of ``.tar.gz`` archives (bundles and packages): refuse before reading, never after.

An archive comes from a download, a USB stick or a deploy, so it is read as hostile:

- every member's header is checked before its data is touched: regular files and directories only (no links,
  devices, FIFOs or sparse files), a safe relative name (no absolute path, no ``..``, no backslash, no NUL),
  no name twice, at most ``max_members`` members and ``max_bytes`` bytes of file data in all;
- the headers that tarfile reads whole before handing back a member (pax extended headers, GNU long names) are
  capped at ``MAX_META_BYTES`` from their own header, so a 1 KiB archive claiming a 3 GiB pax header or member
  costs nothing;
- a member's data is read only once all of the above passed for it, so the memory taken is at most
  ``max_bytes`` plus one header.

Anything refused raises the caller's error class (a :class:`~sdk.errors.LprError`) with one line.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from sdk.errors import LprError

# The largest pax extended header or GNU long name/link accepted: real ones hold a path and a few fields.
MAX_META_BYTES = 64 * 1024
_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _Refused(Exception):
    """Raised from inside tarfile's header parsing; turned into the caller's error class."""


class _CheckedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses an oversized pax/GNU metadata header, or a sparse member, before tarfile reads it.

    ``_proc_member`` is where tarfile reads such a header's whole data into memory (``fileobj.read(size)``); it
    has had this name and role since Python 3.0, and ``tarfile.open(tarinfo=...)`` is the documented hook."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        if self.type in _META_TYPES and self.size > MAX_META_BYTES:
            raise _Refused(f"a {self.size}-byte extended header (more than {MAX_META_BYTES})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _Refused(f"{self.name!r} is a sparse file")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def safe_name(name: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it is absolute, climbs out (``..``), holds a
    backslash or NUL, or is empty."""
    if not name or "\\" in name or "\0" in name:
        return None
    p = PurePosixPath(name)
    parts = [s for s in p.parts if s != "."]
    if p.is_absolute() or not parts or ".." in parts:
        return None
    return "/".join(parts)


def read_tar(
    path: str | Path,
    *,
    max_members: int,
    max_bytes: int,
    error: type[LprError],
    what: str = "archive",
) -> dict[str, bytes]:
    """Every regular file of a tar archive (any compression tarfile reads) by its clean relative path.

    Args:
        path: the archive.
        max_members: members allowed, directories included.
        max_bytes: bytes of file data allowed in all (each member's size is checked from its header first).
        error: the class raised (e.g. ``BundleError``, ``PackageError``).
        what: what the archive should be, for messages ("bundle archive", "package archive").

    Raises:
        error: unreadable, truncated or corrupt; a link, device, sparse file or unsafe or duplicate name; too many
            members or bytes.
    """
    p = Path(path)
    files: dict[str, bytes] = {}
    total = members = 0
    try:
        with tarfile.open(p, "r:*", tarinfo=_CheckedTarInfo) as tar:
            while (m := tar.next()) is not None:
                members += 1
                if members > max_members:
                    raise error(f"{p}: more than {max_members} members; not a {what}")
                name = safe_name(m.name)
                if name is None:
                    raise error(f"{p}: unsafe path {m.name!r} in the {what}; refusing it")
                if m.isdir():
                    continue
                if not m.isfile() or m.sparse is not None:
                    raise error(f"{p}: {name} is not a regular file (links are not allowed in a {what})")
                if name in files:
                    raise error(f"{p}: {name} appears twice in the {what}")
                total += m.size
                if total > max_bytes:
                    raise error(f"{p}: more than {max_bytes} bytes of files ({name}: {m.size}); not a {what}")
                f = tar.extractfile(m)
                data = f.read() if f else b""
                if len(data) != m.size:
                    raise error(f"{p}: {name} is truncated ({len(data)} of {m.size} bytes); re-copy the {what}")
                files[name] = data
    except _Refused as e:
        raise error(f"{p}: {e}; not a {what}") from None
    except (tarfile.TarError, OSError, EOFError, ValueError, OverflowError) as e:
        msg = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise error(f"{p}: not a readable {what}, truncated or corrupt ({msg}); re-copy it") from e
    return files


def tar_names(path: str | Path, max_members: int) -> set[str]:
    """The clean names of the first ``max_members`` members of an archive, reading headers only (with the caps
    of :func:`read_tar` on extended headers); those before the error when it is unreadable or refused."""
    names: set[str] = set()
    try:
        with tarfile.open(Path(path), "r:*", tarinfo=_CheckedTarInfo) as tar:
            while len(names) < max_members and (m := tar.next()) is not None:
                names.add(safe_name(m.name) or "")
    except (_Refused, tarfile.TarError, OSError, EOFError, ValueError, OverflowError):
        pass
    return names - {""}
