"""The krew plugin's archive, built the same to the byte on every machine, so that
manifests/krew/pitstop.yaml can carry its sha256 and anyone can check it.

Pitstop is a Python package, so the archive holds no binary: only the launcher
(manifests/krew/kubectl-pitstop, which runs the `kubectl-pitstop` that pip installed)
and the LICENSE the krew index asks for. One archive serves every platform.

Same bytes everywhere: the members go in a fixed order with a fixed mode, mtime 0 and
owner 0 in plain ustar headers (no pax records), and the gzip wrapper is written here,
with mtime 0 and *stored* (uncompressed) deflate blocks. Compressed bytes would depend
on the zlib that Python links (zlib-ng, which some distributions ship as zlib, deflates
differently), and the archive is a few kilobytes.

It reads the two files and writes the archive; it does nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import struct
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

MANIFEST = Path("manifests/krew/pitstop.yaml")
ARCHIVE_NAME = "kubectl-pitstop.tar.gz"
# What krew links into $KREW_ROOT/bin: the manifest's `bin`.
LAUNCHER = "kubectl-pitstop"

# (name in the archive, path in the repository, mode), in archive order.
MEMBERS = (
    (LAUNCHER, Path("manifests/krew/kubectl-pitstop"), 0o755),
    ("LICENSE", Path("LICENSE"), 0o644),
)

_STORED_BLOCK = 0xFFFF  # the most a stored deflate block holds


def tar(files: Sequence[tuple[str, bytes, int]]) -> bytes:
    """An uncompressed tar of (name, content, mode), with nothing of the machine in it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, content, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, 0
            info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def gzip_stored(data: bytes) -> bytes:
    """A gzip member (RFC 1952) holding `data` in stored deflate blocks (RFC 1951 3.2.4)."""
    # Magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" (as Python writes).
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    chunks = [data[i : i + _STORED_BLOCK] for i in range(0, len(data), _STORED_BLOCK)] or [b""]
    blocks = b"".join(
        # Each block starts on a byte: BFINAL in bit 0, BTYPE 00, then LEN and ~LEN.
        bytes([index == len(chunks) - 1]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF)
        + chunk
        for index, chunk in enumerate(chunks)
    )  # fmt: skip
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + blocks + trailer


def build(repo: Path) -> bytes:
    """The plugin's archive, from the launcher and LICENSE of the checkout at `repo`.
    Both are text: line ends go in as LF whatever the checkout made of them (a Windows
    checkout may turn them into CRLF), so the sha256 stays the manifest's."""
    files = [(name, (repo / path).read_bytes().replace(b"\r\n", b"\n"), mode)
             for name, path, mode in MEMBERS]  # fmt: skip
    return gzip_stored(tar(files))


def sha256(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pitstop.krew",
        description="Write the krew plugin's archive and print its sha256 (as the manifest has it).",
    )
    parser.add_argument("output", nargs="?", type=Path, default=Path("dist") / ARCHIVE_NAME)
    parser.add_argument("--repo", type=Path, default=Path(), help="a Pitstop checkout (default: .)")
    args = parser.parse_args(argv)
    missing = [str(path) for _, path, _ in MEMBERS if not (args.repo / path).is_file()]
    if missing:
        parser.error(f"not a Pitstop checkout: {args.repo.resolve()} has no {', '.join(missing)}")
    archive = build(args.repo)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(archive)
    print(f"{sha256(archive)}  {args.output}")


if __name__ == "__main__":
    main()
