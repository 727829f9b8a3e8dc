"""Names and labels shared by the host side (careops workshop) and the hub side (inside careops/hub).

Standard library only: the hub image has JupyterHub's packages and this toolkit, not its host dependencies.
Workshop resources never carry ``org.careops.managed`` (that marks lab resources, which
``careops labs reset`` removes).
"""
from __future__ import annotations

COURSE = "careops-labs"
LABEL_COURSE = "org.careops.course"
LABEL_WORKSHOP = "org.careops.workshop"
LABEL_ROLE = "org.careops.role"
LABEL_HUB_USER = "org.careops.hub-user"
ROLE_HUB = "workshop-hub"
ROLE_SERVER = "workshop-server"
ROLE_WORKSPACE = "workshop-workspace"
ROLE_NETWORK = "workshop-network"
ROLE_STATE = "workshop-state"

#: Hub groups: everyone on the roster is in exactly one.
LEARNERS_GROUP = "learners"
INSTRUCTORS_GROUP = "instructors"

#: Paths inside the containers (careops/hub and careops/learner images).
HUB_CONFIG_DIR = "/srv/careops-hub/config"
HUB_STATE_DIR = "/srv/careops-hub/state"
HUB_CONFIG_FILE = f"{HUB_CONFIG_DIR}/jupyterhub_config.py"
HUB_ROSTER_FILE = f"{HUB_CONFIG_DIR}/roster.json"
LEARNER_HOME = "/home/jovyan"
LEARNER_WORKSPACE = f"{LEARNER_HOME}/workspace"
#: Ports inside the hub container: the proxy's public port and the hub's API (learners' servers call it).
PROXY_PORT = 8000
HUB_API_PORT = 8081
#: The environment variable that hands the hub the careops CLI's service token.
API_TOKEN_ENV = "CAREOPS_HUB_API_TOKEN"
#: The environment variable that tells a learner's kernels who they are (careops.lab.labels.LEARNER_ENV).
LEARNER_ENV = "CAREOPS_LEARNER"
#: The lab broker (careops.workshop.broker): its service name, its port inside the hub container, and the
#: variable that tells a learner's kernels where it is (careops.lab.backend.BROKER_URL_ENV).
BROKER_SERVICE = "lab-broker"
BROKER_PORT = 8090
BROKER_URL_ENV = "CAREOPS_BROKER_URL"
#: The broker's settings, handed over by the hub's configuration (careops.workshop.config).
BROKER_WORKSHOP_ENV = "CAREOPS_WORKSHOP"
BROKER_CONTAINERS_ENV = "CAREOPS_LAB_CONTAINERS"
BROKER_MEMORY_ENV = "CAREOPS_LAB_MEMORY"
#: Where the broker's temporary files go (an image saved for its layer scan is larger than the hub's /tmp).
BROKER_SCRATCH_ENV = "CAREOPS_BROKER_SCRATCH"
#: Lab files inside careops/hub (what the broker's builds put next to a learner's Dockerfile).
HUB_ASSETS_DIR = "/opt/careops-assets"
