# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
VENV_OK := .venv/.installed
NPM_OK  := node_modules/.installed

.PHONY: help install browser run test lint typecheck migrate compile-contracts bench soak messages clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV_OK): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

$(NPM_OK): package.json package-lock.json
	# `npm install` honours the lock; `npm ci` refuses a lock that lists only this platform's anvil binary
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV_OK) $(NPM_OK) ## create .venv and node_modules with every pinned dependency

# Browser tests drive Debian's Chromium through its ChromeDriver, with a Thai font (without one a screenshot
# shows boxes). Installed from Debian's packages where missing (root, or sudo without a password).
BROWSER_PKGS := chromium chromium-driver fonts-thai-tlwg libzbar0
browser: ## install Chromium, ChromeDriver, a Thai font and ZBar (QR decoding) where missing (Debian packages)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	    && fc-list 2>/dev/null | grep -qi tlwg && ldconfig -p | grep -q libzbar.so.0; then exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	  --no-install-recommends $(BROWSER_PKGS)

run: install ## local chain, migrate, deploy once, demo data, worker, web on :8000 (ARGS="--port N")
	$(PY) scripts/dev.py $(ARGS)

test: install browser ## the whole suite: real Anvil, SQLite, PostgreSQL and headless Chromium
	$(PY) -m pytest -q -p no:cacheprovider --durations=30

lint: install ## ruff
	.venv/bin/ruff check src tests scripts

typecheck: install ## mypy --strict on src/
	.venv/bin/mypy src

migrate: install ## upgrade the configured database (TRACE_DATABASE_URL, default SQLite under var/)
	.venv/bin/trace migrate

compile-contracts: install ## compile contracts/TraceRegistry.sol into the committed artifact
	$(PY) scripts/compile_contracts.py

bench: install ## every figure of docs/benchmarks.md in one run (about an hour; `trace bench --help`)
	.venv/bin/trace bench

# Both databases, one after the other: SQLite is the embedded default (one process's writers take turns), and
# PostgreSQL what production runs (concurrent writers, SKIP LOCKED claims); CI's machine has both.
soak: install ## 50 clients for 60 s recording, viewing pages and verifying, on SQLite then PostgreSQL: no error, nothing lost
	.venv/bin/trace soak --clients 50 --seconds 60 --database sqlite
	.venv/bin/trace soak --clients 50 --seconds 60 --database postgresql

messages: install ## extract page text and merge it into the Thai and English catalogs (then translate th)
	mkdir -p var && .venv/bin/pybabel extract -F babel.cfg --no-location --omit-header -o var/messages.pot .
	for lang in th en; do \
	  .venv/bin/pybabel update --no-fuzzy-matching -i var/messages.pot -l $$lang \
	    -d src/traceability/web/locale; \
	done

clean: ## remove local state (the chain, the database) but keep the installs
	rm -rf var/*.db var/*.db-* var/anvil-state.json var/deployment.json var/anvil.log var/worker.lock
