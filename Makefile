# Two set-up-free entry points: `make demo` (the whole pipeline on built-in data) and `make test`.
# Both create .venv on first use and install the pinned versions from constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
DEMO_OUT ?= demo_out

.PHONY: install install-dev demo test test-fast lint stream-tools device-root bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# opencv-python (GUI) and opencv-python-headless install the same cv2 package; a venv made before the base install
# became headless holds both, and removing either later breaks cv2. These venvs get exactly one: the headless build
# a board without a screen runs (`pip install 'edgecls[gui]'` is the GUI build, for --show windows).
ONE_CV2 = $(PIP) show -q opencv-python >/dev/null 2>&1 && { $(PIP) uninstall -q -y opencv-python && \
  $(PIP) install -q --force-reinstall --no-deps -c constraints.txt opencv-python-headless; } ; \
  $(BIN)/python -c "import cv2"

$(VENV)/.installed-train: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[train]'
	@$(ONE_CV2)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-train
	$(PIP) install -q -c constraints.txt -e '.[train,dev,pretrained,openvino,serve,ray]'
	@$(ONE_CV2)
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

# The arm64 tests (tests/test_arm64*.py) install a pack into an arm64 Debian bookworm root run under qemu-user;
# the unit tests (tests/test_pack_service.py) boot an x86-64 bookworm root with systemd as PID 1 (systemd-nspawn).
# This builds both roots once per machine (arm64: 19 min on a loaded 2-core box; systemd root: 3 min), cached
# outside the checkout with the wheels the pack tests read (/var/cache/edgecls, or the EDGECLS_DEVICE_CACHE
# variable); without root, apt, binfmt_misc or network it says why and those tests skip. It never fails the build.
device-root: install-dev
	@tests/device/prepare_arm64_root.sh || echo "note: arm64 root not prepared; the arm64 tests will be skipped"
	@tests/device/prepare_systemd_root.sh || echo "note: systemd root not prepared; the unit tests will be skipped"
	@PYTHON=$(BIN)/python tests/device/prepare_wheels.sh || echo "note: wheel cache not prepared; pack tests will skip"

test: install-dev device-root
	$(BIN)/python -m pytest -q

# The fast tier for every edit: the same suite without the tests marked slow (pyproject.toml describes the marker),
# and without preparing the device root (the arm64 and pack tests it serves are all slow).
test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: install-dev
	$(BIN)/ruff check edgecls export runtime tests benchmarks

bench: install-dev
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
