"""The one hardened archive reader (sdk/archive.py) behind bundles and packages: hostile archives built here, each
refused from its headers with one line, before its data is read."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from conftest import REPO

from sdk.archive import MAX_META_BYTES, read_tar, safe_name, tar_names
from sdk.bundle import MAX_BUNDLE_MEMBERS, load_bundle, pack_bundle
from sdk.errors import BundleError
from sdk.package import PackageError, is_package, read_package_files

GIB3 = 3 << 30
LATIN = REPO / "models" / "latin"


def _member(name: str, data: bytes = b"x", **kw) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A gzipped tar written block by block, so a header may claim what its data is not (no data follows a
    header that claims more than it has: the archive ends there, as a bomb's would after its first header)."""
    out = io.BytesIO()
    for info, data in members:
        out.write(info.tobuf(fmt, "utf-8", "surrogateescape"))
        out.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    out.write(b"\0" * 2 * tarfile.BLOCKSIZE)
    return gzip.compress(out.getvalue())


def _huge() -> list:
    info, _ = _member("model.tflite", size=GIB3)  # 3 GiB claimed by a header in a 1 KiB file
    return [_member("manifest.json", b"{}"), (info, b"")]


def _pax_header_bomb() -> list:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, GIB3  # tarfile would read the whole pax header into memory
    return [(info, b"")]


def _pax_size_bomb() -> list:
    info, _ = _member("model.tflite", b"")
    info.pax_headers = {"size": str(GIB3)}  # the pax record overrides the ustar size field
    return [(info, b"")]


def _sparse() -> list:
    info, _ = _member("model.tflite", b"", size=0)
    info.type = tarfile.GNUTYPE_SPARSE
    return [(info, b"")]


def _link(kind: bytes, target: str) -> list:
    info, _ = _member("model.tflite", b"", size=0, linkname=target)
    info.type = kind
    return [_member("manifest.json", b"{}"), (info, b"")]


def _device() -> list:
    info, _ = _member("model.tflite", b"", size=0)
    info.type = tarfile.CHRTYPE
    return [(info, b"")]


HOSTILE = {
    # name: (members, tar format, words in the one-line error)
    "3 GiB member claimed by a header": (_huge(), tarfile.GNU_FORMAT, "more than"),
    "3 GiB pax header": (_pax_header_bomb(), tarfile.USTAR_FORMAT, "extended header"),
    "3 GiB size in a pax record": (_pax_size_bomb(), tarfile.PAX_FORMAT, "more than"),
    "sparse member": (_sparse(), tarfile.GNU_FORMAT, "sparse"),
    "symlink": (_link(tarfile.SYMTYPE, "/etc/passwd"), tarfile.GNU_FORMAT, "not a regular file"),
    "hard link": (_link(tarfile.LNKTYPE, "manifest.json"), tarfile.GNU_FORMAT, "not a regular file"),
    "device": (_device(), tarfile.GNU_FORMAT, "not a regular file"),
    "parent traversal": ([_member("../manifest.json")], tarfile.GNU_FORMAT, "unsafe path"),
    "nested traversal": ([_member("a/../../x")], tarfile.GNU_FORMAT, "unsafe path"),
    "absolute name": ([_member("/etc/manifest.json")], tarfile.GNU_FORMAT, "unsafe path"),
    "backslash name": ([_member("..\\manifest.json")], tarfile.GNU_FORMAT, "unsafe path"),
    "duplicate name": ([_member("manifest.json"), _member("./manifest.json")], tarfile.GNU_FORMAT, "twice"),
    "too many members": ([_member(f"f{i}") for i in range(600)], tarfile.GNU_FORMAT, "members"),
}


def _write(tmp_path: Path, raw: bytes, name: str = "hostile.tar.gz") -> Path:
    p = tmp_path / name
    p.write_bytes(raw)
    return p


@pytest.mark.parametrize("reader", ["bundle", "package"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archives_are_refused_from_their_headers(tmp_path, reader, case):
    members, fmt, words = HOSTILE[case]
    path = _write(tmp_path, _tar(members, fmt))
    assert path.stat().st_size < 8192  # small files: whatever they claim is in their headers
    load, error = (load_bundle, BundleError) if reader == "bundle" else (read_package_files, PackageError)
    tracemalloc.start()
    try:
        with pytest.raises(error) as e:
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert words in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
    assert peak < 32 << 20  # nothing claimed was allocated
    assert not is_package(path) or reader == "bundle"


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "not a readable"),  # a gzip header, then garbage
        (b"this is not an archive at all" * 20, "not a readable"),
        (b"", "not a readable"),
    ],
)
def test_unreadable_archives_are_refused(tmp_path, raw, words):
    path = _write(tmp_path, raw)
    for load in (load_bundle, read_package_files):
        with pytest.raises(BundleError, match=words):
            load(path)


def test_a_truncated_archive_is_refused(tmp_path):
    archive = pack_bundle(LATIN, tmp_path / "latin.tar.gz")
    path = _write(tmp_path, archive.read_bytes()[: archive.stat().st_size // 2], "cut.tar.gz")
    with pytest.raises(BundleError, match="truncated|not a readable") as e:
        load_bundle(path)
    assert "\n" not in str(e.value)


def test_a_bundle_archive_packed_with_its_folder_still_loads_but_not_two_models(tmp_path):
    good = tmp_path / "folder.tar.gz"
    with tarfile.open(good, "w:gz") as tar:
        tar.add(LATIN, arcname="latin")  # directories, pax mtime records and all, as `tar czf` would
    assert load_bundle(good).manifest == load_bundle(LATIN).manifest
    model = (LATIN / "model.tflite").read_bytes()
    two = [_member("a/manifest.json", (LATIN / "manifest.json").read_bytes()), _member("a/model.tflite", model)]
    two.append(_member("b/model.tflite", model))
    with pytest.raises(BundleError, match="two files named model.tflite"):
        load_bundle(_write(tmp_path, _tar(two)))


def test_caps_count_members_and_bytes(tmp_path):
    files = [_member(f"f{i}", b"ab") for i in range(MAX_BUNDLE_MEMBERS + 1)]
    with pytest.raises(BundleError, match=f"more than {MAX_BUNDLE_MEMBERS} members"):
        load_bundle(_write(tmp_path, _tar(files)))
    path = _write(tmp_path, _tar([_member("a", b"x" * 600), _member("b", b"y" * 600)]), "two.tar.gz")
    assert read_tar(path, max_members=2, max_bytes=1200, error=BundleError) == {"a": b"x" * 600, "b": b"y" * 600}
    with pytest.raises(BundleError, match="more than 1000 bytes"):
        read_tar(path, max_members=2, max_bytes=1000, error=BundleError)
    big_name = _member("d/" + "n" * (MAX_META_BYTES // 2))  # a long name (GNU long-name header) within the cap
    assert tar_names(_write(tmp_path, _tar([big_name]), "long.tar.gz"), 4) == {big_name[0].name}


def test_directory_bundles_are_size_checked_before_reading(tmp_path):
    bundle = tmp_path / "latin"
    bundle.mkdir()
    (bundle / "manifest.json").write_bytes((LATIN / "manifest.json").read_bytes())
    with open(bundle / "model.tflite", "wb") as f:  # a 3 GiB sparse file: costs no disk, would cost 3 GiB of memory
        f.truncate(GIB3)
    with pytest.raises(BundleError, match="over the"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    "name, clean",
    [("a/b", "a/b"), ("./a//b", "a/b"), ("a/./b", "a/b"), ("../a", None), ("/a", None), ("", None), (".", None)],
)
def test_safe_name(name, clean):
    assert safe_name(name) == clean
