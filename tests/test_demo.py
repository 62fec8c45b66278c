"""The demo keeps its secrets in its data folder, readable by its owner only."""

from __future__ import annotations

import os
import stat

from ecshop import demo
from ecshop.config import check_serving, load_config


def test_demo_secrets_are_made_once_private_and_kept(tmp_path):
    gateway_secret, admin_token, key = demo.secrets_in(tmp_path)
    for name in (demo.SECRETS_FILE, demo.SECRET_KEY_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    check_serving(load_config({"ECSHOP_SECRET_KEY": key, "ECSHOP_ADMIN_TOKEN": admin_token}))
    assert demo.secrets_in(tmp_path) == (gateway_secret, admin_token, key)  # a restart


def test_a_data_folder_from_before_the_secret_key_gets_one(tmp_path):
    (tmp_path / demo.SECRETS_FILE).write_text("gw-secret admin-token-of-thirty-two-characters\n")
    os.chmod(tmp_path / demo.SECRETS_FILE, 0o644)
    gateway_secret, admin_token, key = demo.secrets_in(tmp_path)
    assert (gateway_secret, admin_token) == ("gw-secret", "admin-token-of-thirty-two-characters")
    assert len(key.encode()) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / demo.SECRETS_FILE).st_mode) == 0o600
