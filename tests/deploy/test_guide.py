"""docs/deploy.md and the kit stay together: the guide names every file of deploy/, and
the commands it gives use the paths and settings the units use."""

from __future__ import annotations

from tests.deploy.conftest import DEPLOY, ROOT, UNITS, one, parse_unit

GUIDE = (ROOT / "docs" / "deploy.md").read_text()


def test_the_guide_names_every_file_of_the_kit() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.parent.name != "shared-hosting":
            assert path.name in GUIDE, f"docs/deploy.md does not name {path.relative_to(ROOT)}"
    for name in ("passenger_wsgi.py", "ecshop.toml", "crontab"):
        assert (DEPLOY / "shared-hosting" / name).is_file() and name in GUIDE


def test_commands_run_as_the_shop_with_the_services_settings_and_secrets() -> None:
    service = parse_unit(UNITS / "ecshop.service")
    program = one(service, "Service", "ExecStart").split()[0]
    assert f'{program} "$@"' in GUIDE
    assert f"--property=EnvironmentFile={one(service, 'Service', 'EnvironmentFile')}" in GUIDE
    for setting in service["Service"]["Environment"]:
        assert f"--setenv={setting}" in GUIDE
    assert f"--uid={one(service, 'Service', 'User')}" in GUIDE
    assert f"--working-directory={one(service, 'Service', 'WorkingDirectory')}" in GUIDE
