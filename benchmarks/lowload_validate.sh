#!/bin/bash
# Re-run of the prediction-accuracy benchmark at lower machine load (one other niced job).
set -u
# Usage: bash benchmarks/lowload_validate.sh [OUT_DIR]   (from the repository root, venv in .venv)
PS=${PERFSTUDENT:-.venv/bin/perfstudent}
OUT=${1:-benchmarks/results/lowload}
mkdir -p "$OUT"
run() { # backend arch size
  local lut=$OUT/$1-$2-$3.sqlite
  echo "== $1 $2 @$3 start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $PS profile --device local --backend $1 --threads 1 --arch $2 --input-size $3 --lut $lut --json > $OUT/profile-$1-$2-$3.json 2>/dev/null
  $PS lut validate --device local --backend $1 --threads 1 --arch $2 --input-size $3 --samples ${4:-50} --lut $lut --json > $OUT/validate-$1-$2-$3.json 2>/dev/null
  echo "   done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  ${PYTHON:-.venv/bin/python} -c "import json;d=json.load(open('$OUT/validate-$1-$2-$3.json'));print({k:d[k] for k in d if not isinstance(d[k],(list,dict))})"
}
run onnxruntime resnet20 32
run torch resnet20 32
run onnxruntime resnet56 32
run torch resnet56 32
run onnxruntime resnet18 224 20
