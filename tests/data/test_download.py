"""The download cache: where it is, atomic downloads, checksums, and never losing a valid file."""

import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from tinybnn.data import download
from tinybnn.data.download import RemoteFile, cache_dir, ensure_file, md5sum
from tinybnn.data.download import fetch_url as real_fetch_url  # before conftest replaces it
from tinybnn.errors import DatasetError

from .formats import md5

PAYLOAD = b"published bytes " * 1000
REMOTE = RemoteFile(
    name="train-images-idx3-ubyte.gz",
    md5=md5(PAYLOAD),
    urls=("https://mirror.one/train-images-idx3-ubyte.gz",
          "https://mirror.two/train-images-idx3-ubyte.gz"),
)


# ---------------------------------------------------------------------------- where the cache is


def test_tinybnn_data_overrides_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYBNN_DATA", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("TINYBNN_DATA", "~/my-data")
    assert cache_dir() == Path.home() / "my-data"


def test_default_is_the_datasets_folder_of_a_checkout(monkeypatch, tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    monkeypatch.delenv("TINYBNN_DATA")
    monkeypatch.setattr(download, "PACKAGE_DATASETS_DIR", tmp_path / "datasets")
    assert cache_dir() == tmp_path / "datasets"


@pytest.mark.parametrize("layout", ["no datasets folder", "site-packages"])
def test_otherwise_the_default_is_the_user_cache(monkeypatch, tmp_path, layout):
    if layout == "site-packages":  # e.g. another package called `datasets`, no pyproject.toml
        (tmp_path / "datasets").mkdir()
    monkeypatch.delenv("TINYBNN_DATA")
    monkeypatch.setattr(download, "PACKAGE_DATASETS_DIR", tmp_path / "datasets")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tinybnn"


def test_the_package_datasets_dir_is_the_repository_one():
    repository = Path(__file__).resolve().parents[2]
    assert download.PACKAGE_DATASETS_DIR == repository / "datasets"


def test_md5sum_matches_hashlib(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(PAYLOAD)
    assert md5sum(path) == hashlib.md5(PAYLOAD).hexdigest()


# ---------------------------------------------------------------------------- downloads


def test_download_goes_to_a_temporary_file_then_is_renamed(monkeypatch, tmp_path):
    folder = tmp_path / "mnist"
    final = folder / REMOTE.name
    seen = {}

    def fetch(url, out):
        temporary = Path(out.name)
        seen["temporary"] = temporary
        assert temporary.parent == folder and temporary != final
        assert not final.exists()  # nothing at the final name while bytes arrive
        out.write(PAYLOAD)

    monkeypatch.setattr(download, "fetch_url", fetch)
    path = ensure_file(REMOTE, folder)

    assert path == final and final.read_bytes() == PAYLOAD
    assert not seen["temporary"].exists()
    assert os.listdir(folder) == [REMOTE.name]


def test_a_download_failing_midway_leaves_nothing(monkeypatch, tmp_path):
    def fetch(url, out):
        out.write(PAYLOAD[:100])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(download, "fetch_url", fetch)
    folder = tmp_path / "mnist"
    with pytest.raises(DatasetError, match=r"could not download train-images-idx3-ubyte.gz"):
        ensure_file(REMOTE, folder)
    assert os.listdir(folder) == []


def test_an_interrupted_download_leaves_nothing(monkeypatch, tmp_path):
    def fetch(url, out):
        out.write(PAYLOAD[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch_url", fetch)
    with pytest.raises(KeyboardInterrupt):
        ensure_file(REMOTE, tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_download_with_the_wrong_checksum_is_discarded(server, tmp_path):
    server.files[REMOTE.name] = PAYLOAD + b"tampered"
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz fails its checksum"):
        ensure_file(REMOTE, tmp_path)
    assert os.listdir(tmp_path) == []
    assert server.requests == list(REMOTE.urls)  # every mirror was tried


def test_the_next_mirror_is_tried_when_one_fails(monkeypatch, tmp_path):
    def fetch(url, out):
        if "mirror.one" in url:
            raise TimeoutError("timed out")
        out.write(PAYLOAD)

    monkeypatch.setattr(download, "fetch_url", fetch)
    assert ensure_file(REMOTE, tmp_path).read_bytes() == PAYLOAD


def test_a_valid_cached_file_is_not_downloaded_again(server, tmp_path):
    path = tmp_path / REMOTE.name
    path.write_bytes(PAYLOAD)
    before = path.stat()

    assert ensure_file(REMOTE, tmp_path) == path

    assert server.requests == []
    assert path.read_bytes() == PAYLOAD and path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_corrupt_cached_file_is_reported_and_kept(server, tmp_path):
    path = tmp_path / REMOTE.name
    path.write_bytes(PAYLOAD[:-1])
    with pytest.raises(DatasetError) as caught:
        ensure_file(REMOTE, tmp_path)
    message = str(caught.value)
    assert str(path) in message and "checksum" in message and "Delete it" in message
    assert path.read_bytes() == PAYLOAD[:-1]  # tinybnn deletes nothing: the user decides
    assert server.requests == []


def test_without_download_a_missing_file_says_where_it_belongs(server, tmp_path):
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz is missing.*download=True"):
        ensure_file(REMOTE, tmp_path, download=False)
    assert server.requests == []


# ---------------------------------------------------------------------------- the real fetch_url
# urllib itself, offline: a file:// URL, and an HTTP server on this machine's loopback interface.


def test_real_fetch_reads_a_file_url(monkeypatch, tmp_path):
    source = tmp_path / "published" / REMOTE.name
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    monkeypatch.setattr(download, "fetch_url", real_fetch_url)
    remote = RemoteFile(REMOTE.name, REMOTE.md5, (source.as_uri(),))
    assert ensure_file(remote, tmp_path / "cache").read_bytes() == PAYLOAD


@pytest.fixture
def local_http(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving the folder tmp_path/www; yields (folder, base URL)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # reach it directly even where a proxy is set
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_real_fetch_over_http_falls_back_from_a_404(monkeypatch, tmp_path, local_http):
    root, base = local_http
    (root / "good").mkdir()
    (root / "good" / REMOTE.name).write_bytes(PAYLOAD)
    monkeypatch.setattr(download, "fetch_url", real_fetch_url)
    remote = RemoteFile(REMOTE.name, REMOTE.md5,
                        (f"{base}/missing/{REMOTE.name}", f"{base}/good/{REMOTE.name}"))
    folder = tmp_path / "cache"
    assert ensure_file(remote, folder).read_bytes() == PAYLOAD
    assert os.listdir(folder) == [REMOTE.name]
