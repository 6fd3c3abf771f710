#!/usr/bin/env bash
# The GPU checks as one prepared script, for a session that has a lent GPU (or any CUDA machine):
#   the CUDA-vs-CPU renderer test, renderer / pretraining / inversion figures at the paper profile,
#   every notebook at the quick profile on the device, and the torchrun command line on the device.
# Prints key=value lines to quote in the README's "For instructors" GPU column. About 5-10 minutes.
#
#   bash bench/gpu_check.sh                         # .venv/bin/python, DEVICE=cuda, PROFILE=paper
#   DEVICE=cpu PROFILE=quick bash bench/gpu_check.sh  # dry run of the plumbing on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-paper}
WORK=${WORK:-$(mktemp -d)}
echo "== device"
$PY -c "import torch; print('torch', torch.__version__, 'cuda_available=%s' % torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
echo "== CUDA test (skipped without a GPU)"
$PY -m pytest -q -rs tests/test_render.py -k cuda | tail -2
echo "== renderer"
$PY bench/render.py --device "$DEVICE" --repeats 5 | tail -5
echo "== pretraining, $PROFILE profile"
$PY bench/pretrain.py --profile "$PROFILE" --device "$DEVICE" --iterations 20 | tail -3
echo "== inversion, $PROFILE profile"
$PY bench/invert.py --profile "$PROFILE" --device "$DEVICE" --images 4 | tail -4
echo "== every notebook, quick profile, on $DEVICE"
start=$(date +%s)
$PY -m meshinv_lite.pipeline --profile quick --device "$DEVICE" --data-dir "$WORK/data" --output-root "$WORK/outputs" \
  | grep -E '^\| [0-9]{2}_' | cut -d'|' -f2-4
echo "pipeline_quick_${DEVICE}_seconds=$(( $(date +%s) - start ))"
echo "== torchrun command line on $DEVICE (1 process per GPU; CPU: 2 gloo processes)"
n=1; [ "$DEVICE" = cpu ] && n=2
$PY -m torch.distributed.run --standalone --nproc_per_node "$n" -m meshinv_lite.cli evaluate --profile quick \
  --device "$DEVICE" --data-dir "$WORK/data" --out-dir "$WORK/eval_cli" --limit 4 --batch-size 2 --views 1 --quiet \
  2>&1 | grep '^\[rank'
echo "gpu_check_done=1 work=$WORK"
