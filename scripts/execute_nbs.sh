#!/usr/bin/env bash
# Re-run notebooks in place so the committed outputs (tables, plots, samples) are real, stamp each with a fingerprint of
# the code that produced them (scripts/freshness.py; a test fails when outputs and code part ways), then clean them.
# Usage: scripts/execute_nbs.sh [notebook ...]   (default: every notebook under nbs/)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
nbs=("$@"); [ ${#nbs[@]} -gt 0 ] || mapfile -t nbs < <(find nbs -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
sockets=$(mktemp -d); trap 'rm -rf "$sockets"' EXIT  # the kernel's sockets: private files (IPC), not TCP ports
for nb in "${nbs[@]}"; do
  echo "executing $nb"
  # a failing notebook stops the script (pipefail); only grep's "no lines left" is forgiven
  (cd "$(dirname "$nb")" && "$OLDPWD/$BIN/jupyter" nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=3600 \
     --KernelManager.transport=ipc --KernelManager.ip="$sockets/kernel" "$(basename "$nb")" 2>&1) \
    | { grep -v "^\[NbConvertApp\]" || true; }
  "$BIN/python" scripts/freshness.py stamp "$nb"
done
"$BIN/nbdev_clean"
"$BIN/python" scripts/docs.py readme
