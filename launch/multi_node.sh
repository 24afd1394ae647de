#!/usr/bin/env bash
# Train on several machines (data parallel) through `accelerate launch` with
# accelerate_configs/multi_node.yaml. Run this same command on every machine, each with its own
# MACHINE_RANK (0 on the machine at MAIN_PROCESS_IP); all machines need the same code, data paths
# and arguments, and the output dir should be on a shared file system. Extra arguments go to
# `accel-trainer train`. launch/slurm.sbatch runs it for you under SLURM.
#
# Usage (two machines with 8 GPUs each; 10.0.0.1 is the first):
#   on 10.0.0.1: MACHINE_RANK=0 MAIN_PROCESS_IP=10.0.0.1 bash launch/multi_node.sh \
#                  --train_file /shared/train.conll --output_dir /shared/outputs/run1
#   on the other: MACHINE_RANK=1 MAIN_PROCESS_IP=10.0.0.1 bash launch/multi_node.sh \
#                  --train_file /shared/train.conll --output_dir /shared/outputs/run1
# Testing on one CPU machine, two "nodes" on loopback (two shells):
#   ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 MACHINE_RANK=0 MAIN_PROCESS_IP=127.0.0.1 \
#     MAIN_PROCESS_PORT=29741 bash launch/multi_node.sh --max_train_steps 3 --output_dir /tmp/mn
#   (and the same with MACHINE_RANK=1)
#
# Environment:
#   MACHINE_RANK       required: 0 .. NUM_MACHINES-1
#   MAIN_PROCESS_IP    required: address of the machine with MACHINE_RANK=0, reachable from all
#   MAIN_PROCESS_PORT  a free TCP port on that machine, the same everywhere; default 29500
#   NUM_MACHINES       machines in the job; default 2
#   GPUS_PER_NODE      processes per machine; default: the GPUs that `nvidia-smi -L` lists,
#                      or 1 when ACCELERATE_USE_CPU=1 (CPU runs, for testing)
#   ACCELERATE_USE_CPU 1 to run every process on the CPU (gloo)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package is importable from any working directory, installed or not.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

# Every problem is reported at once, before anything starts.
problems=()
problem() { problems+=("$*"); }
if [[ -z "${MACHINE_RANK:-}" ]]; then
  problem "MACHINE_RANK is not set. Set it to 0 on the main machine (the one at" \
    "MAIN_PROCESS_IP) and 1 .. NUM_MACHINES-1 on the others."
fi
if [[ -z "${MAIN_PROCESS_IP:-}" ]]; then
  problem "MAIN_PROCESS_IP is not set. Set it to the address of the machine with" \
    "MACHINE_RANK=0, the same on every machine."
fi
main_process_port="${MAIN_PROCESS_PORT:-29500}"
if ! [[ "${main_process_port}" =~ ^[1-9][0-9]{0,4}$ ]] || ((main_process_port > 65535)); then
  problem "MAIN_PROCESS_PORT must be a TCP port from 1 to 65535, the same on every" \
    "machine: got '${main_process_port}'."
fi
num_machines="${NUM_MACHINES:-2}"
if ! [[ "${num_machines}" =~ ^[1-9][0-9]*$ ]]; then
  problem "NUM_MACHINES must be a positive integer: got '${num_machines}'."
elif [[ -n "${MACHINE_RANK:-}" ]] &&
  { ! [[ "${MACHINE_RANK}" =~ ^(0|[1-9][0-9]*)$ ]] || ((MACHINE_RANK >= num_machines)); }; then
  problem "MACHINE_RANK must be an integer from 0 to NUM_MACHINES-1=$((num_machines - 1)):" \
    "got '${MACHINE_RANK}'."
fi

use_cpu=0
# The spellings Accelerate itself reads as true.
case "$(tr '[:upper:]' '[:lower:]' <<<"${ACCELERATE_USE_CPU:-}")" in
  1 | y | yes | t | true | on) use_cpu=1 ;;
esac
gpus_per_node="${GPUS_PER_NODE:-}"
if [[ -z "${gpus_per_node}" && "${use_cpu}" == 1 ]]; then
  gpus_per_node=1
elif [[ -z "${gpus_per_node}" ]]; then
  if gpu_list="$(nvidia-smi -L 2>/dev/null)"; then
    gpus_per_node="$(grep -c '^GPU ' <<<"${gpu_list}" || true)"
  else
    gpus_per_node="(nvidia-smi -L failed)"
  fi
fi
if ! [[ "${gpus_per_node}" =~ ^[1-9][0-9]*$ ]]; then
  problem "GPUS_PER_NODE must be a positive integer: got '${gpus_per_node}'. Set" \
    "GPUS_PER_NODE, check that 'nvidia-smi -L' lists the GPUs, or set ACCELERATE_USE_CPU=1 to" \
    "run on the CPU."
fi
if ! command -v accelerate >/dev/null; then
  problem "'accelerate' is not on PATH. Activate the environment where accel_trainer is" \
    "installed."
fi

if ((${#problems[@]} > 0)); then
  printf 'multi_node.sh: %s\n' "${problems[@]}" >&2
  exit 2
fi

launch=(accelerate launch --config_file "${repo_root}/accelerate_configs/multi_node.yaml"
  --machine_rank "${MACHINE_RANK}"
  --main_process_ip "${MAIN_PROCESS_IP}"
  --main_process_port "${main_process_port}"
  --num_machines "${num_machines}"
  --num_processes "$((num_machines * gpus_per_node))")
echo "multi_node.sh: ${launch[*]} -m accel_trainer train $*" >&2
exec "${launch[@]}" -m accel_trainer train "$@"
