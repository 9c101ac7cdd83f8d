#!/bin/sh
# Retrains every shipped preset from scratch: the exact commands used.
#
#   presets/train-presets.sh [PRESET...]     (default: all four)
#
# Each preset is a model that `carry train` learns from Carry's own
# reference effects (effects/) playing Carry's own guitar-like training
# material (`carry signal`, seed 1; validation uses seed 2, never seen in
# training), conditioned on the effect's knobs so that the plugin's knobs
# work.  Nothing is downloaded.  Needs a build (make, or meson in build/).
#
# The same seeds on the same machine give the same weights.  OpenBLAS picks
# its kernels from the CPU; OPENBLAS_CORETYPE=Haswell (AVX2, which every
# x86-64 machine since 2013 has) makes that choice the same everywhere and
# avoids OpenBLAS's slow fallback on CPUs it does not recognise.  Two
# presets train at a time, one per core (JOBS=1 to train one by one).

set -eu
cd "$(dirname "$0")/.."

CARRY=${CARRY:-build/carry}
WORK=${WORK:-build/preset-training}
JOBS=${JOBS:-2}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}

mkdir -p "$WORK"

signals() {
	[ -f "$WORK/train.wav" ] || "$CARRY" signal --seconds 120 --seed 1 "$WORK/train.wav"
	[ -f "$WORK/val.wav" ] || "$CARRY" signal --seconds 20 --seed 2 "$WORK/val.wav"
}

# render EFFECT NAME SETTINGS...: a target per setting ("drive=0.5,tone=0")
# for the training and the validation signal, named after the setting.
render() {
	effect=$1 name=$2
	shift 2
	for setting in "$@"; do
		params=$(echo "$setting" | tr ',' ' ' | sed 's/[^ ]*/--param &/g')
		tag=$(echo "$setting" | tr ',=' '__')
		for set in train val; do
			out="$WORK/$name-$set-$tag.wav"
			# shellcheck disable=SC2086
			[ -f "$out" ] || "$CARRY" reference --effect "$effect" $params \
				"$WORK/$set.wav" "$out" 2>/dev/null
		done
	done
}

# pairs NAME SET SETTINGS...: --pair/--validation-pair arguments.
pairs() {
	name=$1 set=$2
	shift 2
	option=--pair
	[ "$set" = val ] && option=--validation-pair
	for setting in "$@"; do
		tag=$(echo "$setting" | tr ',=' '__')
		knobs=$(echo "$setting" | tr ',' ' ' | sed 's/[^ ]*/--knob &/g')
		echo "$option $WORK/$set.wav $WORK/$name-$set-$tag.wav $knobs"
	done
}

# train NAME EFFECT ARCH MINUTES "TRAINING SETTINGS" "VALIDATION SETTINGS"
train() {
	name=$1 effect=$2 arch=$3 minutes=$4 settings=$5 checks=$6
	# shellcheck disable=SC2086
	render "$effect" "$name" $settings $checks
	# shellcheck disable=SC2046,SC2086
	"$CARRY" train --arch "$arch" --skip --seed 1 --max-minutes "$minutes" \
		--patience 30 --name "$(title "$name")" \
		--out "presets/$name.json" --checkpoint "$WORK/$name.checkpoint" \
		$(pairs "$name" train $settings) $(pairs "$name" val $checks) \
		> "$WORK/$name.log" 2>&1
	tail -n 1 "$WORK/$name.log"
}

title() {
	case $1 in
	diode-clipper) echo "Diode clipper (trained)" ;;
	overdrive) echo "Overdrive (trained)" ;;
	fuzz) echo "Fuzz (trained)" ;;
	preamp) echo "Valve preamp with sag (trained)" ;;
	esac
}

preset() {
	case $1 in
	diode-clipper)
		train diode-clipper diode_clipper lstm:16 28 \
			"drive=0 drive=0.25 drive=0.5 drive=0.75 drive=1" \
			"drive=0 drive=0.5 drive=1" ;;
	overdrive)
		train overdrive overdrive lstm:32 28 \
			"drive=0,tone=0 drive=0,tone=0.5 drive=0,tone=1 \
			 drive=0.5,tone=0 drive=0.5,tone=0.5 drive=0.5,tone=1 \
			 drive=1,tone=0 drive=1,tone=0.5 drive=1,tone=1" \
			"drive=0,tone=0 drive=0.5,tone=0.5 drive=1,tone=1" ;;
	fuzz)
		train fuzz fuzz lstm:32 28 \
			"fuzz=0 fuzz=0.25 fuzz=0.5 fuzz=0.75 fuzz=1" \
			"fuzz=0 fuzz=0.5 fuzz=1" ;;
	preamp)
		train preamp preamp lstm:32 28 \
			"gain=0 gain=0.25 gain=0.5 gain=0.75 gain=1" \
			"gain=0 gain=0.5 gain=1" ;;
	*)
		echo "unknown preset '$1' (diode-clipper, overdrive, fuzz, preamp)" >&2
		return 2 ;;
	esac
}

signals
[ $# -gt 0 ] || set -- diode-clipper overdrive fuzz preamp
running=0
for name in "$@"; do
	preset "$name" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n 2>/dev/null || wait
		running=$((running - 1))
	fi
done
wait
