#!/usr/bin/env bash
# Train on all GPUs of one machine (data parallel) through `accelerate launch` with
# accelerate_configs/multi_gpu.yaml; one process per GPU. Extra arguments go to
# `accel-trainer train`; --per_device_train_batch_size is per GPU.
#
# Usage:
#   bash launch/multi_gpu.sh --train_file train.conll --validation_file dev.conll \
#     --model_name_or_path bert-base-cased --output_dir outputs/my-ner
#   NUM_GPUS=4 MAIN_PROCESS_PORT=29600 bash launch/multi_gpu.sh --output_dir outputs/demo-4gpu
#
# Environment:
#   NUM_GPUS           processes to start; default: the GPUs that `nvidia-smi -L` lists
#                      (with CUDA_VISIBLE_DEVICES set, give NUM_GPUS to match it)
#   MAIN_PROCESS_PORT  rendezvous port; default: the config's (29500)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package is importable from any working directory, installed or not.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

command -v accelerate >/dev/null || {
  echo "multi_gpu.sh: 'accelerate' is not on PATH. Activate the environment where" \
    "accel_trainer is installed." >&2
  exit 2
}

if [[ -z "${NUM_GPUS:-}" ]]; then
  if ! gpu_list="$(nvidia-smi -L 2>/dev/null)"; then
    echo "multi_gpu.sh: NUM_GPUS is not set and 'nvidia-smi -L' failed. Set NUM_GPUS to the" \
      "number of GPUs to use." >&2
    exit 2
  fi
  NUM_GPUS="$(grep -c '^GPU ' <<<"${gpu_list}" || true)"
fi
if ! [[ "${NUM_GPUS}" =~ ^[1-9][0-9]*$ ]]; then
  echo "multi_gpu.sh: NUM_GPUS must be a positive integer: got '${NUM_GPUS}'. Set NUM_GPUS," \
    "or check that 'nvidia-smi -L' lists the GPUs." >&2
  exit 2
fi

launch=(accelerate launch --config_file "${repo_root}/accelerate_configs/multi_gpu.yaml"
  --num_processes "${NUM_GPUS}")
if [[ -n "${MAIN_PROCESS_PORT:-}" ]]; then
  launch+=(--main_process_port "${MAIN_PROCESS_PORT}")
fi
echo "multi_gpu.sh: ${launch[*]} -m accel_trainer train $*" >&2
exec "${launch[@]}" -m accel_trainer train "$@"
