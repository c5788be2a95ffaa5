# The two README commands and what they need. `make setup` installs the system
# packages (Debian: haproxy, postgresql) and the virtualenv; it is idempotent.
VENV ?= venv
PY := $(VENV)/bin/python
BLUEGREEN := $(VENV)/bin/bluegreen
APT_PACKAGES := haproxy postgresql make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages pulumi test lint up down status demo

STACK ?= dev

setup: system-packages $(VENV)/.installed pulumi

# The Pulumi CLI and Python language host in .tools/pulumi/bin/, built from Go modules
# (cached in ~/.cache/bluegreen; a compatible `pulumi` on PATH is used instead).
# bin/pulumi runs it with the project's engine environment.
pulumi:
	bash tools/build_pulumi.sh

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The pinned requirements, then the project itself (editable, no dependencies of its own):
# that puts the `bluegreen` command in $(VENV)/bin.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

test: setup
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check .

lint: setup
	$(VENV)/bin/ruff check .

# The local target (cloud: local): HAProxy + PostgreSQL + both colours on 127.0.0.1.
up: setup
	$(BLUEGREEN) up --stack $(STACK)

down:
	$(BLUEGREEN) down --stack $(STACK)

status:
	$(BLUEGREEN) status --stack $(STACK)

# The README's run command: a good release and a faulty one (rolled back), under load.
# It runs on a stack of its own (Pulumi.demo.yaml, git-ignored, a fresh copy of $(STACK) each
# time), so it leaves the tracked stack files and the $(STACK) stack as it found them.
demo: setup
	$(BLUEGREEN) demo --stack demo --from $(STACK)
