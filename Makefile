# LeadScore for Slate. The two README commands: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/include
export LEADSCORE_HOME ?= $(CURDIR)/.leadscore
export AIRFLOW_HOME ?= $(LEADSCORE_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__API__HOST ?= 127.0.0.1
LEADSCORE := $(BIN)/python -m leadscore
# `make airflow PORT=N`: the api-server's port; the sandbox Slate's ports beside it (0 picks free ones).
PORT ?= 8080
SANDBOX_WEB_PORT ?= 18080
SANDBOX_SFTP_PORT ?= 18022

.PHONY: install lock test lint format demo airflow mlflow backfill clean up down bench sandbox

install: $(STAMP)

# Idempotent: the venv is rebuilt only when requirements.txt changes; uv makes a full install take seconds.
$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check "$$(grep '^uv==' requirements.txt)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.txt
	@touch $(STAMP)

lock: $(STAMP)
	$(BIN)/uv pip compile -q requirements.in -o requirements.txt --python-version 3.11

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers: the stack tier and the pipeline tests each stay on one worker (their session fixtures), the rest
# spreads over both (tests/conftest.py makes the units of work).
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2

demo: $(STAMP)
	$(LEADSCORE) demo

sandbox: $(STAMP)
	$(LEADSCORE) sandbox serve

airflow: $(STAMP)
	$(LEADSCORE) airflow --port $(PORT) --sandbox-web-port $(SANDBOX_WEB_PORT) --sandbox-sftp-port $(SANDBOX_SFTP_PORT)

mlflow: $(STAMP)
	$(LEADSCORE) mlflow-ui

backfill: $(STAMP)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD"; exit 2; }
	$(LEADSCORE) backfill --from $(FROM) --to $(TO)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

up:
	@test -f .env || { echo "copy .env.example to .env and fill in the Slate connections first (README: Pointing it at your Slate)"; exit 2; }
	docker compose up -d

down:
	docker compose down

clean:
	rm -rf "$(LEADSCORE_HOME)"
