# CareOps Labs -- two commands: `make lab` (learners) and `make test` (contributors).
# Every target sets up what it needs; a second run redoes only what changed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CAREOPS := $(VENV)/bin/careops
STAMP := $(VENV)/.installed
PORT ?= 8888
PYTEST_ARGS ?=
#: pytest-xdist workers of `make test` (0: one process; tests/conftest.py says how the suite shares them)
TEST_WORKERS ?= 3

help: ## show these targets
	@echo "CareOps Labs -- hands-on DevOps for healthcare IT"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: PORT=$(PORT) (JupyterLab), NO_BROWSER=1 (do not open a browser),"
	@echo "             ASSIGNMENT=, SUBMISSIONS=, REGRADE=1, JOBS=, LEARNER=, QUEUE=redis://... (make grade)"
	@echo "             QUEUE=, ENGINE=, CONCURRENCY= (make worker)"
	@echo "             ROSTER=class.csv, HUB_PORT= (make workshop)"

lab: prepare ## set everything up and open the course in JupyterLab
	$(CAREOPS) jupyter --port $(PORT) $(if $(NO_BROWSER),--no-browser,)

prepare: venv engine images workspace ## everything `make lab` does before starting JupyterLab

test: venv engine test-tools images ## set everything up and run the whole test suite
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --no-loadscope-reorder) $(PYTEST_ARGS)

bench: venv engine test-tools images ## measure speed against references taken in the same run
	$(CAREOPS) bench

grade: grade-args venv engine images ## grade submissions in sandboxes: make grade ASSIGNMENT=00-orientation [SUBMISSIONS=dir] [REGRADE=1] [LEARNER=id] [QUEUE=redis://...]
	$(CAREOPS) grade $(ASSIGNMENT) $(if $(SUBMISSIONS),--submissions $(SUBMISSIONS),) $(if $(REGRADE),--regrade,) $(if $(JOBS),--jobs $(JOBS),) $(if $(QUEUE),--queue $(QUEUE),) $(foreach l,$(LEARNER),--learner $(l))

queue: ## start the grading queue's Redis on this machine (127.0.0.1:6379) for make grade QUEUE=... and make worker
	scripts/ensure-redis.sh

worker: venv engine images ## grade from the queue on this machine's engine: make worker [QUEUE=redis://...] [ENGINE=unix://...] [CONCURRENCY=2]
	$(CAREOPS) worker $(if $(QUEUE),--queue $(QUEUE),) $(foreach l,$(LEARNER),--learner $(l)) $(if $(ENGINE),--engine $(ENGINE),) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY),)

grade-args:
	@test -n "$(ASSIGNMENT)" || { echo "make grade needs ASSIGNMENT=<a folder of notebooks/>, e.g. make grade ASSIGNMENT=00-orientation" >&2; exit 2; }

workshop: venv engine release images ## host a class: JupyterHub, one sandboxed JupyterLab per learner (ROSTER=class.csv)
	$(CAREOPS) workshop up $(if $(ROSTER),--roster $(ROSTER),) $(if $(HUB_PORT),--port $(HUB_PORT),)

workshop-down: venv ## stop the workshop's hub and servers (learners' work is kept)
	$(CAREOPS) workshop down

release: venv ## generate the learner versions of every module (nbgrader)
	$(CAREOPS) release

workspace: release ## copy learner notebooks into workspace/ (never overwrites your work)
	$(CAREOPS) workspace sync

images: venv engine release ## build the lab, grading and workshop images offline (skips unchanged ones)
	scripts/ensure-tools.sh debootstrap:debootstrap
	$(CAREOPS) images build

engine: ## make sure a Docker/Podman engine answers (as root on Debian: installs and starts it)
	scripts/ensure-engine.sh

doctor: venv ## check the machine and say how to fix each problem
	$(CAREOPS) doctor

test-tools:
	scripts/ensure-tools.sh chromium:chromium
	scripts/ensure-redis.sh --install-only

venv: $(STAMP) ## the Python environment, built from environment.yml

$(STAMP): environment.yml pyproject.toml scripts/env_requirements.py
	scripts/ensure-tools.sh python3-venv:python3-venv
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) scripts/check_python.py environment.yml
	$(PY) scripts/env_requirements.py environment.yml > $(VENV)/requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check -r $(VENV)/requirements.txt
	touch $@

clean-labs: venv ## remove every lab container, network and volume of this user
	$(CAREOPS) labs reset --yes

clean: ## remove build outputs (keeps workspace/, your work)
	rm -rf build $(VENV)

.PHONY: help lab prepare test bench grade grade-args queue worker workshop workshop-down release workspace \
	images engine doctor test-tools venv clean-labs clean
