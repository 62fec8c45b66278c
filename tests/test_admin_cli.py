"""The admin accounts and the audit log from the command line, as real processes:
``ecshop admin create-user``, ``serve`` refusing a shop nobody can run, and the audit
lines of CLI changes (maintenance, stock rebuild, import)."""

from __future__ import annotations

from ecshop import audit
from ecshop.admins import AdminUsers
from ecshop.store import open_store
from ecshop.testing.servers import free_port
from ecshop.throttle import Throttle
from tests.test_cli import KEY, ecshop


def _env(tmp_path, **extra):
    return {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}", "ECSHOP_SECRET_KEY": KEY,
            **extra}  # fmt: skip


def test_serve_refuses_a_shop_with_no_admin_account_and_no_token(tmp_path):
    run = ecshop("serve", "--bind", f"127.0.0.1:{free_port()}", env=_env(tmp_path), cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()[-1:]
    assert "ecshop admin create-user" in line and "ECSHOP_ADMIN_TOKEN" in line


def test_create_user_from_the_environment_and_its_audit_line(tmp_path):
    env = _env(tmp_path, ECSHOP_ADMIN_PASSWORD="a long admin password")
    assert ecshop("migrate", env=env, cwd=tmp_path).returncode == 0
    made = ecshop(
        "admin", "create-user", "hanako", "--role", "staff", "--totp", env=env, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert "hanako (staff) created" in made.stdout and "otpauth://totp/" in made.stdout
    assert "a long admin password" not in made.stdout + made.stderr
    store = open_store(env["ECSHOP_DATABASE_URL"])
    admins = AdminUsers(store, Throttle(store))
    [user] = admins.all()
    assert (user["username"], user["role"], bool(user["totp"])) == ("hanako", "staff", True)
    [line] = audit.search(store, action="admin.create_user")
    assert line["via"] == "cli" and line["actor"].startswith("cli:") and line["target"] == "hanako"
    again = ecshop("admin", "create-user", "hanako", env=env, cwd=tmp_path)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = ecshop("admin", "create-user", "taro", env={**env, "ECSHOP_ADMIN_PASSWORD": "short"},
                   cwd=tmp_path)  # fmt: skip
    assert short.returncode == 2 and "12 to 1024 characters" in short.stderr
    listed = ecshop("admin", "list-users", env=env, cwd=tmp_path)
    assert "hanako\tstaff\tactive, totp" in listed.stdout


def test_cli_changes_are_audited(tmp_path):
    env = _env(tmp_path)
    assert ecshop("migrate", env=env, cwd=tmp_path).returncode == 0
    on = ecshop("maintenance", "on", "--message", "moving", env=env, cwd=tmp_path)
    assert on.returncode == 0, on.stderr
    assert ecshop("stock", "rebuild", env=env, cwd=tmp_path).returncode == 0
    dump = tmp_path / "shop.jsonl.gz"
    assert ecshop("export", str(dump), env=env, cwd=tmp_path).returncode == 0
    target = {**env, "ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    assert ecshop("import", str(dump), env=target, cwd=tmp_path).returncode == 0
    store = open_store(env["ECSHOP_DATABASE_URL"])
    [maint] = audit.search(store, action="maintenance.set")
    assert (
        maint["via"] == "cli"
        and maint["after"]["on"] is True
        and maint["after"]["message"] == "moving"
    )
    assert maint["before"]["on"] is False
    assert [r["action"] for r in audit.search(store, action="stock.")] == ["stock.rebuild"]
    moved = open_store(target["ECSHOP_DATABASE_URL"])
    actions = [r["action"] for r in audit.search(moved)]
    assert actions[0] == "shop.import" and "maintenance.set" in actions  # the log moved too
