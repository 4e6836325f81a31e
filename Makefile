# Two commands on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit iam demo check-pack-venv check-published-pack bench bench-awscli lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## test: create .venv, install the pinned dependencies, lint, type-check, run the whole suite
test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core of the shared 2-core machine; --dist loadfile keeps each test file on
# one worker, so the module-scoped fixtures are made once. Each worker starts its own emulator and offline pack
# pool (session fixtures) on free ports. --no-loadscope-reorder keeps the order tests/conftest.py gives: the
# modules that took longest in the last run first (tests/support/module_order.py), so the workers end together.
# Figures: `.venv/bin/python bench/bench_suite.py`. For one file or test: `.venv/bin/pytest -q tests/test_x.py`.
PYTEST_WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

## iam: regenerate iam/ (the sample stack's role policies) with `cmkctl iam`
iam: $(STAMP)
	$(BIN)/python -m rehearsal.iam_samples

## demo: a revocation drill and a whole re-encryption on the embedded AWS emulator (no AWS account needed)
demo: $(STAMP)
	$(BIN)/python -m rehearsal.demo

## check-pack-venv: build policies/venv from policies/requirements.txt alone, start the pack with the CLI's command
check-pack-venv: $(STAMP)
	$(BIN)/python -m rehearsal.pack_venv_check

## check-published-pack: what `pulumi policy publish` archives, copied outside the repo, built and started
check-published-pack: $(STAMP)
	$(BIN)/python -m rehearsal.published_pack

## bench: the benchmark scripts (figures, not assertions)
bench: $(STAMP) bench-awscli
	for script in bench/*.py; do $(BIN)/python $$script || exit $$?; done

## bench-awscli: the AWS CLI, the peer bench/bench_vs_awscli.py compares with, in its own venv
## (it pins its own botocore); a bench-only dependency, never in requirements.txt
bench-awscli: .venv-awscli/bin/aws
.venv-awscli/bin/aws:
	$(PYTHON) -m venv .venv-awscli && .venv-awscli/bin/pip install --quiet awscli==1.46.2

## lock: re-resolve requirements.txt into requirements.lock
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet -r requirements.txt
	.lockvenv/bin/pip freeze --all --exclude-editable | grep -v "^pip==" > requirements.lock && rm -rf .lockvenv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
