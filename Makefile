# Two commands on a fresh machine:  make run  (the dashboard on the embedded data)  and  make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ADDRESS ?= 127.0.0.1
PORT ?= 8501

.PHONY: run test test-fast bench sample-sheet real-data screenshots chromium clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

# the embedded default data set, generated once before the first start (a test keeps this name equal to
# snw_core.data.default_parquet()); when it exists, `make run` starts no extra Python process (0.5 s)
DEFAULT_DATA := data_cache/default_n3600_seed0_v1.parquet

$(DEFAULT_DATA): | $(VENV)/.installed
	$(PY) -m snw_core data check default > /dev/null

## make run: start the dashboard at http://localhost:8501 (ADDRESS=0.0.0.0 opens it to the plant network; ARGS=... more streamlit options)
run: $(VENV)/.installed $(DEFAULT_DATA)
	$(PY) -m streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) $(ARGS)

## make chromium: Debian's chromium for the browser tests (installed when missing and we are root)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests" >&2; exit 1; fi; fi

## make test: install everything the tests need and run the whole suite
test: $(VENV)/.dev-installed chromium
	$(PY) -m pytest

## make test-fast: the suite without slow tests (no training, no browser)
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not slow and not e2e"

## make bench: seed vs default preset on the embedded data (prints a table, writes bench.json)
bench: $(VENV)/.installed
	$(PY) -m snw_core bench --data default --presets seed,default --json bench.json

## make sample-sheet: regenerate docs/sample_sheet.png from the embedded data generator
sample-sheet: $(VENV)/.installed
	$(PY) tools/sample_sheet.py --out docs/sample_sheet.png

## make real-data: the real-photo benchmark sets (data_cache/real/*.parquet, 3,000 items each) and their sample sheets
## (docs/real_*.png); the texture sets also as *_disjoint: val and test cut from bands of the photograph train never saw
real-data: $(VENV)/.installed
	@for k in texture connector; do for d in moderate strong; do \
	  $(PY) -m snw_core data real --kind $$k --difficulty $$d --n 3000 --seed 0 \
	    --out data_cache/real/$${k}_$$d.parquet --sheet docs/real_$${k}_$$d.png || exit 1; done; done
	@for d in moderate strong; do \
	  $(PY) -m snw_core data real --kind texture --difficulty $$d --n 3000 --seed 0 --disjoint \
	    --out data_cache/real/texture_$${d}_disjoint.parquet --sheet data_cache/real/texture_$${d}_disjoint.png || exit 1; done

## make screenshots: retake the README's pictures (docs/screenshots/) from the real app in headless Chromium
## (trains one default run on the embedded data first, in a temporary run store: a minute or two)
screenshots: $(VENV)/.dev-installed chromium
	$(PY) tools/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) data_cache/*.parquet data_cache/decoded .pytest_cache
