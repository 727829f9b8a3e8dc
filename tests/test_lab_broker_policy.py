"""The lab broker's server-side policy, without an engine: what a request may say, and what the engine is asked.

The same checks run for real in tests/test_lab_broker.py (the broker's HTTP API on this engine) and
tests/test_workshop_broker.py (the hub, two learners, their servers): here each rule is pinned by itself.
"""
from __future__ import annotations

import pytest

from careops.errors import LabError, PolicyViolation, QuotaExceeded
from careops.images.catalog import (
    GRADER_IMAGE,
    HUB_IMAGE,
    LAB_IMAGE,
    LAB_IMAGES,
    LEARNER_BUILD_REPO,
)
from careops.lab import labels as L
from careops.lab.backend import LabRef, ResourceRecord, RunRequest
from careops.lab.direct import Confinement, engine_request
from careops.lab.policy import LabQuota, Limits, check_lab_image

ANA = Confinement(learner="ana", quota=LabQuota(containers=3, memory=512 * 2**20))
REF = LabRef("orientation", "ana", "0123456789ab", "server-ana", "42")


def request(**changes: object) -> RunRequest:
    return RunRequest(name="triage-probe", image=LAB_IMAGE, **changes)  # type: ignore[arg-type]


def wire(**changes: object) -> dict:
    return {**request().to_wire(), **changes}


@pytest.mark.parametrize("key, reason", [
    ("privileged", "never run privileged"), ("network_mode", "own network"), ("pid_mode", "host's processes"),
    ("devices", "no host devices"), ("mounts", "only lab volumes"), ("security_opt", "no-new-privileges"),
    ("cap_drop", "every capability is dropped"), ("ipc_mode", "host's memory"), ("volumes_from", "only lab volumes"),
])
def test_a_run_request_that_names_a_host_privilege_is_refused_by_name(key, reason):
    with pytest.raises(PolicyViolation, match=f"'{key}' is refused: .*{reason}"):
        RunRequest.from_wire(wire(**{key: True}))


@pytest.mark.parametrize("changes, message", [
    ({"docker_api": {"Privileged": True}}, "has no option 'docker_api'"),
    ({"limits": {"memory": 64 * 2**30}}, "memory limit 64 GiB is outside"),
    ({"limits": {"pids": 100000}}, "pids limit"),
    ({"limits": {"swap": 1}}, "limits take memory, cpus and pids"),
    ({"ports": [0]}, "port numbers 1-65535"),
    ({"ports": ["8080:8080"]}, "port numbers"),
    ({"env": {"A": 1}}, "env must map text to text"),
    ({"tmpfs": ["/tmp:exec"]}, "not an absolute path"),
    ({"volumes": {"data": "relative"}}, "not an absolute path"),
    ({"read_only": "yes"}, "read_only must be true or false"),
    ({"healthcheck": {"test": "true", "privileged": True}}, "healthcheck takes"),
    ({"name": None}, "needs a name and an image"),
])
def test_a_run_request_is_parsed_strictly(changes, message):
    with pytest.raises(PolicyViolation, match=message):
        RunRequest.from_wire(wire(**changes))


def test_a_run_request_survives_the_wire_unchanged():
    sent = request(command=["sleep", "infinity"], env={"A": "1"}, ports=[8080], user="1000", read_only=True,
                   tmpfs=["/run"], limits=Limits(128 * 2**20, 0.5, 64), labels={"hospital.data": "synthetic"},
                   volumes={"data": "/data"}, cap_add=["NET_BIND_SERVICE"], healthcheck={"test": "true"})
    assert RunRequest.from_wire(sent.to_wire()) == sent


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "learner": "ana", "session": "0123456789ab", "creator_host": "h"}, "exactly name, learner"),
    ({**REF.to_wire(), "learner": "../ben"}, "is not a lab name"),
    ({**REF.to_wire(), "name": "Orientation"}, "is not a lab name"),
    ({**REF.to_wire(), "session": "x; rm -rf /"}, "session"),
    ({**REF.to_wire(), "creator_pid": "1 2"}, "creator_pid"),
    ({**REF.to_wire(), "extra": "1"}, "exactly name, learner"),
])
def test_a_lab_reference_is_parsed_strictly(data, message):
    with pytest.raises(PolicyViolation, match=message):
        LabRef.from_wire(data)


def test_the_engine_call_is_sandboxed_and_named_for_the_lab_whatever_the_request_says():
    got = engine_request(REF, request(ports=[2575], labels={"hospital.owner": "ward-it"}), confinement=ANA)
    assert got["name"] == "careops-ana-orientation-triage-probe" and got["network"] == "careops-ana-orientation"
    assert got["privileged"] is False and got["cap_drop"] == ["ALL"] and got["security_opt"] == ["no-new-privileges"]
    assert got["labels"][L.LEARNER] == "ana" and got["labels"][L.MANAGED] == "true" and got["labels"][L.ROLE] == "triage-probe"
    assert got["ports"] == {} and got["labels"][L.PORTS] == "2575", "confined: nothing is published on the host"
    assert got["labels"][L.MEMORY] == str(Limits().memory)
    assert (got["mem_limit"], got["memswap_limit"], got["pids_limit"]) == (Limits().memory, Limits().memory, Limits().pids)
    on_a_laptop = engine_request(REF, request(ports=[2575]))
    assert on_a_laptop["ports"] == {"2575/tcp": ("127.0.0.1", None)} and L.PORTS not in on_a_laptop["labels"]


