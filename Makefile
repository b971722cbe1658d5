# Two set-up-free entry points: `make demo` (the whole pipeline on built-in data) and `make test`.
# Both create .venv on first use and install the pinned versions from constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
DEMO_OUT ?= demo_out

.PHONY: install install-dev demo test lint stream-tools bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-train: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[train]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-train
	$(PIP) install -q -c constraints.txt -e '.[train,dev,pretrained,openvino,serve,ray]'
	touch $@

install: $(VENV)/.installed-train
install-dev: $(VENV)/.installed-dev stream-tools

# ffmpeg serves the real MJPEG streams on 127.0.0.1 that the live-source tests read; GStreamer's RTSP server
# (gst-rtsp-server, driven by the system python3's GObject bindings: tests/rtsp_server.py) serves the real RTSP
# one, since ffmpeg cannot be an RTSP server; Debian's chromium is the browser the serve page test drives through
# Playwright (Playwright never downloads a browser of its own).
# Installed from Debian when missing and we may (root); otherwise those tests are skipped with a reason.
RTSP_SERVER_PACKAGES = python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good
stream-tools:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
	      || echo "warning: could not install ffmpeg; stream tests will be skipped"; \
	  else echo "note: ffmpeg not found; stream tests will be skipped"; fi; }
	@/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(RTSP_SERVER_PACKAGES) \
	      >/dev/null) || echo "warning: could not install the GStreamer RTSP server; RTSP tests will be skipped"; \
	  else echo "note: GStreamer's RTSP server not found; RTSP tests will be skipped"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the serve page test will be skipped"; \
	  else echo "note: chromium not found; the serve page test will be skipped"; fi; }

demo: install
	$(BIN)/edgecls demo --out $(DEMO_OUT)

test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check edgecls export runtime tests benchmarks

bench: install-dev
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
