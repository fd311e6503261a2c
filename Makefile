# samverkan: everyday tasks. `make test` is what CI runs (through .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := test
.PHONY: venv test lint js dovecot browser oidc demo web-demo faults clean bench smtp-sink

# The virtualenv: created when missing; reinstalled only when pyproject.toml changed since.
venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# ical.js for the invite tests (tests/js, pinned in its package-lock.json); without npm the
# tests that need it skip, except in CI (CI=true), where they fail.
JS := tests/js
js: $(JS)/node_modules/.package-lock.json

$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json
	@if command -v npm >/dev/null; then cd $(JS) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the ical.js invite checks will not run"; fi

# Dovecot (IMAP, SMTP submission) for the reply-mailbox tests (tests/fixtures/imap.py); the
# tests start their own instances. Installed with apt-get when missing (as root, or through
# sudo); without it those tests skip, except in CI (CI=true), where they fail.
DOVECOT := /usr/sbin/dovecot
dovecot:
	@if [ -x $(DOVECOT) ] && [ -e /usr/lib/dovecot/submission ]; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends \
			dovecot-imapd dovecot-submissiond \
		|| echo "dovecot could not be installed: the reply-mailbox tests will not run"; \
	else echo "apt-get not found: install Dovecot to run the reply-mailbox tests"; fi


# The browser tests (tests/browser): Debian's chromium and chromium-driver, installed with
# apt-get when missing (as root, or through sudo), and axe-core (tests/browser, npm ci).
# Without them the browser tests skip, except in CI (CI=true), where they fail.
AXE := tests/browser
browser: $(AXE)/node_modules/.package-lock.json
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends \
			chromium chromium-driver; \
	else echo "chromium/chromedriver not found and no apt-get: the browser tests will not run"; fi

$(AXE)/node_modules/.package-lock.json: $(AXE)/package-lock.json
	@if command -v npm >/dev/null; then cd $(AXE) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the browser tests will not run"; fi

# The OpenID Connect provider for the sign-in tests (node's oidc-provider, tests/oidc).
OIDC := tests/oidc
oidc: $(OIDC)/node_modules/.package-lock.json

$(OIDC)/node_modules/.package-lock.json: $(OIDC)/package-lock.json
	@if command -v npm >/dev/null; then cd $(OIDC) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the OpenID Connect tests will not run"; fi

# Everything, including the quick fault-injection scenarios; `make faults` runs the slow ones.
# Two processes (pytest-xdist), a test file each at a time: `make test TEST_WORKERS=1` runs them in
# one process, `TEST_WORKERS=auto` one per core.
TEST_WORKERS ?= 2
test: lint js dovecot browser oidc
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Loads profiles/exempel.yaml into its own folder var/demo/ (never the configured database)
# and simulates the next calendar year into var/demo/outbox/.
demo: venv
	$(BIN)/samverkan demo

# The web app on the demo's data (run `make demo` first): http://127.0.0.1:8000, docs/web.md.
web-demo: venv
	$(BIN)/samverkan web --demo

# The fault-injection scenarios at full size (2,000 messages each; docs/reliability.md).
faults: venv
	SAMVERKAN_TEST_FAULTS=full $(BIN)/pytest -m faults tests/faults

clean:
	rm -rf var/

# The benchmarks of issue 11 (mailout, tick scale, re-plan; see bench/README.md). Quick by
# default (a few minutes); `make bench BENCH_ARGS=--middle` or `--full` for the larger sizes,
# `BENCH_ARGS="--parts transports,tick"` for the older transport and tick benches.
BENCH_ARGS ?= --quick
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Postfix's smtp-sink comes with Debian's postfix package; the mail service itself must not run.
smtp-sink:
	@if ! command -v smtp-sink >/dev/null && [ ! -x /usr/sbin/smtp-sink ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix && \
		(systemctl disable --now postfix >/dev/null 2>&1 || true) && \
		(postfix status >/dev/null 2>&1 && postfix stop || true); fi

bench: venv $(BENCH_STAMP) smtp-sink
	$(BIN)/python bench/run.py $(BENCH_ARGS)
