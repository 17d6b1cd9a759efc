#!/usr/bin/env bash
# scripts/gpu-check.sh: check edgetune's GPU paths on a machine with an NVIDIA GPU, after `npm ci &&
# npm run build`. Prints the detected profile, which providers load, classifies a photo on each GPU
# provider, and benchmarks GPU vs CPU in one run. If onnxruntime-node has no CUDA/TensorRT provider
# libraries but a CUDA build of ONNX Runtime 1.30 is installed for Python (onnxruntime-gpu), its provider
# libraries are linked beside onnxruntime-node's binding first (ORT_PROVIDER_DIR overrides the search).
set -u
NODE=${NODE:-node}
IMG=${IMG:-${EDGETUNE_SHARED:-../shared}/camera/winml_dog.jpg}
CLI="$NODE dist/runtime/cli.js"
BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64

echo "== GPU"; nvidia-smi -L 2>&1 | head -4
if [ ! -e "$BIN/libonnxruntime_providers_cuda.so" ]; then
  dir=${ORT_PROVIDER_DIR:-$(python3 -c 'import onnxruntime,os;print(os.path.join(os.path.dirname(onnxruntime.__file__),"capi"))' 2>/dev/null)}
  echo "== provider libraries from: ${dir:-none}"
  for lib in shared cuda tensorrt; do
    f="$dir/libonnxruntime_providers_$lib.so"
    [ -e "$f" ] && ln -sf "$f" "$BIN/" && echo "linked $f"
  done
fi
echo "== devices"; $CLI devices
for ep in tensorrt cuda webgpu cpu; do
  echo "== classify --ep $ep"; $CLI classify "$IMG" --ep "$ep" --top 1 --json
done
echo "== classify with the detected profile"; $CLI classify "$IMG" --top 1
echo "== bench"
for ep in cuda webgpu cpu; do $CLI bench --model mobilenetv2-int8,squeezenet1.1 --batch 1,8 --ep "$ep" --iterations 30 2>&1 | grep -v '^model' ; done
