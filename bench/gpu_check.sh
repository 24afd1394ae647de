#!/usr/bin/env bash
# The GPU check of issue 23 point 8. NER (NCBI-disease) and RE (SemEval-2010 Task 8) with
# all-MiniLM-L6-v2 in bf16, one process each under DDP, FSDP2 and DeepSpeed ZeRO-3 (when
# `import deepspeed` works), every final folder loaded by transformers.pipeline, NER tokens/s
# against transformers' Trainer on the same data and steps, MFU. Writes OUTDIR/gpu_check.md
# (one table), gpu_check.json (the raw results) and logs.txt (the end of each run's log).
#
# Here, once: bash bench/gpu_check_prepare.sh   (fills .gpu_carry/, about 53 MiB). Then:
#   run(command="bash bench/gpu_check.sh $OUT", carry=[".gpu_carry"], timeout_s=540)
# CPU smoke, with tiny-bert on demo data, a few steps, fp32, no DeepSpeed:
#   bash bench/gpu_check.sh --smoke OUTDIR          (or GPU_CHECK_SMOKE=1)
# Other settings: PYTHON, GPU_CHECK_STEPS, GPU_CHECK_PEAK_TFLOPS, GPU_CHECK_WORK (scratch folder
# for models and logs), GPU_CHECK_RUN_TIMEOUT_S (each run's limit, 150), GPU_CHECK_DEADLINE_S
# (430: runs are cut at this many seconds from the start, and none starts with under 60 left).
#
# Expected on one H100 (from bench/results/h100_bf16.md: ~340 NER steps train in 20 s within a
# 40 s process): wheels ~15 s; each 150-step run ~35 s (start-up and imports ~15 s, training
# ~10 s, tokenizing, evaluation and saving ~10 s), DeepSpeed ~25 s more; 7 runs, the pipelines
# and the report ~5.5 minutes in all, and never past ~7.5 (the deadline, then the report).
set -euo pipefail

smoke=${GPU_CHECK_SMOKE:-0}
if [[ ${1:-} == --smoke ]]; then
  smoke=1
  shift
fi
mkdir -p "${1:-gpu_check_out}"
out=$(cd "${1:-gpu_check_out}" && pwd)
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if [[ -n ${GPU_CHECK_WORK:-} ]]; then
  work=$GPU_CHECK_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
: >"$work/runs.tsv"
deadline=${GPU_CHECK_DEADLINE_S:-430}
run_timeout=${GPU_CHECK_RUN_TIMEOUT_S:-150}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 # no network there; fail at once, not after retries

if ((smoke)); then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  steps=${GPU_CHECK_STEPS:-8} precision=no lr=1e-3 model=tiny-bert
  ds_skip="CPU smoke mode"
  "$py" bench/gpu_check.py demo-data "$work/data"
  ner_data=$work/data/ner
  re_data=(--train_file "$work/data/re/train.jsonl" --validation_file "$work/data/re/dev.jsonl"
    --negative_label no_relation)
else
  if [[ ! -d .gpu_carry/whl ]]; then
    echo "no .gpu_carry/whl: run bench/gpu_check_prepare.sh here, and carry .gpu_carry" >&2
    exit 2
  fi
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu_carry/whl/*.whl
  export PYTHONPATH=$PYTHONPATH:/tmp/site
  steps=${GPU_CHECK_STEPS:-150} precision=bf16 lr=1e-4 model=$PWD/.gpu_carry/minilm
  ds_skip=""
  if ! ds_error=$("$py" -c "import deepspeed" 2>&1); then
    ds_skip="import deepspeed failed: $(tail -n 1 <<<"$ds_error")"
  fi
  ner_data=.gpu_carry/data/ncbi_disease
  semeval=.gpu_carry/data/semeval2010_task8
  re_data=(--train_file "$semeval/TRAIN_FILE.TXT" --validation_file "$semeval/TEST_FILE_FULL.TXT"
    --negative_label Other)
fi
ner_args=(--train_file "$ner_data/train.tsv" --validation_file "$ner_data/devel.tsv")
re_args=(--task re "${re_data[@]}")


record() { # task setup status wall results folder log
  (IFS=$'\t' && echo "$*") >>"$work/runs.tsv"
}

# run NAME TASK SETUP RESULTS COMMAND...: bounded in time; its log goes to WORK/NAME.log.
run() {
  local name=$1 task=$2 setup=$3 results=$4 start=$SECONDS rc=0 limit=$run_timeout
  shift 4
  ((limit < deadline - SECONDS)) || limit=$((deadline - SECONDS))
  if ((limit < 60)); then
    record "$task" "$setup" "skipped: under 60 s left of the check's $deadline s" 0 - - -
    return
  fi
  echo "== $task $setup"
  timeout -k 10 "$limit" "$@" >"$work/$name.log" 2>&1 || rc=$?
  local status=ok
  ((rc == 0)) || status="failed (exit $rc)"
  ((rc != 124)) || status="timed out after $limit s"
  record "$task" "$setup" "$status" $((SECONDS - start)) "$results" "$work/$name" "$work/$name.log"
}

train() { # NAME TASK SETUP ACCELERATE_CONFIG TRAINER_ARGS...
  local name=$1 task=$2 setup=$3 config=$4 port
  shift 4
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
  run "$name" "$task" "$setup" "$work/$name/all_results.json" \
    "$py" -m accelerate.commands.launch --config_file "accelerate_configs/$config" \
    --num_processes 1 --main_process_port "$port" \
    -m accel_trainer train "$@" \
    --model_name_or_path "$model" --output_dir "$work/$name" --max_train_steps "$steps" \
    --logging_steps "$steps" --per_device_train_batch_size 32 --learning_rate "$lr" --seed 42 \
    --checkpointing_steps no --mixed_precision "$precision"
}

hf_trainer() {
  local hf_model=$model bf16=(--bf16)
  if ((smoke)); then # tiny-bert has no folder of its own: start from the trained one
    hf_model=$work/ner-ddp bf16=()
  fi
  run hf-ner ner "transformers Trainer" "$work/hf-ner.json" "$py" bench/hf_trainer.py \
    --data "$ner_data" --model "$hf_model" --max_steps "$steps" --batch_size 32 \
    --learning_rate "$lr" --seed 42 "${bf16[@]}" --results "$work/hf-ner.json"
}

zero3() { # NAME TASK TRAINER_ARGS...
  local name=$1 task=$2
  shift 2
  if [[ -n $ds_skip ]]; then
    record "$task" "DeepSpeed ZeRO-3" "skipped: $ds_skip" 0 - - -
  else
    train "$name" "$task" "DeepSpeed ZeRO-3" deepspeed_zero3.yaml "$@"
  fi
}

# The most telling runs first, in case the deadline comes.
train ner-ddp ner DDP multi_gpu.yaml "${ner_args[@]}"
hf_trainer
train ner-fsdp ner FSDP2 fsdp.yaml "${ner_args[@]}"
train re-ddp re DDP multi_gpu.yaml "${re_args[@]}"
train re-fsdp re FSDP2 fsdp.yaml "${re_args[@]}"
zero3 ner-ds ner "${ner_args[@]}"
zero3 re-ds re "${re_args[@]}"

for log in "$work"/*.log; do
  echo "===== $log"
  tail -n 40 "$log"
done >"$out/logs.txt"
"$py" bench/gpu_check.py report "$work/runs.tsv" "$out"
