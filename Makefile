# The two commands of the README:
#   make lab    create the environment if missing, then open the course in JupyterLab
#   make test   create the environment if missing, then run the whole test suite (ci profile)
# Both are idempotent: the environment is rebuilt only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.course-installed
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
PORT   ?= 8888

.PHONY: lab test quick lint env unit notebooks browser-deps slurm-deps build clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=. --port=$(PORT) $(ROOT_FLAG) labs/01_kmeans.ipynb

# The whole suite (what CI runs): the linters, unit tests, including the slow ones and the browser tests (which
# run every lab, unsolved, top to bottom in JupyterLab, and execute and export every deck), then the solutions
# under nbval (strict: every check must pass).
test: $(STAMP) browser-deps slurm-deps
	$(MAKE) --no-print-directory lint unit notebooks

# The developer loop (about two minutes): the linters, then everything but the slow and the browser tests.
quick: $(STAMP) lint
	COURSE_PROFILE=ci $(PYTEST) -m "not slow and not browser" tests

# ruff (style, likely bugs) over the tree and mypy (types) over course_utils, as pyproject.toml configures them.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	COURSE_PROFILE=ci $(PYTEST) --durations=15 tests

notebooks: $(STAMP)
	$(BIN)/course build --check
	COURSE_PROFILE=ci COURSE_STRICT=1 $(PYTEST) $(NBVAL) solutions

# Debian's Chromium for the browser tests (never Playwright's own download: it cannot work offline),
# and npm, with which `course slides` fetches reveal.js, MathJax, ... by name and version.
browser-deps:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }

# A one-node SLURM cluster for tests/test_slurm.py (Debian's packages; the test starts and stops the daemons).
slurm-deps:
	command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }

build: $(STAMP)
	$(BIN)/course build

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
