#!/usr/bin/env bash
# synth-tiny: the recipe of the bundled default model, from nothing to an evaluated checkpoint:
#   synth -> index -> tokenizer -> prepare -> fit -> eval
# A GRID-style synthetic corpus (closed 51-word grammar), speaker-disjoint splits (the test
# speakers are never heard in training), the `tiny` model, about an hour on 2 CPU cores:
#   synth <= 12 min (1200 clips + 12 ASD scenes; bench/results/synth.json measured 1.7 clips/s
#   with 2 workers on a busy machine),
#   prepare ~1 min, fit <= 40 min (40 epochs of 0.55 h of speech at ~1.2 s per batch of
#   ~20 clips with 1 thread, capped by MAX_TIME), eval ~3 min.
# Every step resumes or is skipped when its output exists, so the script can simply be run
# again after an interruption. Sizes are environment variables, e.g. a smoke run:
#   SPEAKERS=3 UTTS=2 SCENES=1 EPOCHS=1 train/recipes/synth-tiny.sh
# Outputs: $DATA (corpus, cache), $RUN (checkpoints, logs), $RESULTS (eval.md/json/png).
set -euo pipefail
cd "$(dirname "$0")/../.."

AVSYNC=${AVSYNC:-.venv/bin/avsync}
CONFIG=${CONFIG:-train/configs/tiny.yaml}
ROI=${ROI:-40}                   # the config's visual_frontend.roi_stored
DATA=${DATA:-data/synth-tiny}
RUN=${RUN:-runs/synth-tiny}
RESULTS=${RESULTS:-bench/results/eval-synth-tiny}
SPEAKERS=${SPEAKERS:-24}         # 18 train, 3 val, 3 test (unseen) speakers
UTTS=${UTTS:-50}                 # clips per speaker
SCENES=${SCENES:-12}             # multi-face ASD scenes for the mAP
SEED=${SEED:-0}
WORKERS=${WORKERS:-2}            # synth and prepare processes
EPOCHS=${EPOCHS:-40}
MAX_TIME=${MAX_TIME:-00:00:40:00}  # DD:HH:MM:SS; training stops there even if epochs remain
THREADS=${THREADS:-1}            # torch threads; 2 threads stall badly on a busy 2-core box
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
"$AVSYNC" data tokenizer "$DATA" --vocab-size 256 --out "$TOKENIZER" --splits train

step "prepare: ${ROI} px mouth ROIs -> $CACHE"
"$AVSYNC" data prepare "$DATA" --out "$CACHE" --roi-size "$ROI" --tokenizer "$TOKENIZER.model" \
  --workers "$WORKERS" --no-progress

step "fit: $CONFIG, up to $EPOCHS epochs or $MAX_TIME -> $RUN (resumes from last.ckpt)"
"$AVSYNC" train fit --config "$CONFIG" --data.cache "$CACHE" --data.tokenizer "$TOKENIZER.model" \
  --trainer.default_root_dir "$RUN" --trainer.max_epochs "$EPOCHS" \
  --trainer.max_time "$MAX_TIME" --threads "$THREADS" --data.workers 1 \
  --trainer.enable_progress_bar false

step "eval: best checkpoint on the test speakers -> $RESULTS"
"$AVSYNC" eval "$RUN/checkpoints/best.ckpt" --cache "$CACHE" --out "$RESULTS" --threads "$THREADS"
step "done: $RESULTS/eval.md"
