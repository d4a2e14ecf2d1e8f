# Gatehouse. `make run` and `make test` need only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-e2e bench bench-quick venv clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

.env:
	@$(PYTHON) -c "import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50))" > .env
	@echo "Wrote a new SECRET_KEY to .env"

run: venv .env
	DEBUG=true $(PY) manage.py migrate --noinput
	@DEBUG=true $(PY) manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/tenant/demo/login/  (emails, codes included, are printed below)"
	@# The notices' worker (manage.py db_worker) runs beside the server and stops with it.
	DEBUG=true $(PY) manage.py db_worker --no-reload --interval 0.5 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=true $(PY) manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

test-e2e: $(VENV)/.installed-test
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# The bench (bench/run.py, bench/README.md): PostgreSQL when DATABASE_URL says so (1k and 1M users), else SQLite (1k); both peers install themselves.
bench: $(VENV)/.installed-test
	$(PY) -m bench.run

bench-quick: $(VENV)/.installed-test
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
