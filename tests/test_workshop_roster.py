"""The class list: reading an instructor's roster, issuing initial passwords once, the handout (no engine)."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import bcrypt
import pytest

from careops.workshop import roster
from careops.workshop.roster import Member, RosterError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_and_yaml_rosters_give_the_same_members(tmp_path: Path) -> None:
    csv_file = _write(tmp_path, "class.csv", "username,role,name\nana,learner,Ana Example\nBen,learner,\n"
                                             "dr-lee,instructor,Dr Lee\n")
    yaml_file = _write(tmp_path, "class.yml", "learners:\n  - {username: ana, name: Ana Example}\n  - ben\n"
                                              "instructors:\n  - {username: dr-lee, name: Dr Lee}\n")
    expected = [Member("ana", "learner", "Ana Example"), Member("ben", "learner", ""),
                Member("dr-lee", "instructor", "Dr Lee")]
    assert roster.read_roster(csv_file) == expected
    assert roster.read_roster(yaml_file) == expected
    assert [m.group for m in expected] == ["learners", "learners", "instructors"]


@pytest.mark.parametrize("name, text, says", [
    ("c.csv", "username,role\nana,teacher\n", "role 'teacher' of ana"),
    ("c.csv", "username,role\nAna Example,learner\n", "c.csv:2: username 'ana example' is not allowed"),
    ("c.csv", "name,role\nana,learner\n", "'username' column"),
    ("c.csv", "username,role\nana,learner\nana,instructor\n", "ana is listed twice"),
    ("c.csv", "username,role\n", "has no members"),
    ("c.yml", "students:\n  - ana\n", "unknown key(s) students"),
    ("c.yml", "learners: [ana\n", "not valid YAML"),
    ("c.txt", "ana\n", "expected a .csv, .yml or .yaml file"),
])
def test_every_problem_is_named_with_its_row_and_a_fix(tmp_path: Path, name: str, text: str, says: str) -> None:
    with pytest.raises(RosterError) as err:
        roster.read_roster(_write(tmp_path, name, text))
    assert says in err.value.message and err.value.fix


def test_enroll_issues_passwords_once_and_keeps_only_their_hash(tmp_path: Path) -> None:
    path = tmp_path / "config" / "roster.json"
    enrolled, issued = roster.enroll([Member("ana"), Member("dr-lee", "instructor")], {})
    roster.save_enrolled(path, enrolled)
    assert [i.member.username for i in issued] == ["ana", "dr-lee"]
    text = path.read_text()
    for i in issued:
        assert i.password not in text, "a clear-text password reached the hub's roster"
        assert bcrypt.checkpw(i.password.encode(), enrolled[i.member.username].password_hash.encode())
        assert len(i.password) == 14 and not set(i.password) - set(roster.PASSWORD_ALPHABET + "-")
    # The whole class again, plus one: only the new one gets a password; a role change is kept, the hash too.
    again, issued2 = roster.enroll([Member("ana", "instructor"), Member("dr-lee", "instructor"), Member("cara")],
                                   roster.load_enrolled(path))
    assert [i.member.username for i in issued2] == ["cara"]
    assert again["ana"].password_hash == enrolled["ana"].password_hash and again["ana"].role == "instructor"
    assert json.loads(text)["members"]["ana"].keys() == {"role", "name", "password_hash", "issued"}


def test_the_handout_is_readable_by_its_owner_only_and_names_where_to_log_in(tmp_path: Path) -> None:
    _, issued = roster.enroll([Member("ana", name="Ana Example")], {})
    path = roster.write_handout(tmp_path / "handouts", issued, url="http://127.0.0.1:8000/")
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert issued[0].password in text and "http://127.0.0.1:8000/hub/login" in text and "change-password" in text
    assert roster.write_handout(tmp_path / "handouts", [], url="x") is None


def test_a_damaged_enrolled_roster_is_an_error_with_a_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "roster.json", "{not json")
    with pytest.raises(RosterError) as err:
        roster.load_enrolled(path)
    assert str(path) in err.value.message and err.value.fix
    assert roster.load_enrolled(tmp_path / "absent.json") == {}
