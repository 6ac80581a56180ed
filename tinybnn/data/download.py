"""The download cache: where data set files live, how they arrive, and how they are checked.

Where the cache is
------------------
:func:`cache_dir` answers, in this order:

1. the environment variable ``TINYBNN_DATA``, if it is set (``~`` is expanded);
2. the ``datasets/`` folder next to the ``tinybnn`` package, if that folder exists beside a
   ``pyproject.toml`` -- the case of a repository checkout and of an editable install
   (``pip install -e .``); in ``site-packages`` a ``datasets/`` folder is another package's;
3. otherwise ``~/.cache/tinybnn``.

Each data set keeps its files in its own sub-folder (``mnist/``, ``fashion_mnist/``, ``cifar10/``,
``cifar100/``), exactly as they were published.

What is promised
----------------
- A file is downloaded only when it is missing. A file already in the cache is checked against its
  published MD5 checksum on every use and is never downloaded again, overwritten or deleted.
- A download is written to a temporary file in the same folder, checked, and only then renamed into
  place with :func:`os.replace`. A download that fails, is interrupted, or arrives with the wrong
  checksum leaves nothing behind.
- A cached file that fails its checksum raises :class:`~tinybnn.errors.DatasetError`, naming the
  file and the fix: delete it, and the next call downloads it again.

Tests replace :func:`fetch_url` (the only function that touches the network) by a fake that serves
local bytes.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tinybnn.errors import DatasetError

#: The repository's ``datasets/`` folder, seen from ``tinybnn/data/download.py``.
PACKAGE_DATASETS_DIR = Path(__file__).resolve().parents[2] / "datasets"

#: Where the cache goes when neither ``TINYBNN_DATA`` nor :data:`PACKAGE_DATASETS_DIR` applies.
USER_CACHE_DIR = Path("~/.cache/tinybnn")

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name in the cache, its published MD5, and where to get it.

    ``urls`` are mirrors, tried in order until one delivers a file with the right checksum.
    """

    name: str
    md5: str
    urls: tuple[str, ...]


def cache_dir() -> Path:
    """The root folder of the download cache (see the module docstring for the rules)."""
    override = os.environ.get("TINYBNN_DATA")
    if override:
        return Path(override).expanduser()
    in_checkout = (PACKAGE_DATASETS_DIR.parent / "pyproject.toml").is_file()
    if in_checkout and PACKAGE_DATASETS_DIR.is_dir():
        return PACKAGE_DATASETS_DIR
    return USER_CACHE_DIR.expanduser()


def md5sum(path: str | os.PathLike) -> str:
    """The MD5 digest of a file, as 32 lowercase hex digits (read in 1 MiB chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_url(url: str, out: BinaryIO) -> None:
    """Download ``url`` and write its bytes to the open binary file ``out``.

    Raises ``OSError`` (``urllib.error.URLError`` is one) or ``http.client.HTTPException`` when
    the transfer fails. A progress bar
    is shown on an interactive terminal.
    """
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "tinybnn"})
    with urllib.request.urlopen(request, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None,
                  file=sys.stderr) as progress:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                out.write(chunk)
                progress.update(len(chunk))


def verify_file(path: Path, md5: str) -> None:
    """Raise :class:`DatasetError` unless the file at ``path`` has the MD5 digest ``md5``."""
    actual = md5sum(path)
    if actual != md5.lower():
        raise DatasetError(
            f"{path} fails its checksum (MD5 {actual}, published {md5}): the file is corrupt or "
            f"incomplete. Delete it and run again to download it anew."
        )


def ensure_file(remote: RemoteFile, folder: str | os.PathLike, download: bool = True) -> Path:
    """Return the path of ``remote`` inside ``folder``, downloading it first if it is missing.

    A file already there is checked against ``remote.md5`` and used as it is (never downloaded
    again, never deleted). A missing file is downloaded when ``download`` is true, else a
    :class:`DatasetError` says where to put it.
    """
    folder = Path(folder)
    path = folder / remote.name
    if path.exists():
        verify_file(path, remote.md5)
        return path
    if not download:
        raise DatasetError(
            f"{path} is missing. Call again with download=True, or download it yourself from "
            f"{remote.urls[0]} and place it there."
        )
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in remote.urls:
        try:
            _download_into_place(url, path, remote.md5)
            return path
        except (OSError, ValueError, http.client.HTTPException, DatasetError) as error:
            failures.append(f"{url}: {error}")
    raise DatasetError(
        f"could not download {remote.name} into {folder} ({'; '.join(failures)}). Check the "
        f"network connection and run again, or download the file yourself and place it at {path}."
    )


def _download_into_place(url: str, path: Path, md5: str) -> None:
    """Download ``url`` to a temporary file next to ``path``, check it, rename it to ``path``.

    Whatever goes wrong (network error, wrong checksum, Ctrl-C), the temporary file is removed and
    ``path`` is left untouched.
    """
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    temporary = Path(handle.name)
    try:
        with handle:
            fetch_url(url, handle)
        actual = md5sum(temporary)
        if actual != md5.lower():
            raise DatasetError(
                f"the download of {path.name} fails its checksum (MD5 {actual}, published {md5}); "
                f"it was discarded"
            )
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

