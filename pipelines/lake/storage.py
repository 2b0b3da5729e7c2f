"""Where the lake lives: a local folder or an object-store URI, and how to reach its files."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pyarrow.fs as pafs


@dataclass(frozen=True, kw_only=True)
class LakeConfig:
    """Lake root and storage options (passed to delta-rs and to pyarrow's filesystem)."""

    root: str = "lake"
    """Local folder (relative to the working directory) or a URI such as s3://bucket/lake."""
    storage_options: dict[str, str] = field(default_factory=dict)
    """delta-rs storage options, e.g. AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID."""


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def table_uri(cfg: LakeConfig, name: str) -> str:
    """URI of table `zone.table` under the lake root: <root>/<zone>/<table>."""
    zone, sep, table = name.partition(".")
    if not sep or not zone or not table or "/" in name:
        raise ValueError(f"table name {name!r} must look like zone.table, e.g. bronze.wikipedia")
    root = cfg.root if is_remote(cfg.root) else os.path.abspath(cfg.root.removeprefix("file://"))
    return f"{root.rstrip('/')}/{zone}/{table}"


def filesystem(uri: str, storage_options: dict[str, str]) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for `uri` and the path inside it, honouring delta-rs storage options."""
    if not is_remote(uri):
        return pafs.LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        opts = {k.upper(): v for k, v in storage_options.items()}
        endpoint = opts.get("AWS_ENDPOINT_URL") or opts.get("AWS_ENDPOINT")
        kwargs = {
            "access_key": opts.get("AWS_ACCESS_KEY_ID"),
            "secret_key": opts.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": opts.get("AWS_SESSION_TOKEN"),
            "region": opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION"),
        }
        if endpoint:
            ep = urlparse(endpoint)
            kwargs["endpoint_override"] = ep.netloc or ep.path
            kwargs["scheme"] = ep.scheme or "https"
        fs = pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})
        return fs, f"{parsed.netloc}{parsed.path}"
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path
