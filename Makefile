# The two commands of the README:
#   make lab    create the environment if missing, then open the course in JupyterLab
#   make test   create the environment if missing, then run the whole test suite (ci profile)
# Both are idempotent: the environment is rebuilt only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.course-installed
# Two workers, a file per worker at a time (its fixtures are built once; a notebook's cells share a kernel; the checks
# on many seeds a test at a time: tests/conftest.py),
# the files in the order tests/conftest.py gives them (longest first), not by how many tests they hold.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder
NBTEST := $(BIN)/python -m pytest -n 2 --dist loadfile
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
PORT   ?= 8888

.PHONY: lab test quick lint env unit notebooks system-deps browser-deps slurm-deps build clean

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
# The Python environment and the Debian packages install at once (pip and apt mostly wait on the network).
test:
	$(MAKE) --no-print-directory -j2 $(STAMP) system-deps
	$(MAKE) --no-print-directory lint unit notebooks

# The developer loop (1 min 58 s here on 2026-12-05): the linters, then everything but the slow and the browser tests
# (the checks on 100 seeds, the grader's runs of real notebooks, the decks, SLURM and JupyterLab are slow or browser).
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
	COURSE_PROFILE=ci COURSE_STRICT=1 $(NBTEST) $(NBVAL) solutions

# The Debian packages the suite needs, in one apt call (only what is missing; root needed):
# - Chromium for the browser tests (never Playwright's own download: it cannot work offline), and npm, with
#   which `course slides` fetches reveal.js, MathJax, ... by name and version (`make browser-deps`);
# - a one-node SLURM cluster for tests/test_slurm.py (the test starts and stops the daemons; `make slurm-deps`).
BROWSER_PKGS := $(if $(shell command -v chromium),,chromium chromium-driver) $(if $(shell command -v npm),,npm)
SLURM_PKGS   := $(if $(and $(shell command -v slurmctld),$(shell command -v slurmd),$(shell command -v munged)),,slurmctld slurmd slurm-client munge)
APT_INSTALL  := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

system-deps:
	@if [ -n "$(strip $(BROWSER_PKGS) $(SLURM_PKGS))" ]; then \
	  echo "apt: installing $(strip $(BROWSER_PKGS) $(SLURM_PKGS))"; apt-get update -qq && \
	  { [ -z "$(strip $(BROWSER_PKGS))" ] || $(APT_INSTALL) $(BROWSER_PKGS) >/dev/null; } && \
	  { [ -z "$(strip $(SLURM_PKGS))" ] || $(APT_INSTALL) --no-install-recommends $(SLURM_PKGS) >/dev/null; }; fi

browser-deps:
	@if [ -n "$(strip $(BROWSER_PKGS))" ]; then apt-get update -qq && $(APT_INSTALL) $(BROWSER_PKGS) >/dev/null; fi

slurm-deps:
	@if [ -n "$(strip $(SLURM_PKGS))" ]; then apt-get update -qq && $(APT_INSTALL) --no-install-recommends $(SLURM_PKGS) >/dev/null; fi

build: $(STAMP)
	$(BIN)/course build

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
