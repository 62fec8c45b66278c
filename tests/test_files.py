"""Files with customers' data or secrets are created 0600, folders 0700."""

from __future__ import annotations

import os
import stat

import pytest

from ecshop.files import create_private, open_private, private_dir, write_private


@pytest.fixture(autouse=True)
def lax_umask():
    """A umask that would leave everything world-readable."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_private_dir_creates_every_missing_folder_0700(tmp_path):
    os.chmod(tmp_path, 0o755)
    made = private_dir(tmp_path / "a" / "b")
    assert made == tmp_path / "a" / "b"
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path) == 0o755  # an existing folder keeps its mode
    assert private_dir(made) == made


def test_private_files_are_0600_even_over_an_older_open_file(tmp_path):
    path = tmp_path / "export.gz"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    with open_private(path) as out:
        out.write(b"new")
    assert mode(path) == 0o600 and path.read_bytes() == b"new"
    write_private(tmp_path / "secret", "s3cret\n")
    assert mode(tmp_path / "secret") == 0o600
    assert create_private(tmp_path / "db") is True
    assert mode(tmp_path / "db") == 0o600
