# kubectl-preevy: build, package and test. Needs only python3 with pip (see README).
PYTHON ?= python3
BINARY := dist/kubectl-preevy

.PHONY: all dist archive release test bench clean

all: dist

# The zipapp: one file, runs with python3 alone (reproducible: see scripts/build_zipapp.py).
dist:
	$(PYTHON) scripts/build_zipapp.py --output $(BINARY)

# dist/kubectl-preevy_<version>.tar.gz: the zipapp and LICENSE, as krew installs them.
archive: dist
	$(PYTHON) scripts/release.py --binary $(BINARY) --output-dir dist

# The archive, and its version, homepage, uri and sha256 written into krew-manifest.yaml; the uri is
# setup.cfg's url + /releases/download/v<version>/<archive>, or under BASE_URL when given.
release: dist
	$(PYTHON) scripts/release.py --binary $(BINARY) --output-dir dist --manifest krew-manifest.yaml $(if $(BASE_URL),--base-url $(BASE_URL))

test:
	$(PYTHON) -m pytest

# Start-up time and memory of the zipapp (a markdown table for the README).
bench: dist
	$(PYTHON) bench/startup.py --binary $(BINARY)

clean:
	rm -rf build dist .pytest_cache src/*.egg-info
