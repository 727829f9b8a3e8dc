"""The hub's generated jupyterhub_config.py: loadable by JupyterHub's own loader, and saying what workshop mode promises.

No engine: the running hub is tested in test_workshop_hub.py; this pins the
configuration (sandbox of each learner's server, scoped roles, services) and
the settings' validation.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub.scopes import _check_scopes_exist
from traitlets.config.loader import PyFileConfigLoader

from careops.workshop import config
from careops.workshop.labels import API_TOKEN_ENV, INSTRUCTORS_GROUP, LEARNERS_GROUP
from careops.workshop.roster import Enrolled
from careops.workshop.settings import WorkshopError, WorkshopSettings

ENROLLED = {
    "ana": Enrolled("ana", "learner", "", "$2b$12$x", "2026-01-01T00:00:00+00:00"),
    "ben": Enrolled("ben", "learner", "", "$2b$12$y", "2026-01-01T00:00:00+00:00"),
    "dr-lee": Enrolled("dr-lee", "instructor", "", "$2b$12$z", "2026-01-01T00:00:00+00:00"),
}


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(API_TOKEN_ENV, "token-from-the-environment")
    settings = WorkshopSettings(name="demo", port=8123, mem_limit="2G", cpu_limit=0.5, pids_limit=300)
    (tmp_path / "jupyterhub_config.py").write_text(config.render(settings, ENROLLED))
    return PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()


def test_each_learner_server_is_sandboxed(loaded) -> None:
    ds = loaded.DockerSpawner
    assert loaded.JupyterHub.spawner_class == "careops.workshop.spawner.LearnerSpawner"
    assert (ds.image, ds.pull_policy, ds.network_name, ds.remove) == ("careops/learner:latest", "never",
                                                                    "demo-hub-private", True)
    assert (ds.mem_limit, ds.cpu_limit, ds.extra_create_kwargs) == ("2G", 0.5, {"user": "1000:1000"})
    host = ds.extra_host_config
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges:true"]
    assert host["pids_limit"] == 300 and host["memswap_limit"] == "2G" and host["read_only"] is True
    assert set(host["tmpfs"]) == {"/tmp", "/home/jovyan"}
    assert "docker.sock" not in repr(loaded), "nothing may hand the engine socket to a learner"
    assert loaded.LearnerSpawner.workspace_volume == "demo-workspace-{username}"
    assert loaded.JupyterHub.hub_connect_url == "http://demo-hub:8081"


def test_only_the_roster_logs_in_and_instructors_are_not_admins(loaded) -> None:
    assert loaded.JupyterHub.authenticator_class == "careops.workshop.auth.RosterAuthenticator"
    assert loaded.Authenticator.allowed_users == {"ana", "ben", "dr-lee"}
    assert loaded.Authenticator.admin_users == set()
    assert loaded.NativeAuthenticator.enable_signup is False
    assert loaded.JupyterHub.load_groups == {LEARNERS_GROUP: {"users": ["ana", "ben"]},
                                             INSTRUCTORS_GROUP: {"users": ["dr-lee"]}}
    roles = {r["name"]: r for r in loaded.JupyterHub.load_roles}
    instructor = roles["instructor"]
    assert instructor["groups"] == [INSTRUCTORS_GROUP]
    assert not any(s.startswith(("admin:", "admin-servers", "tokens", "groups", "users")) for s in instructor["scopes"])
    assert all(s.endswith(f"!group={LEARNERS_GROUP}") for s in instructor["scopes"]
               if s.split("!")[0] in ("servers", "access:servers", "read:users", "list:users"))
    for role in roles.values():
        _check_scopes_exist(role["scopes"])  # raises on a scope JupyterHub does not know


def test_the_culler_and_the_cli_are_services_with_their_own_roles(loaded) -> None:
    services = {s["name"]: s for s in loaded.JupyterHub.services}
    assert services["careops"]["api_token"] == "token-from-the-environment"
    assert services["idle-culler"]["command"][:3] == ["python3", "-m", "jupyterhub_idle_culler"]
    roles = {r["name"]: r for r in loaded.JupyterHub.load_roles}
    assert roles["idle-culler"]["scopes"] == ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    assert roles["idle-culler"]["services"] == ["idle-culler"]


def test_the_config_holds_no_secret(tmp_path: Path) -> None:
    text = config.render(WorkshopSettings(), ENROLLED)
    assert "$2b$" not in text and "os.environ['CAREOPS_HUB_API_TOKEN']" in text


@pytest.mark.parametrize("change, says", [
    ({"name": "Bad Name"}, "name 'Bad Name'"),
    ({"port": 70000}, "port 70000"),
    ({"mem_limit": "lots"}, "mem_limit 'lots'"),
    ({"pids_limit": 10}, "pids_limit 10"),
    ({"idle_timeout": 5}, "idle_timeout 5"),
])
def test_invalid_settings_are_refused_with_the_option_to_fix(change: dict, says: str) -> None:
    with pytest.raises(WorkshopError) as err:
        WorkshopSettings(**change)
    assert says in err.value.message and "careops workshop up" in (err.value.fix or "")


def test_settings_round_trip_and_unknown_options_keep_saved_values(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREOPS_HOME", str(tmp_path))
    saved = WorkshopSettings(name="demo", port=8123).replace(mem_limit="2G", cpu_limit=None)
    saved.save()
    assert WorkshopSettings.load("demo") == saved
    assert WorkshopSettings.load("demo").replace(port=None, bind=None) == saved
    with pytest.raises(WorkshopError) as err:
        WorkshopSettings.load("other")
    assert "careops workshop up" in (err.value.fix or "")
