#!/usr/bin/env bash
# Train on the CPU for debugging, through `accelerate launch`. By default one process
# (accelerate_configs/cpu.yaml); NUM_PROCESSES=2 starts two processes that form one gloo world
# (accelerate_configs/cpu_2proc.yaml), to reproduce multi-process behaviour without a GPU.
# Extra arguments go to `accel-trainer train`; with no data options it trains on the demo corpus,
# into outputs/demo-ner unless --output_dir says otherwise. A finished demo model trained with
# other options is never replaced: the run stops and names them (pass --output_dir NEW, or
# --overwrite_output_dir).
#
# Usage:
#   bash launch/cpu_debug.sh --max_train_steps 20 --output_dir outputs/debug
#   NUM_PROCESSES=2 bash launch/cpu_debug.sh --max_train_steps 20 --output_dir outputs/debug-2proc
#
# Environment:
#   NUM_PROCESSES      processes on this machine: 1 (default) or more
#   OMP_NUM_THREADS    threads per process; defaults to 1 when NUM_PROCESSES > 1, so the
#                      processes do not fight over the cores
#   MAIN_PROCESS_PORT  rendezvous port when NUM_PROCESSES > 1; default: a free port
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package is importable from any working directory, installed or not.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

num_processes="${NUM_PROCESSES:-1}"
if ! [[ "${num_processes}" =~ ^[1-9][0-9]*$ ]]; then
  echo "cpu_debug.sh: NUM_PROCESSES must be a positive integer: got '${num_processes}'." >&2
  exit 2
fi
command -v accelerate >/dev/null || {
  echo "cpu_debug.sh: 'accelerate' is not on PATH. Activate the environment where" \
    "accel_trainer is installed." >&2
  exit 2
}

if [[ "${num_processes}" == 1 ]]; then
  # --quiet: the trainer's one-line error, without the launcher's traceback around it.
  launch=(accelerate launch --quiet --config_file "${repo_root}/accelerate_configs/cpu.yaml")
else
  # A MULTI_GPU config is the only one that starts several processes on current Accelerate;
  # ACCELERATE_USE_CPU keeps them on the CPU (gloo) even on a machine that has GPUs.
  export ACCELERATE_USE_CPU=1
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  port="${MAIN_PROCESS_PORT:-$(python3 -c \
    'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}"
  launch=(accelerate launch --config_file "${repo_root}/accelerate_configs/cpu_2proc.yaml"
    --num_processes "${num_processes}" --main_process_port "${port}")
fi

echo "cpu_debug.sh: ${launch[*]} -m accel_trainer train $*" >&2
exec "${launch[@]}" -m accel_trainer train "$@"
