#!/usr/bin/env bash
# The 7-8B path on one GPU, end to end, in one command (<= 8 minutes on one H100/H200):
#
#   bash bench/gpu_check.sh [--dry-run] [--out DIR] [--wheels DIR] [-- extra bench/gpu_check.py args]
#
# 1. installs the wheels it is handed (offline: --no-index --no-deps), e.g. bitsandbytes 0.50.2, when the
#    package is not importable yet (default folder: $BAKEOFF_WHEELS or ./wheels);
# 2. runs the `gpu`-marked tests (on CUDA only);
# 3. runs bench/gpu_check.py: full-size Mistral-7B and Llama-3-8B shapes, random weights, bf16 LoRA and
#    QLoRA training and label scoring through bakeoff's own code, beside `bakeoff estimate`; JSON to the
#    output folder ($OUT when set, else bench/results/gpu_check).
# --dry-run: everything but CUDA, on CPU with the models cut to one narrow layer (the CI check).
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
out="${OUT:-bench/results/gpu_check}"
wheels="${BAKEOFF_WHEELS:-wheels}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) out="$2"; shift ;;
    --wheels) wheels="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
started=$(date +%s)

if ! "$PY" -c "import bitsandbytes" 2>/dev/null; then
  if compgen -G "$wheels/*.whl" >/dev/null; then
    echo "installing $(ls "$wheels"/*.whl | xargs -n1 basename | tr '\n' ' ')"
    "$PY" -m pip install --quiet --no-index --no-deps "$wheels"/*.whl
  else
    echo "bitsandbytes is missing and no wheels in $wheels: QLoRA rows will fail (pip download --no-deps bitsandbytes==0.50.2 -d wheels)" >&2
  fi
fi

if [ "$dry_run" = 1 ]; then
  echo "gpu-marked tests: not run (they need CUDA; the fast suite imports their files)"
  "$PY" bench/gpu_check.py --dry-run --out "$out" --models mistral-7b --steps 3 --batch-size 4 --work "$out/models" "${extra[@]}"
else
  # A failing test must not cost the benchmark (set -e would stop here): its status is kept for the end.
  tests_status=0
  "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/ > "$out/gpu_tests.txt" 2>&1 || tests_status=$?
  tail -5 "$out/gpu_tests.txt"
  "$PY" bench/gpu_check.py --out "$out" "${extra[@]}"
fi
echo "gpu_check finished in $(( $(date +%s) - started )) s; results in $out"
if [ "${tests_status:-0}" != 0 ]; then
  echo "gpu-marked tests FAILED (exit $tests_status): see $out/gpu_tests.txt" >&2
  exit "$tests_status"
fi
