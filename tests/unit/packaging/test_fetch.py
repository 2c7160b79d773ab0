"""Fetching an exported package from a path (a mounted claim) or an unsupported source."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from pitstop.packaging import errors, fetch


def test_a_file_or_a_folder_with_exactly_one_package(tmp_path: Path) -> None:
    claim = tmp_path / "claim" / "fraud" / "7"
    claim.mkdir(parents=True)
    (claim / "fraud-7.bentomodel").write_bytes(b"package")
    (claim / "README").write_text("not a package")
    got = fetch.fetch(str(claim / "fraud-7.bentomodel"), tmp_path / "a")
    assert got.read_bytes() == b"package"
    got = fetch.fetch(f"{claim}/", tmp_path / "b")
    assert got.name == "fraud-7.bentomodel"

    (claim / "fraud-8.bentomodel").write_bytes(b"other")
    with pytest.raises(
        errors.PackagingError, match=re.escape("exactly one .bentomodel file, found 2")
    ):
        fetch.fetch(f"{claim}/", tmp_path / "c")


def test_missing_and_unsupported_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(errors.PackagingError, match="does not exist"):
        fetch.fetch(str(tmp_path / "nothing.bentomodel"), tmp_path / "out")
    with pytest.raises(errors.PackagingError, match="unsupported scheme 'gs'"):
        fetch.fetch("gs://bucket/fraud.bentomodel", tmp_path / "out")
    with pytest.raises(errors.PackagingError, match=re.escape("must name the .bentomodel file")):
        fetch.fetch("https://models.example.com/fraud/", tmp_path / "out")


def test_an_unreachable_server_is_a_packaging_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/fraud.bentomodel"
    with pytest.raises(errors.PackagingError, match=re.escape(f"source {url}")):
        fetch.fetch(url, tmp_path / "out")
