#!/usr/bin/env bash
# Open MPI side of the trainer's launcher test (tests/trainer_bridge/test_openmpi.py).
#
# mpi4py must be compiled against the MPI that launches it, and the main .venv's mpi4py is linked to the
# `mpich` wheel, so Open MPI gets its own virtualenv (default $HOME/.cache/jcorpus/openmpi-venv, outside the
# repo; override with JCORPUS_OPENMPI_VENV). The repo's packages are NOT installed into it: the test puts the
# checkout on PYTHONPATH, so both launchers run the very same sve_kernels binary (an editable install would
# rebuild it into the shared source tree). That is ABI-safe because this venv is made from the main venv's
# own base interpreter, and rebuilt when the main venv's Python version changes.
#
# Idempotent: installs Debian's openmpi-bin/libopenmpi-dev only when missing (and only as root), builds the
# venv only when it is missing or was left half-built by this script. Whenever it cannot finish it says why
# and exits 0, so `make test` goes on and the Open MPI test skips with a reason.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${JCORPUS_OPENMPI_VENV:-$HOME/.cache/jcorpus/openmpi-venv}"
MAIN_PY="$ROOT/.venv/bin/python"
STAMP="$VENV/.jcorpus-openmpi-ok"
BUILDING="$VENV/.jcorpus-openmpi-building"
LOG="${VENV%/}.log"

give_up() { echo "setup_openmpi: $*; the Open MPI trainer test will skip" >&2; exit 0; }

# An Open MPI compiler wrapper: Debian's explicit name first (alternatives may point mpicc at MPICH),
# then any mpicc that answers Open MPI's --showme.
find_mpicc() {
  if command -v mpicc.openmpi >/dev/null 2>&1; then command -v mpicc.openmpi; return 0; fi
  if command -v mpicc >/dev/null 2>&1 && mpicc --showme:version 2>/dev/null | grep -q "Open MPI"; then
    command -v mpicc; return 0
  fi
  return 1
}

pyver() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
MAIN_VER="$(pyver "$MAIN_PY")"
# complete, its launcher (a link into the system's Open MPI) still resolves, and its Python is the main venv's
# (a venv built for a 3.11 checkout cannot load a 3.12 checkout's compiled kernels: the test skipped)
ready() {
  [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && [ -e "$VENV/bin/mpirun" ] && [ "$(pyver "$VENV/bin/python")" = "$MAIN_VER" ]
}
if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && [ "$(pyver "$VENV/bin/python")" != "$MAIN_VER" ]; then
  echo "setup_openmpi: $VENV has Python $(pyver "$VENV/bin/python"), the main venv $MAIN_VER: rebuilding it"
fi

if ready; then
  echo "setup_openmpi: $VENV is ready"
  exit 0
fi

MPICC="$(find_mpicc)" || {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    give_up "no Open MPI (mpicc.openmpi) and no root/apt-get to install openmpi-bin libopenmpi-dev"
  fi
  echo "setup_openmpi: installing Debian's openmpi-bin libopenmpi-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null 2>&1; } \
    || give_up "apt-get install openmpi-bin libopenmpi-dev failed"
  MPICC="$(find_mpicc)" || give_up "Open MPI installed but no Open MPI mpicc found"
}
# the launcher that belongs to this compiler wrapper (mpicc.openmpi -> mpirun.openmpi)
MPIRUN="$(dirname "$MPICC")/$(basename "$MPICC" | sed 's/^mpicc/mpirun/')"
[ -x "$MPIRUN" ] || give_up "no $MPIRUN next to $MPICC"
if ready; then  # only the Debian packages were missing
  echo "setup_openmpi: $VENV is ready"
  exit 0
fi
if [ -e "$VENV" ] && [ ! -f "$BUILDING" ] && [ ! -f "$STAMP" ]; then
  give_up "$VENV exists but was not made by this script: remove it or set JCORPUS_OPENMPI_VENV"
fi
[ -x "$MAIN_PY" ] || give_up "no $MAIN_PY (run make install first)"
BASE_PY="$("$MAIN_PY" -c 'import sys; print(sys._base_executable)')" || give_up "cannot query $MAIN_PY"

# Same versions as the main venv, so numpy's BLAS and the stream code are the ones the MPICH run uses.
PINS="$("$MAIN_PY" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version
out = []
for name in ("numpy", "pyarrow", "sentencepiece", "mpi4py"):
    try:
        out.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        out.append(name)
print(" ".join(out))
EOF
)" || give_up "cannot read package versions from $MAIN_PY"
MPI4PY_PIN="${PINS##* }"
OTHER_PINS="${PINS% *}"

echo "setup_openmpi: building $VENV ($OTHER_PINS, $MPI4PY_PIN from source with $MPICC; log $LOG)"
start=$(date +%s)
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
{
  "$BASE_PY" -m venv "$VENV" && touch "$BUILDING" \
  && "$VENV/bin/python" -m pip install -q $OTHER_PINS \
  && MPICC="$MPICC" "$VENV/bin/python" -m pip install -q --no-binary=mpi4py --no-cache-dir "$MPI4PY_PIN"
} >"$LOG" 2>&1 || { tail -n 5 "$LOG" >&2; give_up "building the venv failed (full log: $LOG)"; }

version="$("$VENV/bin/python" -c 'import mpi4py; mpi4py.rc.initialize = False
from mpi4py import MPI; print(MPI.Get_library_version().replace(chr(0), "").splitlines()[0])' 2>>"$LOG")" \
  || give_up "mpi4py in $VENV does not import (log: $LOG)"
case "$version" in
  *"Open MPI"*) ;;
  *) give_up "mpi4py in $VENV is linked to '$version', not Open MPI" ;;
esac
ln -sfn "$MPIRUN" "$VENV/bin/mpirun"  # the venv carries its matching launcher
rm -f "$BUILDING"
touch "$STAMP"
echo "setup_openmpi: ready in $(( $(date +%s) - start )) s: $version"
