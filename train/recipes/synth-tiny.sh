#!/usr/bin/env bash
# synth-tiny: the recipe of the bundled default model, from nothing to an evaluated checkpoint:
#   synth -> index -> tokenizer -> prepare -> fit -> export (fp32 + int8) -> eval -> model card
# A GRID-style synthetic corpus (closed 51-word grammar), speaker-disjoint splits (the test
# speakers are never heard in training), the `tiny` model, about an hour on 2 CPU cores:
#   synth <= 12 min (1200 clips + 12 ASD scenes; bench/results/synth.json measured 1.7 clips/s
#   with 2 workers on a busy machine),
#   prepare ~1 min, fit <= 52 min (about 40 epochs of 0.55 h of speech at ~1.5 s per batch of
#   ~20 clips with 2 threads, capped by MAX_TIME), export ~3 min, eval ~5 min.
# Every step resumes or is skipped when its output exists, so the script can simply be run
# again after an interruption. Sizes are environment variables, e.g. a smoke run:
#   SPEAKERS=3 UTTS=2 SCENES=1 EPOCHS=1 train/recipes/synth-tiny.sh
# Outputs: $DATA (corpus, cache), $RUN (checkpoints, logs), $MODEL (the exported model
# directory with MODEL_CARD.md), $RESULTS (eval.md/json/png of the exported model).
set -euo pipefail
cd "$(dirname "$0")/../.."

AVSYNC=${AVSYNC:-.venv/bin/avsync}
CONFIG=${CONFIG:-train/configs/tiny.yaml}
ROI=${ROI:-40}                   # the config's visual_frontend.roi_stored
DATA=${DATA:-data/synth-tiny}
RUN=${RUN:-runs/synth-tiny}
RESULTS=${RESULTS:-bench/results/eval-synth-tiny-onnx}
MODEL=${MODEL:-models/avsync-tiny-grid}
SPEAKERS=${SPEAKERS:-24}         # 18 train, 3 val, 3 test (unseen) speakers
UTTS=${UTTS:-50}                 # clips per speaker
SCENES=${SCENES:-12}             # multi-face ASD scenes for the mAP
SEED=${SEED:-0}
WORKERS=${WORKERS:-2}            # synth and prepare processes
EPOCHS=${EPOCHS:-60}
MAX_TIME=${MAX_TIME:-00:00:52:00}  # DD:HH:MM:SS; training stops there even if epochs remain
TOKENS=${TOKENS:-word}           # sentencepiece model type: a closed grammar is best read as
                                 # whole words (6 labels a clip, not ~16 sub-word pieces)
THREADS=${THREADS:-2}            # torch threads; use 1 on a busy 2-core box (2 stall there)
TOKENIZER="$DATA/.avsync/tok"
CACHE="$DATA/.avsync/cache"

step() { echo "== $(date +%T) $*" >&2; }

step "synth: $SPEAKERS speakers x $UTTS GRID clips, $SCENES scenes -> $DATA"
if [ ! -f "$DATA/corpus.json" ]; then
  "$AVSYNC" synth --out "$DATA" --speakers "$SPEAKERS" --utts-per-speaker "$UTTS" \
    --text grid --scenes "$SCENES" --seed "$SEED" --workers "$WORKERS" --quiet
fi

step "index"
"$AVSYNC" data index "$DATA"

step "tokenizer (train split only; deterministic, so a re-run reuses the cache)"
"$AVSYNC" data tokenizer "$DATA" --vocab-size 256 --model-type "$TOKENS" --out "$TOKENIZER" \
  --splits train

step "prepare: ${ROI} px mouth ROIs -> $CACHE"
"$AVSYNC" data prepare "$DATA" --out "$CACHE" --roi-size "$ROI" --tokenizer "$TOKENIZER.model" \
  --workers "$WORKERS" --no-progress

step "fit: $CONFIG, up to $EPOCHS epochs or $MAX_TIME -> $RUN (resumes from last.ckpt)"
"$AVSYNC" train fit --config "$CONFIG" --data.cache "$CACHE" --data.tokenizer "$TOKENIZER.model" \
  --trainer.default_root_dir "$RUN" --trainer.max_epochs "$EPOCHS" \
  --trainer.max_time "$MAX_TIME" --threads "$THREADS" --data.workers 1 \
  --trainer.enable_progress_bar false

step "export: best checkpoint -> $MODEL (fp32 + int8, parity-checked, ASD calibrated on val)"
if [ ! -f "$MODEL/model.json" ]; then
  "$AVSYNC" export "$RUN/checkpoints/best.ckpt" --out "$MODEL" --int8 --data "$CACHE" \
    --max-int8-wer-increase "${INT8_MAX_WER_INCREASE:-1.0}"  # WER points int8 may lose
fi

step "eval: the exported model on the test speakers -> $RESULTS"
"$AVSYNC" eval "$MODEL" --cache "$CACHE" --out "$RESULTS" --threads "$THREADS"

step "card: $MODEL/MODEL_CARD.md"
"${PYTHON:-$(dirname "$AVSYNC")/python}" train/recipes/model_card.py "$MODEL" --corpus "$DATA" \
  --run "$RUN" --eval "$RESULTS"
step "done: $MODEL, $RESULTS/eval.md"
