#!/usr/bin/env bash
# Every solution notebook in the gpu profile and bench/run_all.py --profile gpu, all at once, on one GPU.
#
#   bash bench/gpu_session.sh [SECONDS]        # SECONDS: each notebook's and benchmark's deadline (default 330)
#
# Made for a short lease on a lent GPU machine (the workplace's `device` tool), whose Python has its own torch
# and none of the notebook packages: wheels found in .whl/ are installed under /tmp/site first (see
# CONTRIBUTING.md, "The GPU profile"). Runs the notebooks with COURSE_STRICT=1 (the graders' checks) and
# bench/run_all.py with --jobs, so that a run that outlives its deadline is cut (the kernel is interrupted) and
# still leaves its outputs. What comes back, under $OUT (default out/gpu_session):
#   summary.txt        machine, versions, one NOTEBOOK line per notebook, each script's status, GPU use
#   bench.tar.gz       the gpu section of bench/RESULTS.md, its plot, every log, nvidia-smi dmon
#   notebooks.tar.gz   the executed notebooks (split in 15 MB parts if larger)
# The source notebooks are never written.
set -u
budget=${1:-330}
root=$(pwd)
out=${OUT:-$root/out/gpu_session}
work=$(mktemp -d)
mkdir -p "$out" "$work/nb" "$work/logs" "$work/bench"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$work/logs/session.txt"; }

if compgen -G ".whl/*.whl" >/dev/null; then
  log "installing $(ls .whl | wc -l) wheels under /tmp/site"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >"$work/logs/pip.txt" 2>&1 || { log "wheel install failed"; cat "$work/logs/pip.txt"; }
  export PYTHONPATH=/tmp/site:$root
else
  export PYTHONPATH=$root
fi
# Progress bars as text (tqdm.auto would draw a widget, whose progress a saved notebook does not keep).
export IPYTHONDIR=$work/ipython
mkdir -p "$IPYTHONDIR/profile_default/startup"
cat >"$IPYTHONDIR/profile_default/startup/00-text-progress.py" <<'EOF'
import tqdm.auto, tqdm.std
class _TextProgress(tqdm.std.tqdm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("mininterval", 10)
        kwargs.setdefault("ascii", True)
        super().__init__(*args, **kwargs)
tqdm.auto.tqdm = _TextProgress
EOF
export COURSE_PROFILE=gpu COURSE_STRICT=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 PYTHONDONTWRITEBYTECODE=1

{ nvidia-smi; python3 -c "import sys, torch, torchvision; print(sys.version); print('torch', torch.__version__,
  'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available()
  else ''); print('torchvision', torchvision.__version__)"; python3 -m course_utils.tools.doctor; } \
  >"$work/logs/machine.txt" 2>&1
nvidia-smi dmon -s u -d 5 >"$work/logs/dmon.txt" 2>&1 &
dmon=$!

log "start: budget ${budget} s per run"
cp bench/RESULTS.md "$work/bench/RESULTS.md"
scripts=$(ls bench/*.py | grep -v -e run_all -e '/_' | wc -l)
python3 bench/run_all.py --profile gpu --jobs "$scripts" --timeout "$budget" --out "$work/bench" \
  >"$work/logs/bench.txt" 2>&1 &
pids=$!
for nb in solutions/*.ipynb; do
  name=$(basename "$nb" .ipynb)
  python3 bench/_notebook_run.py "$nb" "$work/nb/$name.ipynb" --deadline "$budget" >"$work/logs/$name.txt" 2>&1 &
  pids="$pids $!"
done
wait $pids
kill "$dmon" 2>/dev/null
log "done"

{ cat "$work/logs/session.txt"; echo; head -40 "$work/logs/machine.txt"; echo
  grep -h '^NOTEBOOK' "$work"/logs/*.txt; echo; grep -h '^== ' "$work/logs/bench.txt"; echo
  for f in "$work"/logs/[0-9]*.txt; do echo "--- $(basename "$f"): slowest cells"
    grep '^CELL' "$f" | python3 -c "import sys, json
cells = sorted((json.loads(l[5:]) for l in sys.stdin), key=lambda c: -c['seconds'])
for c in cells[:4]: print(f\"  {c['seconds']:8.1f} s  {c['status']:5}  cell {c['index']}: {c['source']}\")"; done
  echo; echo "GPU utilisation (nvidia-smi dmon, every 5 s):"; awk 'NR<3 || NR%6==0' "$work/logs/dmon.txt" | head -40
} >"$out/summary.txt" 2>&1
tar czf "$out/bench.tar.gz" -C "$work" bench logs
tar czf "$work/notebooks.tar.gz" -C "$work" nb
if [ "$(stat -c %s "$work/notebooks.tar.gz")" -gt 15000000 ]; then
  split -b 15000000 -d "$work/notebooks.tar.gz" "$out/notebooks.tar.gz.part"
else
  cp "$work/notebooks.tar.gz" "$out/"
fi
cat "$out/summary.txt"
