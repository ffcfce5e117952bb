# avsync: the two commands a newcomer needs are `make test` and `make demo`.
# Both set up everything first: Debian packages, a virtual environment, pinned Python packages.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_STAMP := .cache/system-packages.ok
DEBIAN_PACKAGES := espeak-ng libespeak-ng1 flite festival festvox-us-slt-hts fortunes-min fortunes \
	wordnet-base bucklespring-data chromium \
	fonts-dejavu-core haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: setup system-packages test demo lint bench clean

setup: system-packages $(STAMP)

system-packages: $(SYSTEM_STAMP)

$(SYSTEM_STAMP): Makefile
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(dir $@) && touch $@

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	@touch $@

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/avsync demo

lint: setup
	$(VENV)/bin/ruff check avsync train export serve tests bench
	@# mypy sees the installed layout (train/, export/, serve/ as avsync.train, ...): a tree of links
	rm -rf .cache/typecheck && mkdir -p .cache/typecheck/avsync
	for e in avsync/*.py avsync/py.typed avsync/data avsync/media avsync/models avsync/runtime \
	    avsync/text train export serve; do ln -s "$(CURDIR)/$$e" .cache/typecheck/avsync/; done
	$(VENV)/bin/mypy .cache/typecheck/avsync

bench: setup
	$(PY) bench/data.py

clean:
	rm -rf $(VENV) .cache
