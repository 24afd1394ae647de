#!/usr/bin/env bash
# Train on one GPU through `accelerate launch` with accelerate_configs/single_gpu.yaml.
# Extra arguments go to `accel-trainer train`. Pick the card with CUDA_VISIBLE_DEVICES.
#
# Usage:
#   bash launch/single_gpu.sh --train_file train.conll --validation_file dev.conll \
#     --model_name_or_path bert-base-cased --output_dir outputs/my-ner
#   CUDA_VISIBLE_DEVICES=3 bash launch/single_gpu.sh --output_dir outputs/demo-gpu3
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package is importable from any working directory, installed or not.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

command -v accelerate >/dev/null || {
  echo "single_gpu.sh: 'accelerate' is not on PATH. Activate the environment where" \
    "accel_trainer is installed." >&2
  exit 2
}

launch=(accelerate launch --config_file "${repo_root}/accelerate_configs/single_gpu.yaml")
echo "single_gpu.sh: ${launch[*]} -m accel_trainer train $*" >&2
exec "${launch[@]}" -m accel_trainer train "$@"
