#!/bin/sh
# Times two revisions of Carry in one process, a round of each in turn
# (tools/bench_ab.c), on the standard models of `carry bench`:
#
#   tools/ab.sh [BENCH_AB_OPTION]... REV_A [REV_B]
#
# REV_B defaults to the working tree.  Each revision is built with
# -Dab_library=true under $AB_DIR (default $TMPDIR/carry-ab), so both must
# have that option (this script's own commit on).  Options such as
# `-m lockstep -k avx2 -r 101` go to bench_ab.
set -eu

options=""
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
  [ $# -ge 2 ] || { echo "ab.sh: $1 needs a value" >&2; exit 2; }
  options="$options $1 $2"
  shift 2
done
[ $# -ge 1 ] && [ $# -le 2 ] || {
  echo "usage: tools/ab.sh [BENCH_AB_OPTION]... REV_A [REV_B]" >&2
  exit 2
}
root=$(git rev-parse --show-toplevel)
dir=${AB_DIR:-${TMPDIR:-/tmp}/carry-ab}
mkdir -p "$dir"

# build NAME REV: $dir/build-NAME from revision REV (or the working tree)
build() {
  src=$root
  if [ "$2" != WORKTREE ]; then
    src=$dir/src-$1
    git -C "$root" worktree remove --force "$src" 2>/dev/null || true
    git -C "$root" worktree add --detach "$src" "$2" >/dev/null
  fi
  if [ -d "$dir/build-$1" ]; then
    rm -rf "$dir/build-$1"
  fi
  meson setup "$dir/build-$1" "$src" --buildtype=release \
    -Dab_library=true >/dev/null
  ninja -C "$dir/build-$1" libcarry_ab.so bench_ab carry >/dev/null
}

build a "$1"
build b "${2:-WORKTREE}"
rm -rf "$dir/models"
mkdir "$dir/models"
"$dir/build-b/carry" bench --write-models "$dir/models"
echo "A = $1, B = ${2:-the working tree}"
# shellcheck disable=SC2086  # the options are words
"$dir/build-b/bench_ab" $options "$dir/build-a/libcarry_ab.so" \
  "$dir/build-b/libcarry_ab.so" "$dir/models"/*.json
for name in a b; do
  git -C "$root" worktree remove --force "$dir/src-$name" 2>/dev/null || true
done
