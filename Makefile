# Two commands: `make demo` and `make test`. Everything they need is installed from here.
# The first of python3, python3.12, python3.11 that is 3.11 or 3.12 (the extraction regexes need 3.11;
# fasttext-numpy2-wheel has no 3.13 wheel); `make demo PYTHON=/path/to/python` picks one yourself.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))
PYTHON ?= $(firstword $(foreach p,python3 python3.12 python3.11,$(shell $(p) -c '$(SUPPORTED)' >/dev/null 2>&1 && echo $(p))))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: install demo test lint sve-tools sve-test report-tools mpi-tools quality-model bench clean

$(STAMP): setup.cfg setup.py
	@test -x $(PY) || test -n "$(PYTHON)" || { echo "make: jcorpus needs Python 3.11 or 3.12 and found neither" \
	  "(python3 is $$(python3 --version 2>&1)); install one (e.g. apt-get install python3.12-venv) or pass PYTHON=..." >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/jcorpus demo --out $(DEMO_OUT)

lint: install
	$(PY) -m ruff check .

test: install lint sve-tools report-tools mpi-tools
	$(PY) -m pytest -q

# Open MPI plus a second venv whose mpi4py is built against it, for tests/trainer_bridge/test_openmpi.py
# (Debian packages when missing and root; the venv is built once, about 2.5 min here; never fails the build).
mpi-tools: install
	bash tests/trainer_bridge/setup_openmpi.sh

# Headless Chromium renders the report in a test (installed when missing and root is available).
report-tools:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing and this is not root: the report rendering test will skip"; fi; }

# Cross compiler and QEMU for the SVE kernels (installed when missing and root is available).
sve-tools:
	bash sve_kernels/qemu/install_tools.sh

sve-test: sve-tools
	bash sve_kernels/qemu/run.sh

# The small default fastText quality model shipped in data/models/ (its recipe: data/models/quality.ftz.json).
quality-model: install
	$(VENV)/bin/jcorpus quality train --config data/models/quality_train.yaml --positive academic government reference \
	  --negative web --seed 0 --out data/models/quality.ftz --overwrite

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf build *.egg-info $(DEMO_OUT)
