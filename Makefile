# countylab — one task runner. `make demo` runs the demo lab; `make test` runs every test.
.PHONY: demo test check bench docs clean help offline-bundle

help:
	@echo "make demo   - install and run the demo county lab on http://127.0.0.1:8000 (puts countylab on PATH)"
	@echo "make test   - install test dependencies and run the whole test suite"
	@echo "make check  - ruff and mypy (strict on the domain and the SDK)"
	@echo "make bench  - run every benchmark in bench/ (prints one JSON line each)"
	@echo "make offline-bundle - dist/countylab-offline-*.tar.gz: wheels + install.sh for a server without network"

# `@`: make does not echo the commands; each script prints one short line per step itself.
demo:
	@bash scripts/system-deps.sh runtime
	@bash scripts/venv.sh
	@.venv/bin/countylab demo

test:
	@bash scripts/system-deps.sh test
	@bash scripts/venv.sh dev
	bash scripts/test.sh

check:
	bash scripts/venv.sh dev
	.venv/bin/ruff check src client/src tests bench
	.venv/bin/ruff format --check src client/src tests bench
	.venv/bin/mypy

bench:
	bash scripts/venv.sh dev
	bash scripts/bench.sh

docs:
	bash scripts/venv.sh dev
	.venv/bin/python scripts/gen_docs.py

offline-bundle:  # PYTHON=python3.11 picks the interpreter whose version the server has
	bash scripts/offline-bundle.sh

clean:
	rm -rf .venv test-artifacts .pytest_cache .mypy_cache .ruff_cache
