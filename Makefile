# Carry: one command each to set up, build, demonstrate and test.
# meson and ninja do the building; this file only installs what is missing
# and strings the steps together.  See README.md.

# Debian packages the build needs.
PACKAGES = gcc libc6-dev pkg-config meson ninja-build libjansson-dev \
	libsndfile1-dev lv2-dev liblilv-dev lilv-utils serdi sordi locales \
	clang libclang-rt-14-dev libopenblas-dev libspeexdsp-dev libcairo2-dev

BUILD = build
SANITIZE_BUILD = build-sanitize
CARRY = $(BUILD)/carry
DEMO_OUT = demo/out
DEMO_MODEL = presets/demo/soft-clip.json
DEMO_SECONDS = 12

# `make install` copies carry to ~/.local/bin and the plugin bundle to
# ~/.lv2; with PREFIX=/some/dir it runs `meson install` into that prefix
# instead (the bundle goes to PREFIX/lib/lv2 unless -Dlv2dir says else).
PREFIX =
BINDIR = $(HOME)/.local/bin
MANDIR = $(HOME)/.local/share/man/man1
LV2DIR = $(HOME)/.lv2

# The loaders' fuzzer: a clang build with libFuzzer, ASan and UBSan.
# `make fuzz` runs it for FUZZ_SECONDS; `make test` for a minute.
FUZZ_BUILD = build-fuzz
FUZZ_SECONDS = 600
FUZZ_OPTIONS = --buildtype=debugoptimized -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=all
FUZZ_SEEDS = $(FUZZ_BUILD)/seeds
FUZZ_CORPUS = $(FUZZ_BUILD)/corpus

TEST_OPTIONS = -Dwerror=true -Dwarning_level=3 -Dab_library=true
SANITIZE_OPTIONS = --buildtype=debugoptimized \
	-Db_sanitize=address,undefined -Db_lundef=false \
	-Dwerror=true -Dwarning_level=3 -Dc_args=-fno-sanitize-recover=all

# `meson setup DIR OPTIONS`, with --reconfigure for a directory already set
# up, so that the options given always apply.
SETUP = @if [ -f $(1)/meson-private/coredata.dat ]; then \
	set -x; meson setup --reconfigure $(1) $(2); \
	else set -x; meson setup $(1) $(2); fi

.PHONY: build demo test fuzz install uninstall clean deps

build: deps
	@[ -f $(BUILD)/meson-private/coredata.dat ] || \
		meson setup $(BUILD) --buildtype=release
	meson compile -C $(BUILD)

# Installs the missing packages: as root directly, else with `sudo -n`
# (sudo that needs no password), else says what to run and stops.
deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "No dpkg: not checking for $(PACKAGES)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(PACKAGES); do \
		dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo="sudo -n"; \
	else \
		echo "Carry needs these Debian packages:$$missing" >&2; \
		echo "Install them with:" >&2; \
		echo "  sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi; \
	echo "Installing$$missing"; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $$missing

# Every shipped model: the hand-built demo and the trained presets.
DEMO_PRESETS = diode-clipper overdrive fuzz preamp

demo: build
	@mkdir -p $(DEMO_OUT)
	$(CARRY) signal --seconds $(DEMO_SECONDS) $(DEMO_OUT)/guitar-dry.wav
	$(CARRY) process --model $(DEMO_MODEL) \
		$(DEMO_OUT)/guitar-dry.wav $(DEMO_OUT)/guitar-soft-clip.wav
	$(CARRY) process --model $(DEMO_MODEL) --param asymmetry=1 \
		$(DEMO_OUT)/guitar-dry.wav $(DEMO_OUT)/guitar-soft-clip-asym.wav
	@for p in $(DEMO_PRESETS); do \
		echo "$(CARRY) process --model presets/$$p.json $(DEMO_OUT)/guitar-dry.wav $(DEMO_OUT)/guitar-$$p.wav"; \
		$(CARRY) process --model presets/$$p.json \
			$(DEMO_OUT)/guitar-dry.wav $(DEMO_OUT)/guitar-$$p.wav || exit 1; \
	done
	@echo
	@echo "Wrote $(DEMO_SECONDS) s, mono, 48 kHz, 24-bit WAV files:"
	@echo "  $(DEMO_OUT)/guitar-dry.wav             the dry test signal"
	@echo "  $(DEMO_OUT)/guitar-soft-clip.wav       through the hand-built demo model"
	@echo "  $(DEMO_OUT)/guitar-soft-clip-asym.wav  the same with asymmetry at 1"
	@for p in $(DEMO_PRESETS); do \
		printf '  %-35s through the %s preset (knobs at their defaults)\n' \
			"$(DEMO_OUT)/guitar-$$p.wav" "$$p"; \
	done

test: deps
	$(call SETUP,$(BUILD),$(TEST_OPTIONS))
	meson test -C $(BUILD) --print-errorlogs
	$(call SETUP,$(SANITIZE_BUILD),$(SANITIZE_OPTIONS))
	meson test -C $(SANITIZE_BUILD) --print-errorlogs
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60

# Seeds: every model file the tests hold (good and broken) under 64 kB.
fuzz: deps
	@[ -f $(FUZZ_BUILD)/meson-private/coredata.dat ] || \
		CC=clang meson setup $(FUZZ_BUILD) $(FUZZ_OPTIONS)
	meson compile -C $(FUZZ_BUILD) fuzz_load
	@rm -rf $(FUZZ_SEEDS) && mkdir -p $(FUZZ_SEEDS) $(FUZZ_CORPUS)
	@find tests/models presets tests/data/golden -type f -size -64k \
		\( -name '*.json' -o -name '*.nam' \) ! -name '*.io.json' \
		-exec cp {} $(FUZZ_SEEDS)/ \;
	$(FUZZ_BUILD)/tests/fuzz_load -max_total_time=$(FUZZ_SECONDS) \
		-max_len=65536 -dict=tests/fuzz/model.dict -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_CORPUS) $(FUZZ_SEEDS)

install: build
ifeq ($(PREFIX),)
	install -D -m 755 $(CARRY) $(BINDIR)/carry
	install -D -m 644 tools/carry.1 $(MANDIR)/carry.1
	meson configure $(BUILD) -Dlv2dir=$(LV2DIR)
	meson install -C $(BUILD) --tags lv2
	@echo "Installed the plugin bundle in $(LV2DIR)/carry.lv2"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; \
		*) echo "Note: $(BINDIR) is not on your PATH";; esac
else
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	meson install -C $(BUILD)
endif

uninstall:
ifeq ($(PREFIX),)
	rm -f $(BINDIR)/carry $(MANDIR)/carry.1
	rm -rf $(LV2DIR)/carry.lv2
else
	ninja -C $(BUILD) uninstall
endif

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD) $(DEMO_OUT)
