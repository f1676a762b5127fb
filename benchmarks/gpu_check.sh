#!/usr/bin/env bash
# The GPU checks of issue 27, in one run of at most 8 minutes on one GPU (time limits 80 + 110 + 40 + 90 + 3 x 50 s);
# each table goes to its own file in OUT:
#   1. cuda_tests.txt  tests/test_cuda.py (skipped on a machine without a GPU)
#   2. mfu.txt         MFU per method at the paper's sizes, float32, bfloat16 and float16 (limits.py mfu)
#   3. syncs.txt       host-device synchronisations per training step, bfloat16 and float16 (limits.py syncs)
#   4. habits.txt      whole runs in the published pipeline's habits against the defaults (limits.py habits)
#   5. sweep.txt       a four-method demo sweep with 1 and with 4 runs sharing the GPU, and 4 through CUDA MPS
#                      (wall time of each; the throughput of 4 at a time against 1)
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
$PY -c "import rsacfn.training.loop, rsacfn.experiments.sweep" >> "$OUT/machine.txt" 2>&1 \
    || { tail -3 "$OUT/machine.txt"; echo 'gpu_check: rsacfn does not import: install its requirements (setup.py)'; exit 1; }

part() {  # part NAME SECONDS COMMAND...: run COMMAND under a time limit, its output in OUT/NAME.txt
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    { echo "command: $*"; timeout "$limit" "$@"; echo "exit status $? after $(( $(date +%s) - t0 )) s"; } > "$OUT/$name.txt" 2>&1
    tail -1 "$OUT/$name.txt" | sed "s/^/$name: /"
}

part cuda_tests 80 $PY -m pytest -q tests/test_cuda.py
part mfu 110 $PY benchmarks/limits.py mfu --device cuda --backbones paper --methods early_fusion,rsa_cfn,hybrid_fusion \
    --steps 3 --profile 3 --out "$WORK"
part syncs 40 $PY benchmarks/limits.py syncs --device cuda --steps 20 --out "$WORK"
part habits 90 $PY benchmarks/limits.py habits --device cuda --epochs 2 --out "$WORK"
{
    echo "command: rsacfn sweep --preset demo --methods text_only,early_fusion,rsa,rsa_cfn --set epochs=2 --jobs 1;" \
         "then --jobs 4; then --jobs 4 --mps (CUDA MPS started for the sweep, where the driver has it)"
    declare -A took
    for how in "1" "4" "4 --mps"; do
        if [[ $how == *mps* ]] && ! command -v nvidia-cuda-mps-control > /dev/null; then
            echo "--jobs $how: not run, no nvidia-cuda-mps-control here"; continue
        fi
        t0=$(date +%s)
        timeout 50 $PY -m rsacfn sweep "$WORK/sweep_jobs${how// /}" --preset demo --methods text_only,early_fusion,rsa,rsa_cfn \
            --set epochs=2 --jobs $how > "$WORK/sweep_jobs${how// /}.log" 2>&1
        status=$?; took[$how]=$(( $(date +%s) - t0 ))
        echo "--jobs $how: exit status $status, ${took[$how]} s for 4 runs"
    done
    for how in "4" "4 --mps"; do
        [[ -n ${took[$how]:-} && -n ${took[1]:-} ]] && awk -v a="${took[1]}" -v b="${took[$how]}" -v h="$how" \
            'BEGIN { r = a / b; printf "--jobs %s: %.2fx the throughput of one run at a time (target 2.5x): %s\n", h, r, (r >= 2.5 ? "met" : "NOT met") }'
    done
} > "$OUT/sweep.txt" 2>&1
tail -3 "$OUT/sweep.txt"
echo "gpu_check: $(( $(date +%s) - start )) s; tables in $OUT"
