#!/usr/bin/env bash
# synth-tiny: the recipe of the bundled default model, from nothing to an evaluated checkpoint:
#   synth -> index -> tokenizer -> prepare -> fit (-> stream fine-tune) -> export (fp32 + int8)
#   -> eval (the finals a live stream gets) -> first-pass eval (the partials) -> model card
# A GRID-style synthetic corpus (closed 51-word grammar), speaker-disjoint splits (the test
# speakers are never heard in training), the `tiny` model, about an hour on 2 CPU cores:
#   synth ~6 min (1920 clips of 64 speakers + 12 ASD scenes: 365 s at 5.25 clips/s with 2
#   workers on an idle machine), prepare ~0.5 min, fit <= 58 min (up to 50 epochs of 1.1 h of
#   speech, ~16 clips a batch, 2 threads), export ~3 min, eval ~5 min.
# Every step resumes or is skipped when its output exists, so the script can simply be run
# again after an interruption. Sizes are environment variables, e.g. a smoke run:
#   SPEAKERS=3 VAL_SPEAKERS=1 TEST_SPEAKERS=1 UTTS=2 SCENES=1 EPOCHS=1 STREAM_EPOCHS=1 \
#     train/recipes/synth-tiny.sh
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
SPEAKERS=${SPEAKERS:-64}         # many voices and faces: unseen speakers are the hard part
UTTS=${UTTS:-30}                 # clips per speaker
VAL_SPEAKERS=${VAL_SPEAKERS:-3}  # held out for validation (model selection)
TEST_SPEAKERS=${TEST_SPEAKERS:-4}  # held out for the eval table, never heard in training
SCENES=${SCENES:-12}             # multi-face ASD scenes for the mAP
SEED=${SEED:-0}
WORKERS=${WORKERS:-2}            # synth and prepare processes
EPOCHS=${EPOCHS:-50}           # ~1.1 min each (1710 clips) on 2 threads, mixed chunk sizes
STREAM_EPOCHS=${STREAM_EPOCHS:-0}  # then streaming-only epochs; 0: none (see below)
MAX_TIME=${MAX_TIME:-00:00:58:00}  # DD:HH:MM:SS; training stops there even if epochs remain
TOKENS=${TOKENS:-word}           # sentencepiece model type: a closed grammar is best read as
                                 # whole words (6 labels a clip, not ~16 sub-word pieces)
THREADS=${THREADS:-2}            # torch threads; use 1 on a busy 2-core box (2 stall there)
TOKENIZER="$DATA/.avsync/tok"
CACHE="$DATA/.avsync/cache"

step() { echo "== $(date +%T) $*" >&2; }

step "synth: $SPEAKERS speakers x $UTTS GRID clips, $SCENES scenes -> $DATA"
if [ ! -f "$DATA/corpus.json" ]; then
  "$AVSYNC" synth --out "$DATA" --speakers "$SPEAKERS" --utts-per-speaker "$UTTS" \
    --val-speakers "$VAL_SPEAKERS" --test-speakers "$TEST_SPEAKERS" --text grid \
    --scenes "$SCENES" --seed "$SEED" --workers "$WORKERS" --quiet
fi

step "index"
"$AVSYNC" data index "$DATA"

step "tokenizer (train split only; deterministic, so a re-run reuses the cache)"
"$AVSYNC" data tokenizer "$DATA" --vocab-size 256 --model-type "$TOKENS" --out "$TOKENIZER" \
  --splits train

step "prepare: ${ROI} px mouth ROIs -> $CACHE"
"$AVSYNC" data prepare "$DATA" --out "$CACHE" --roi-size "$ROI" --tokenizer "$TOKENIZER.model" \
  --workers "$WORKERS" --no-progress

# fit and stream leave a marker when they finish: a finished run's last.ckpt is past the fit's
# max_epochs, and Lightning refuses to resume from it.
fit() {  # fit MARKER MAX_EPOCHS [extra options]: train (or resume) until MAX_EPOCHS, then mark
  local marker="$RUN/$1" epochs=$2
  shift 2
  [ -f "$marker" ] && return 0
  "$AVSYNC" train fit --config "$CONFIG" --data.cache "$CACHE" \
    --data.tokenizer "$TOKENIZER.model" --trainer.default_root_dir "$RUN" \
    --trainer.max_epochs "$epochs" --trainer.max_time "$MAX_TIME" --threads "$THREADS" \
    --data.workers 1 --trainer.enable_progress_bar false "$@"
  touch "$marker"
}

step "fit: $CONFIG, up to $EPOCHS epochs or $MAX_TIME -> $RUN (resumes from last.ckpt)"
fit fit.done "$EPOCHS"

# Optional streaming-only epochs, for a model whose first-pass (160 ms) words matter most. The
# runtime's finals re-read each segment whole (docs/training.md, "The streaming gap"), so the
# default spends no time here: 12 such epochs moved a 30-epoch run's val 4-step-chunk WER from
# 70 % only to 68-69 %, and best.ckpt is chosen by the whole-utterance WER.
if [ "$STREAM_EPOCHS" -gt 0 ]; then
  step "stream: $STREAM_EPOCHS more epochs with 4-step chunks only -> $RUN (resumes)"
  fit stream.done "$((EPOCHS + STREAM_EPOCHS))" --objective.chunk_sizes '[4]'
fi

step "export: best checkpoint -> $MODEL (fp32 + int8, parity-checked, ASD calibrated on val)"
if [ ! -f "$MODEL/model.json" ]; then
  "$AVSYNC" export "$RUN/checkpoints/best.ckpt" --out "$MODEL" --int8 --data "$CACHE" \
    --max-int8-wer-increase "${INT8_MAX_WER_INCREASE:-1.0}"  # WER points int8 may lose
fi

step "eval: the exported model's finals on the test speakers -> $RESULTS"
"$AVSYNC" eval "$MODEL" --cache "$CACHE" --out "$RESULTS" --finals --threads "$THREADS"

step "first-pass: the streaming pass alone (what partials read) -> $RESULTS-first-pass"
"$AVSYNC" eval "$MODEL" --cache "$CACHE" --out "$RESULTS-first-pass" --no-sync --no-asd \
  --threads "$THREADS"

step "card: $MODEL/MODEL_CARD.md"
"${PYTHON:-$(dirname "$AVSYNC")/python}" train/recipes/model_card.py "$MODEL" --corpus "$DATA" \
  --run "$RUN" --eval "$RESULTS" --first-pass "$RESULTS-first-pass"
step "done: $MODEL, $RESULTS/eval.md"
