#!/usr/bin/env bash
# The GPU checks of issue 27, in one run of at most 8 minutes on one GPU (time limits 90 + 100 + 60 + 100 + 2 x 60 s);
# each table goes to its own file in OUT:
#   1. cuda_tests.txt  tests/test_cuda.py (skipped on a machine without a GPU)
#   2. mfu.txt         MFU per method at the paper's sizes, float32 and float16 (limits.py mfu)
#   3. syncs.txt       host-device synchronisations per training step (limits.py syncs)
#   4. habits.txt      whole runs in the published pipeline's habits against the defaults (limits.py habits)
#   5. sweep.txt       a four-method demo sweep with 1 and with 4 runs sharing the GPU (wall time of each)
# Usage: OUT=folder benchmarks/gpu_check.sh  (OUT: default results/gpu_check). Each part has its own time limit, so one
# that hangs leaves the others their time; a part that fails says so in its file and the script goes on.
# The machine needs a CUDA build of torch and rsacfn's other requirements importable by $PYTHON (default python3);
# rsacfn itself is installed from this checkout without its dependencies (no registry is reachable there).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-results/gpu_check}
WORK=${WORK:-/tmp/rsacfn_gpu_check}
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1 TQDM_DISABLE=1 RSACFN_CACHE="$WORK/cache"
start=$(date +%s)

$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'; print(torch.__version__, torch.cuda.get_device_name())" \
    > "$OUT/machine.txt" 2>&1 || { cat "$OUT/machine.txt"; echo 'gpu_check: no CUDA torch here'; exit 1; }
$PY -m pip install --quiet --no-deps --no-build-isolation -e . >> "$OUT/machine.txt" 2>&1
$PY -c "import rsacfn.trainer, rsacfn.sweep" >> "$OUT/machine.txt" 2>&1 \
    || { tail -3 "$OUT/machine.txt"; echo 'gpu_check: rsacfn does not import: install its requirements (setup.py)'; exit 1; }

part() {  # part NAME SECONDS COMMAND...: run COMMAND under a time limit, its output in OUT/NAME.txt
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    { echo "command: $*"; timeout "$limit" "$@"; echo "exit status $? after $(( $(date +%s) - t0 )) s"; } > "$OUT/$name.txt" 2>&1
    tail -1 "$OUT/$name.txt" | sed "s/^/$name: /"
}

part cuda_tests 90 $PY -m pytest -q tests/test_cuda.py
part mfu 100 $PY benchmarks/limits.py mfu --device cuda --backbones paper --methods early_fusion,rsa_cfn,hybrid_fusion \
    --steps 3 --profile 3 --out "$WORK"
part syncs 60 $PY benchmarks/limits.py syncs --device cuda --steps 20 --out "$WORK"
part habits 100 $PY benchmarks/limits.py habits --device cuda --epochs 2 --out "$WORK"
{
    echo "command: rsacfn sweep --preset demo --methods text_only,early_fusion,rsa,rsa_cfn --set epochs=2 --jobs 1, then --jobs 4"
    for jobs in 1 4; do
        t0=$(date +%s)
        timeout 60 $PY -m rsacfn sweep "$WORK/sweep_jobs$jobs" --preset demo --methods text_only,early_fusion,rsa,rsa_cfn \
            --set epochs=2 --jobs $jobs > "$WORK/sweep_jobs$jobs.log" 2>&1
        echo "--jobs $jobs: exit status $?, $(( $(date +%s) - t0 )) s for 4 runs"
    done
} > "$OUT/sweep.txt" 2>&1
tail -2 "$OUT/sweep.txt"
echo "gpu_check: $(( $(date +%s) - start )) s; tables in $OUT"
