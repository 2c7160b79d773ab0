"""Fetching an exported package (`.bentomodel`) from where a ModelDeployment says it is.

Sources: `https://` and `http://` (httpx; a bearer token from $HTTP_BEARER_TOKEN when
set), `s3://bucket/key` (boto3, imported only for s3 and present in the operator
image; credentials and endpoint from the standard AWS_* variables), and a local path
(a mounted volume claim). A URI or path ending in `/` names a folder holding exactly
one `.bentomodel` file. Every failure is a `PackagingError` naming the source.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from pitstop.packaging import errors, store

TOKEN_VARIABLE = "HTTP_BEARER_TOKEN"
TIMEOUT = httpx.Timeout(30.0, read=300.0)


def fetch(source: str, destination: Path) -> Path:
    """Copy the package at `source` into the folder `destination`; return the file."""
    destination.mkdir(parents=True, exist_ok=True)
    scheme = urlparse(source).scheme
    if scheme in ("http", "https"):
        return _http(source, destination)
    if scheme == "s3":
        return _s3(source, destination)
    if scheme in ("", "file"):
        return _local(Path(urlparse(source).path if scheme else source), destination)
    raise errors.PackagingError(f"source {source}: unsupported scheme {scheme!r}")


def _target(destination: Path, name: str) -> Path:
    if not name.endswith(store.EXPORT_SUFFIX):
        name += store.EXPORT_SUFFIX
    return destination / Path(name).name


def _http(url: str, destination: Path) -> Path:
    headers = {}
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        headers["Authorization"] = f"Bearer {token.strip()}"
    if url.endswith("/"):
        raise errors.PackagingError(
            f"source {url}: an http(s) source must name the {store.EXPORT_SUFFIX} file"
        )
    target = _target(destination, urlparse(url).path.rsplit("/", 1)[-1] or "package")
    try:
        with httpx.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=TIMEOUT
        ) as response:
            if response.status_code != 200:
                raise errors.PackagingError(f"source {url}: HTTP {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
    except httpx.HTTPError as error:
        raise errors.PackagingError(f"source {url}: {error}") from error
    return target


def _s3(uri: str, destination: Path) -> Path:
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    try:
        boto3: Any = importlib.import_module("boto3")
    except ImportError as error:
        raise errors.PackagingError(f"source {uri}: s3 sources need boto3 installed") from error
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    try:
        if key == "" or key.endswith("/"):
            listing = client.list_objects_v2(Bucket=bucket, Prefix=key)
            found = [
                item["Key"]
                for item in listing.get("Contents", [])
                if item["Key"].endswith(store.EXPORT_SUFFIX) and "/" not in item["Key"][len(key) :]
            ]
            key = _only(uri, found)
        target = _target(destination, key.rsplit("/", 1)[-1])
        client.download_file(bucket, key, str(target))
    except errors.PackagingError:
        raise
    except Exception as error:  # botocore's errors share no base class worth naming
        raise errors.PackagingError(f"source {uri}: {error}") from error
    return target


def _local(path: Path, destination: Path) -> Path:
    if path.is_dir():
        path = path / _only(str(path), [p.name for p in path.glob(f"*{store.EXPORT_SUFFIX}")])
    if not path.is_file():
        raise errors.PackagingError(f"source {path} does not exist")
    target = _target(destination, path.name)
    shutil.copyfile(path, target)
    return target


def _only(source: str, names: list[str]) -> str:
    if len(names) != 1:
        raise errors.PackagingError(
            f"source {source} must hold exactly one {store.EXPORT_SUFFIX} file, found {len(names)}"
        )
    return names[0]
