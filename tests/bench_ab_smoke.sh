#!/bin/sh
# bench_ab BENCH_AB LIBCARRY_AB: one build against itself in each mode, on
# two of the models `carry bench --write-models` writes: a row each with
# positive times and ratio; bad arguments refused.
set -eu
bench_ab=$1
lib=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$CARRY_EXE" bench --write-models "$dir"
[ "$(ls "$dir" | wc -l)" = 10 ] || { echo "not 10 model files"; exit 1; }
for mode in one stereo lockstep; do
  out=$("$bench_ab" -m "$mode" -r 3 -n 256 "$lib" "$lib" \
    "$dir/LSTM-8.json" "$dir/GRU-32.json")
  rows=$(printf '%s\n' "$out" |
    awk '$1 ~ /\.json$/ && $2 > 0 && $3 > 0 && $4 > 0' | wc -l)
  [ "$rows" = 2 ] || {
    printf 'bench_ab -m %s: %s good rows, expected 2:\n%s\n' "$mode" "$rows" \
      "$out"
    exit 1
  }
done
for bad in "-k nonsense" "-m both" "-r 0"; do
  # shellcheck disable=SC2086  # the option and its value are two words
  if "$bench_ab" $bad "$lib" "$lib" "$dir/LSTM-8.json" 2>/dev/null; then
    echo "bench_ab accepted $bad"
    exit 1
  fi
done
if "$bench_ab" -m one "$lib" "$lib" "$dir/missing.json" >/dev/null 2>&1; then
  echo "bench_ab accepted a missing model"
  exit 1
fi
echo "bench_ab: every mode ran, bad arguments refused"
