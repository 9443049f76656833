#!/usr/bin/env bash
# Install the CPU build of torch into the venv whose python is $1, portably.
#
# Why a script: `pip install torch==2.13.0` from plain PyPI fetches the CUDA build (several
# GB of nvidia-* wheels) on Linux x86_64. The CPU build carries a local version label
# (2.13.0+cpu) that only PyTorch's CPU wheel index and a machine's own wheel cache hold, so
# asking for exactly that label can never silently turn into a CUDA download:
#   1. PyTorch's CPU index reachable: add it as an extra index (dependencies still come
#      from the index pip is configured with, PyPI by default).
#   2. Not reachable (a machine that only reaches PyPI): ask pip as configured here; where
#      pip has a local copy of the CPU wheel (find-links, a mirror) it installs, elsewhere
#      it fails with "No matching distribution" instead of downloading CUDA.
# Override with TORCH_VERSION=... or TORCH_INDEX=... (e.g. a company mirror of that index).
set -euo pipefail
PY=${1:?usage: install-torch.sh PATH/TO/venv/bin/python}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
want="torch==${TORCH_VERSION}+cpu"

if "$PY" - "$want" <<'EOF'
import sys
from importlib import metadata
try:
    have = metadata.version("torch")
except metadata.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if have == sys.argv[1].split("==", 1)[1] else 1)
EOF
then
    echo "install-torch: $want already installed"
    exit 0
fi

if "$PY" - "$TORCH_INDEX" <<'EOF'
import sys, urllib.request
url = sys.argv[1].rstrip("/") + "/torch/"
try:
    with urllib.request.urlopen(url, timeout=10) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
then
    echo "install-torch: $want from $TORCH_INDEX"
    "$PY" -m pip install -q --extra-index-url "$TORCH_INDEX" "$want"
else
    echo "install-torch: $TORCH_INDEX not reachable; $want through pip as configured here"
    "$PY" -m pip install -q "$want"
fi

# A CUDA build would report a CUDA version: refuse to leave one behind.
"$PY" -W ignore -c 'import sys, torch; sys.exit(f"not a CPU build: torch {torch.__version__} (CUDA {torch.version.cuda})" if torch.version.cuda else 0)'