def test_a_confined_learner_cannot_name_another_learners_lab_or_careops_labels():
    ben = LabRef("orientation", "ben", "0123456789ab", "server-ana", "42")
    with pytest.raises(PolicyViolation, match="belongs to learner ben; you are ana"):
        engine_request(ben, request(), confinement=ANA)
    with pytest.raises(PolicyViolation, match="careops' own"):
        engine_request(REF, request(labels={L.LEARNER: "ben"}), confinement=ANA)
    got = engine_request(REF, request(volumes={"careops-ben-orientation-data": "/data"}), confinement=ANA)
    assert list(got["volumes"]) == ["careops-ana-orientation-careops-ben-orientation-data"], "volumes are the lab's own"


@pytest.mark.parametrize("binds, message", [
    ({"/var/run/docker.sock": "/var/run/docker.sock"}, "may never be mounted"),
    ({"/run/docker.sock": "/s"}, "may never be mounted"),
    ({"/proc": "/host-proc"}, "may never be mounted"),
    ({"/home/jovyan/workspace": "/w"}, "cannot be mounted: on the workshop host"),
    ({"/": "/host"}, "cannot be mounted"),
])
def test_no_host_folder_is_mounted_on_the_workshop_host(binds, message):
    with pytest.raises(PolicyViolation, match=message):
        engine_request(REF, request(binds=binds), confinement=ANA)


def test_capabilities_beyond_the_allowlist_are_refused():
    with pytest.raises(PolicyViolation, match="SYS_ADMIN are not allowed"):
        engine_request(REF, request(cap_add=["SYS_ADMIN"]), confinement=ANA)


@pytest.mark.parametrize("image", [HUB_IMAGE, GRADER_IMAGE, "careops/learner:latest", "alpine:latest",
                                   f"{LEARNER_BUILD_REPO}:ben-0123456789"])
def test_only_the_courses_images_and_the_learners_own_builds_run(image):
    labels = {L.LEARNER: "ben", L.LEARNER_BUILD: "0123456789"}
    with pytest.raises(PolicyViolation, match=f"image {image} is not one of the course's images"):
        check_lab_image(image, learner="ana", course_images=LAB_IMAGES, build_repo=LEARNER_BUILD_REPO,
                        image_labels=labels)


def test_a_learners_own_build_runs_only_with_its_build_labels():
    mine = f"{LEARNER_BUILD_REPO}:ana-0123456789"
    for image in LAB_IMAGES:
        check_lab_image(image, learner="ana", course_images=LAB_IMAGES, build_repo=LEARNER_BUILD_REPO, image_labels={})
    check_lab_image(mine, learner="ana", course_images=LAB_IMAGES, build_repo=LEARNER_BUILD_REPO,
                    image_labels={L.LEARNER: "ana", L.LEARNER_BUILD: "0123456789"})
    with pytest.raises(PolicyViolation):  # a tag alone (someone else's image retagged) is not enough
        check_lab_image(mine, learner="ana", course_images=LAB_IMAGES, build_repo=LEARNER_BUILD_REPO, image_labels={})


def test_the_quota_counts_containers_and_memory_and_not_the_one_replaced():
    quota = LabQuota(containers=3, memory=512 * 2**20)
    two = {"careops-ana-a-x": 128 * 2**20, "careops-ana-b-y": 256 * 2**20}
    quota.check(two, "careops-ana-a-z", 128 * 2**20)
    quota.check({**two, "careops-ana-a-z": 128 * 2**20}, "careops-ana-a-z", 128 * 2**20)  # replacing: fits
    with pytest.raises(QuotaExceeded, match="would make 4 lab containers; your share .* is 3") as info:
        quota.check({**two, "careops-ana-a-z": 6 * 2**20}, "careops-ana-a-w", 6 * 2**20)
    assert "careops labs reset" in (info.value.fix or "")
    with pytest.raises(QuotaExceeded, match="would bring your lab containers to 640 MiB .* share .* is 512 MiB"):
        quota.check(two, "careops-ana-a-z", 256 * 2**20)
    assert issubclass(QuotaExceeded, PolicyViolation) and issubclass(PolicyViolation, LabError)


def test_a_resource_record_names_its_kind():
    with pytest.raises(PolicyViolation, match=r"kind: container\|network\|volume"):
        ResourceRecord.from_wire({"kind": "image", "name": "careops/hub:latest"})


def test_the_quota_caps_labs_and_volumes_at_once():
    quota = LabQuota(labs=2, volumes=2)
    quota.check_count("labs", ["careops-ana-a"], "careops-ana-b")
    quota.check_count("labs", ["careops-ana-a", "careops-ana-b"], "careops-ana-b")  # reopening: fits
    with pytest.raises(QuotaExceeded, match="careops-ana-c would make 3 labs of yours; your share .* is 2"):
        quota.check_count("labs", ["careops-ana-a", "careops-ana-b"], "careops-ana-c")
    with pytest.raises(QuotaExceeded, match="3 volumes of yours"):
        quota.check_count("volumes", ["v1", "v2"], "v3")
