#!/usr/bin/env bash
# scripts/gpu-check.sh: check edgetune's GPU path on a machine with an NVIDIA GPU, after `npm ci && npm run
# build`: the provider probe (`devices`), classify served by TensorRT+CUDA in one session and by CUDA
# alone (each checked to be served by the provider asked for, not a CPU fallback), the benchmark, a
# quantize smoke test (int8 model classified on the GPU) and a short `finetune --unfreeze` (phase 2's
# training graphs on the GPU). Each step prints ok/FAILED; the exit code is the number of failed steps.
#
#   scripts/gpu-check.sh          on a GPU machine; on a machine without one it says so and exits 0
#   scripts/gpu-check.sh --cpu    the same steps served by the CPU provider: CI runs this
#                                 (test/e2e/gpu-check.test.ts) so the script cannot fall behind the CLI
#
# If onnxruntime-node has no CUDA/TensorRT provider libraries but a CUDA build of ONNX Runtime 1.30 is
# installed for Python (onnxruntime-gpu), its provider libraries are linked beside onnxruntime-node's
# binding first (ORT_PROVIDER_DIR overrides the search). Assets: EDGETUNE_SHARED (default ../shared).
set -u
cd "$(dirname "$0")/.."
NODE=${NODE:-node}
CLI=("$NODE" dist/runtime/cli/main.js)
if [ ! -f dist/runtime/cli/main.js ]; then
  echo "gpu-check: dist/runtime/cli/main.js missing: run npm run build first" >&2
  exit 2
fi
export EDGETUNE_SHARED=${EDGETUNE_SHARED:-$(cd .. && pwd)/shared}
export EDGETUNE_MODEL_PATH=${EDGETUNE_MODEL_PATH:-$EDGETUNE_SHARED/models}
export EDGETUNE_OFFLINE=1
IMG=${IMG:-$EDGETUNE_SHARED/camera/winml_dog.jpg}
DATA=$EDGETUNE_SHARED/datasets/hymenoptera

if [ "${1:-}" = --cpu ]; then
  mode=cpu
  EP=cpu
  WANT=cpu
  ITER=3
else
  mode=gpu
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi is missing or lists no GPU): nothing to check."
    echo "gpu-check: scripts/gpu-check.sh --cpu runs the same steps on the CPU provider."
    exit 0
  fi
  # TensorRT and CUDA in one session: nodes TensorRT cannot run fall to CUDA, not to the CPU
  EP=tensorrt,cuda,cpu
  WANT=tensorrt
  ITER=30
  echo "== GPU"
  nvidia-smi -L 2>&1 | head -4
  BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
  if [ ! -e "$BIN/libonnxruntime_providers_cuda.so" ]; then
    dir=${ORT_PROVIDER_DIR:-$(python3 -c 'import onnxruntime,os;print(os.path.join(os.path.dirname(onnxruntime.__file__),"capi"))' 2>/dev/null)}
    echo "== provider libraries from: ${dir:-none}"
    for lib in shared cuda tensorrt; do
      f="$dir/libonnxruntime_providers_$lib.so"
      [ -e "$f" ] && ln -sf "$f" "$BIN/" && echo "linked $f"
    done
  fi
fi
for f in "$IMG" "$DATA/train/ants" "$EDGETUNE_MODEL_PATH/mobilenetv2-12-fp32-rebuilt.onnx"; do
  if [ ! -e "$f" ]; then
    echo "gpu-check: $f missing (set EDGETUNE_SHARED to the shared assets folder)" >&2
    exit 2
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a small two-class dataset (links to real photos): 6 training and 3 validation images per class
for split in train val; do
  n=$([ $split = train ] && echo 6 || echo 3)
  for cls in ants bees; do
    mkdir -p "$work/data/$split/$cls"
    find "$DATA/$split/$cls" -maxdepth 1 -type f -name '*.jpg' | sort | head -n "$n" | while read -r f; do ln -s "$f" "$work/data/$split/$cls/"; done
  done
done

failed=0
step() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then echo "ok: $name"; else
    echo "FAILED: $name"
    failed=$((failed + 1))
  fi
}

# JSON lines on stdin: every line's "provider" must be $1; prints the lines
served_by() {
  "$NODE" -e '
    const want = process.argv[1];
    const lines = require("node:fs").readFileSync(0, "utf8").split("\n").filter((l) => l.startsWith("{"));
    if (!lines.length) { console.error("no JSON output"); process.exit(1); }
    for (const l of lines) {
      const r = JSON.parse(l);
      console.log(l.slice(0, 300));
      if (r.error) { console.error(`error: ${r.error}`); process.exit(1); }
      if (r.provider !== want) { console.error(`served by ${r.provider}, expected ${want}`); process.exit(1); }
    }' "$1"
}

devices() {
  local out
  out=$("${CLI[@]}" devices --json) || return 1
  echo "$out" | head -c 2000
  echo
  [ $mode = cpu ] && return 0
  # on a GPU machine the probe must find both NVIDIA providers working
  echo "$out" | "$NODE" -e '
    const r = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const bad = r.providers.filter((p) => (p.name === "cuda" || p.name === "tensorrt") && !p.ok);
    for (const p of bad) console.error(`${p.name}: ${p.error}`);
    process.exit(bad.length ? 1 : 0);'
}
classify_on() { "${CLI[@]}" classify "$IMG" --model mobilenetv2-int8 --top 1 --ep "$1" --json | served_by "$2"; }
bench() { "${CLI[@]}" bench --model mobilenetv2-int8,squeezenet1.1 --batch 1,8 --iterations "$ITER" --image "$IMG" --ep "$EP" --json | served_by "$WANT"; }
quantize() {
  "${CLI[@]}" quantize --model squeezenet1.1 --calib "$work/data/train" --calib-count 12 --correction-images 0 --out "$work/squeezenet-int8.onnx" --ep "$EP" >/dev/null &&
    "${CLI[@]}" classify "$IMG" --model "$work/squeezenet-int8.onnx" --top 1 --ep "$EP" --json | served_by "$WANT"
}
finetune_unfreeze() {
  "${CLI[@]}" finetune "$work/data/train" --val "$work/data/val" --model mobilenetv2-fp32 --augment none --epochs 3 --unfreeze 1 --unfreeze-epochs 1 \
    --no-cache --out "$work/tuned.onnx" --ep "$EP" --json >"$work/finetune.json" || return 1
  "$NODE" -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log(`accuracy ${r.accuracy}, phase 2: ${JSON.stringify(r.unfreeze).slice(0, 200)}`);
    process.exit(r.unfreeze ? 0 : 1);' "$work/finetune.json" &&
    "${CLI[@]}" classify "$IMG" --model "$work/tuned.onnx" --top 1 --ep "$EP" --json | served_by "$WANT"
}

step "devices (provider probe)" devices
step "classify on $EP" classify_on "$EP" "$WANT"
[ $mode = gpu ] && step "classify on cuda alone" classify_on cuda cuda
step "bench on $EP" bench
step "quantize smoke (int8 model served on $EP)" quantize
step "finetune --unfreeze on $EP" finetune_unfreeze
echo "== gpu-check ($mode): $failed step(s) failed"
exit "$failed"
