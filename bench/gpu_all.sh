#!/usr/bin/env bash
# Every GPU benchmark of issue 15, one after another, in one device run of well under 10 minutes on an H200:
# bench/gpu_sdxl.py, gpu_video.py, gpu_sam2.py, gpu_lipsync.py, each with sizes chosen to fit (below) and its own
# time cap, so one slow script cannot take the others' time. Each writes its JSON under $OUT; gpu_all.json
# records every script's exit status and wall seconds (124 = it hit its cap).
#
#   here, once:   bench/gpu_all.sh --fetch-wheels   (each script's --fetch-wheels: the wheels the GPU image lacks
#                                                    into the git-ignored .whl/)
#   GPU host:     device run, carry [".whl"], command:  bash bench/gpu_all.sh
#                 (installs .whl/*.whl with pip --no-index --no-deps --target /tmp/site, then runs the four)
#   CPU dry run:  bench/gpu_all.sh --tiny            (the same scripts in their --tiny modes, tiny weights, CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-gpu}
OUT=${OUT:-/tmp/gpu_all-out}
mkdir -p "$OUT"

if [[ $MODE == --fetch-wheels ]]; then
  PY=${PYTHON:-.venv/bin/python}
  for s in gpu_sdxl gpu_video gpu_sam2; do "$PY" "bench/$s.py" --fetch-wheels || exit 1; done
  exit 0  # gpu_lipsync.py needs no wheels beyond gpu_sdxl.py's
fi

if [[ $MODE == --tiny ]]; then
  PY=${PYTHON:-.venv/bin/python}
  # name | cap (s) | arguments (CPU: tiny weights, few repeats)
  PLAN=("gpu_sdxl|300|--tiny --images 2 --switches 2"
        "gpu_video|300|--tiny --clips 1 --switches 2 --offload none"
        "gpu_sam2|300|--tiny --frames 8 --repeats 1 --switches 2"
        "gpu_lipsync|300|--tiny --frames 100 --repeats 1 --switches 2")
else
  PY=${PYTHON:-python3}
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  # Sizes for ≈ 7 minutes in all on an H200 (most of it building and saving the random full-size weights):
  # SDXL 1024², 30 steps, 2 images; LTX 1024×576, 30 steps, one clip on the 16 GB plan (model offload);
  # SAM2 hiera-large 32 frames; Wav2Lip 1000-frame calls.
  PLAN=("gpu_sdxl|170|--images 2 --switches 3"
        "gpu_video|190|--clips 1 --switches 2 --offload model"
        "gpu_sam2|70|--frames 32 --repeats 2 --switches 3"
        "gpu_lipsync|60|--frames 1000 --repeats 2 --switches 3")
fi
export PYTHONUNBUFFERED=1

rows=()
for entry in "${PLAN[@]}"; do
  IFS='|' read -r name cap args <<<"$entry"
  echo "== $name ($args; cap ${cap}s)"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # the arguments are words on purpose
  timeout --kill-after=10 "$cap" "$PY" "bench/$name.py" $args --out "$OUT"
  rc=$?
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "== $name: exit $rc, ${wall}s"
  rows+=("{\"script\": \"$name\", \"args\": \"$args\", \"cap_s\": $cap, \"rc\": $rc, \"wall_s\": $wall}")
done
(IFS=,; echo "{\"mode\": \"$MODE\", \"runs\": [${rows[*]}]}") >"$OUT/gpu_all.json"
cat "$OUT/gpu_all.json"
ls -l "$OUT"
