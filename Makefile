# Two entry points for a fresh Debian machine with Python 3.11: `make demo` and `make test`.
# Each installs what it needs (.venv from requirements.lock; PostgreSQL binaries for the tests).

PYTHON ?= python3.11
VENV ?= .venv
STAMP := $(VENV)/.installed
# Whole-suite limit (CI allows 90 minutes including set-up); per-test limit for pytest-timeout.
TEST_TIMEOUT ?= 75m
TEST_CASE_TIMEOUT ?= 300
PYTEST_ARGS ?=
# Options for `mirakl-pipelines demo`, e.g. make demo DEMO_ARGS="--port 3001 --orders-per-minute 10"
DEMO_ARGS ?=

.PHONY: demo test bench venv postgres-binaries

# Re-install only when the lock file or the project metadata change.
$(STAMP): requirements.lock pyproject.toml
	scripts/bootstrap_venv.sh $(PYTHON) $(VENV) $(STAMP)

venv: $(STAMP)

postgres-binaries:
	@scripts/ensure_postgres.sh

demo: $(STAMP)
	$(VENV)/bin/mirakl-pipelines demo $(DEMO_ARGS)

# Exit code 5 means pytest collected nothing (e.g. a PYTEST_ARGS filter matching no test): not a failure.
test: $(STAMP) postgres-binaries
	@rc=0; timeout --kill-after=60 $(TEST_TIMEOUT) \
	  $(VENV)/bin/pytest -n 2 --timeout=$(TEST_CASE_TIMEOUT) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); treating as success"; rc=0; fi; \
	if [ $$rc -eq 124 ]; then echo "make test: the suite did not finish within $(TEST_TIMEOUT)"; fi; \
	exit $$rc

bench: $(STAMP)
	$(VENV)/bin/python -m mirakl_pipelines.bench
