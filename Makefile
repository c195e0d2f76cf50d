# Efficient CNNs course. `make lab` to study, `make test` to run everything CI runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SOURCES := $(wildcard notebooks/[0-9][0-9]_*.py)

.PHONY: setup data notebooks lab lab-instructor lint test test-fast student site benchmarks clean

setup: $(STAMP) data

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

data: $(STAMP)
	$(PY) -c "from course_lib.data import prepare_fashion_mnist; print('Fashion-MNIST ready in', prepare_fashion_mnist())"

# Paired .ipynb for JupyterLab (generated, not committed; edits sync back to the .py sources).
notebooks: $(STAMP)
	$(PY) -m jupytext --sync $(SOURCES)

# JupyterLab refuses to start as root ("Running as root is not recommended") unless told: containers
# such as Docker run as root by default, so pass --allow-root there.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

# The learner's edition: mywork/ (gitignored) gets the student edition of every chapter it does not
# have yet; your work there is never overwritten by an update of the course. Reference solutions:
# `.venv/bin/python -m course_lib.editions solutions 01`. Lecturers: `make lab-instructor`.
WORKSPACE ?= mywork

lab: setup
	$(PY) -m course_lib.editions workspace $(WORKSPACE)
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=$(WORKSPACE) $(WORKSPACE)/00_start_here.ipynb

# The instructor edition: the sources in notebooks/, every reference solution in place.
lab-instructor: setup notebooks
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/00_start_here.ipynb

# Style and types, pinned in constraints.txt: ruff (pycodestyle, pyflakes, import order, pyupgrade;
# the formatter, 120 columns) and mypy over course_lib (configured in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check course_lib
	$(VENV)/bin/ruff format --check course_lib
	$(VENV)/bin/mypy

# lint + unit tests + every notebook executed by nbval (from a fresh conversion of the sources), the browser
# test (tests/browser: every notebook run in JupyterLab in headless Chromium; screenshots in
# build/screenshots/) and the HTML edition's test (tests/test_site.py builds build/site).
test: setup lint
	rm -rf build/nbtest build/claims.json build/executed && mkdir -p build/nbtest
	for f in $(SOURCES); do $(PY) -m jupytext --quiet --to ipynb --output build/nbtest/$$(basename $$f .py).ipynb $$f || exit 1; done
	COURSE_PROFILE=quick COURSE_CHECKS=strict $(PY) -m pytest tests build/nbtest --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=300 --durations=15

# Unit tests only: without the browser test and the full HTML-edition build (make test runs them).
test-fast: setup
	$(PY) -m pytest tests -x -q --ignore=tests/browser -k "not course_site and not full_profile"

student: setup
	$(PY) -m course_lib.editions student build/student

# The HTML edition: every notebook executed (quick profile) and rendered; open build/site/index.html.
site: setup
	COURSE_PROFILE=quick COURSE_CHECKS=strict $(PY) -m course_lib.editions site build/site

benchmarks: setup
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf build
