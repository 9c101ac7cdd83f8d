/*
  The `carry` command as users run it: the built binary ($CARRY_EXE) with a
  table of bad argument lists (exit code and message) and good runs whose
  outputs are checked for block-size invariance, channel independence,
  format preservation, knob addressing, the quality option and
  determinism.
*/

#include "carry.h"
#include "harness.h"
#include "subprocess.h"
#include "temp_files.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 32
#define PATH_SIZE 4096
#define STDERR_SIZE 8192
#define TEMP_DIR_SIZE 1024  // short enough that any name still fits a path

static char demo_model[PATH_SIZE];

/* ------------------------------------------------------------------------ */
/* Files */

static void write_text(const char *name, const char *text)
{
  FILE *file = fopen(temp_files_path(name), "w");
  if (file) {
    fputs(text, file);
    fclose(file);
  }
}

static bool same_bytes(const char *name_a, const char *name_b)
{
  return temp_files_same_bytes(temp_files_path(name_a),
                               temp_files_path(name_b));
}

/** Files in the temporary directory whose names start with `prefix`. */
static int count_files(const char *prefix)
{
  DIR *dir = opendir(temp_files_dir());
  int count = 0;
  for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
    count += !strncmp(e->d_name, prefix, strlen(prefix));
  }
  if (dir) {
    closedir(dir);
  }
  return count;
}

/* ------------------------------------------------------------------------ */
/* Audio */

typedef struct audio {
  SF_INFO info;
  float *samples;  ///< (frames, channels) interleaved
} audio;

static audio read_audio(const char *name)
{
  audio a = {{0, 0, 0, 0, 0, 0}, NULL};
  SNDFILE *file = sf_open(temp_files_path(name), SFM_READ, &a.info);
  if (!file) {
    return a;
  }
  const size_t n = (size_t)a.info.frames * (size_t)a.info.channels;
  a.samples = malloc((n ? n : 1) * sizeof(float));
  if (a.samples &&
      sf_readf_float(file, a.samples, a.info.frames) != a.info.frames) {
    free(a.samples);
    a.samples = NULL;
  }
  sf_close(file);
  return a;
}

static bool write_audio(const char *name, int format, int rate,
                        int channels, const float *samples, size_t n_frames)
{
  SF_INFO info = {0, rate, channels, format, 0, 0};
  SNDFILE *file = sf_open(temp_files_path(name), SFM_WRITE, &info);
  if (!file) {
    return false;
  }
  const sf_count_t written = sf_writef_float(file, samples,
                                             (sf_count_t)n_frames);
  sf_close(file);
  return written == (sf_count_t)n_frames;
}

/** Channel `c` of `a` as a new mono buffer. */
static float *channel_of(const audio *a, int c)
{
  const size_t n = (size_t)a->info.frames;
  float *mono = malloc((n ? n : 1) * sizeof(float));
  for (size_t t = 0; mono && t < n; ++t) {
    mono[t] = a->samples[t * (size_t)a->info.channels + (size_t)c];
  }
  return mono;
}

static bool same_samples(const float *x, const float *y, size_t n)
{
  return x && y && !memcmp(x, y, n * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* Running the command */

typedef struct run_result {
  int status;                ///< Exit code, or -1 if it did not exit
  char stderr_text[STDERR_SIZE];
  char stdout_text[STDERR_SIZE];
} run_result;

/** Splits `command` at spaces into argv, after the executable.  "@name"
    stands for a file in the temporary directory, "%M" for the demo
    model. */
static int split_args(char *command, char **argv, char storage[][PATH_SIZE])
{
  int argc = 0;
  argv[argc++] = getenv("CARRY_EXE");
  for (char *word = strtok(command, " "); word && argc < MAX_ARGS - 1;
       word = strtok(NULL, " ")) {
    char *arg = storage[argc];
    if (word[0] == '@') {
      snprintf(arg, PATH_SIZE, "%s/%s", temp_files_dir(), word + 1);
    } else if (!strcmp(word, "%M")) {
      snprintf(arg, PATH_SIZE, "%s", demo_model);
    } else {
      snprintf(arg, PATH_SIZE, "%s", word);
    }
    argv[argc++] = arg;
  }
  argv[argc] = NULL;
  return argc;
}

static void read_capture(const char *path, char *text)
{
  subprocess_read_text(path, text, STDERR_SIZE);
  unlink(path);
}

/** Starts `carry` with the words of `command`, its output going to files
    in the temporary directory; returns the process id or -1. */
static pid_t start(const char *command)
{
  static char storage[MAX_ARGS][PATH_SIZE];
  char words[2048];
  snprintf(words, sizeof(words), "%s", command);
  char *argv[MAX_ARGS];
  split_args(words, argv, storage);
  const subprocess_files files = {.out = temp_files_path(".stdout"),
                                  .err = temp_files_path(".stderr")};
  return subprocess_start(argv, &files);
}

/** Waits for `pid` and collects its exit code and output. */
static run_result finish(pid_t pid)
{
  run_result result;
  result.status = subprocess_wait(pid);
  read_capture(temp_files_path(".stdout"), result.stdout_text);
  read_capture(temp_files_path(".stderr"), result.stderr_text);
  return result;
}

/** Runs `carry` with the words of `command` (printf-style). */
static run_result run(const char *format, ...)
  __attribute__((format(printf, 1, 2)));

static run_result run(const char *format, ...)
{
  char command[2048];
  va_list args;
  va_start(args, format);
  vsnprintf(command, sizeof(command), format, args);
  va_end(args);
  return finish(start(command));
}

/** Runs and checks that it succeeded. */
static bool run_ok(const char *command)
{
  const run_result r = run("%s", command);
  return CHECK(r.status == 0, "'%s' exited %d: %s", command, r.status,
               r.stderr_text);
}

/* ------------------------------------------------------------------------ */
/* Models written by the tests */

/* A dense layer alone: y = 4 x, loud enough to clip. */
static const char gain_model[] =
  "{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"dense\", "
  "\"activation\": \"\", \"shape\": [null, null, 1], "
  "\"weights\": [[[4.0]], [0.0]]}]}";

static const char bad_shape_model[] =
  "{\"in_shape\": [null, null, 1], \"layers\": [{\"type\": \"lstm\", "
  "\"activation\": \"\", \"shape\": [null, null, 2], "
  "\"weights\": [[[1, 2]], [[0]], [0]]}, {\"type\": \"dense\", "
  "\"activation\": \"\", \"shape\": [null, null, 1], "
  "\"weights\": [[[1], [1]], [0]]}]}";

static const char truncated_model[] = "{\"in_shape\": [null, null, 1], "
                                      "\"layers\": [";

static void write_models(void)
{
  write_text("gain.json", gain_model);
  write_text("bad_shape.json", bad_shape_model);
  write_text("truncated.json", truncated_model);
  write_text("not_audio.txt", "This is not audio.\n");
}

/* ------------------------------------------------------------------------ */
/* Bad argument lists */

typedef struct bad_case {
  const char *command;
  int status;
  const char *message;  ///< Expected in stderr
} bad_case;

static const bad_case bad_cases[] = {
  {"", 2, "missing subcommand"},
  {"frobnicate", 2, "unknown subcommand 'frobnicate'"},
  {"--frobnicate", 2, "unrecognized option '--frobnicate'"},
  {"process", 2, "missing --model"},
  {"process --model %M", 2, "missing input file"},
  {"process --model %M @dry.wav", 2, "missing output file"},
  {"process --model %M @dry.wav @out.wav @extra.wav", 2, "too many"},
  {"process @dry.wav @out.wav", 2, "missing --model"},
  {"process --model %M --frobnicate @dry.wav @out.wav", 2,
   "carry process: unrecognized option '--frobnicate'"},
  {"process --model %M @dry.wav @out.wav --block", 2, "requires an argument"},
  {"process --model %M @missing.wav @out.wav", 4, "missing.wav"},
  {"process --model %M @not_audio.txt @out.wav", 4, "not_audio.txt"},
  {"process --model %M @dry.wav @no_dir/out.wav", 4, "no_dir/out.wav"},
  {"process --model @missing.json @dry.wav @out.wav", 3, "missing.json"},
  {"process --model @bad_shape.json @dry.wav @out.wav", 3,
   "bad_shape.json"},
  {"process --model @truncated.json @dry.wav @out.wav", 3,
   "truncated.json"},
  {"process --model @not_audio.txt @dry.wav @out.wav", 3, "not_audio.txt"},
  {"process --model %M --param drive=1 @dry.wav @out.wav", 2,
   "unknown knob 'drive'; the model's knobs are: 1 'asymmetry' [0, 1]"},
  {"process --model %M --param 2=0.5 @dry.wav @out.wav", 2,
   "unknown knob '2'"},
  {"process --model %M --param 0=0.5 @dry.wav @out.wav", 2,
   "unknown knob '0'"},
  {"process --model @gain.json --param drive=1 @dry.wav @out.wav", 2,
   "the model has no knobs"},
  {"process --model %M --param asymmetry=1.5 @dry.wav @out.wav", 2,
   "outside the knob's range [0, 1]"},
  {"process --model %M --param asymmetry=-0.1 @dry.wav @out.wav", 2,
   "outside the knob's range [0, 1]"},
  {"process --model %M --param asymmetry=1e300 @dry.wav @out.wav", 2,
   "outside the knob's range [0, 1]"},
  {"process --model %M --param asymmetry=nan @dry.wav @out.wav", 2,
   "is not a number"},
  {"process --model %M --param asymmetry @dry.wav @out.wav", 2,
   "is not NAME=VALUE"},
  {"process --model %M --block 0 @dry.wav @out.wav", 2, "--block must"},
  {"process --model %M --block 1048577 @dry.wav @out.wav", 2,
   "--block must"},
  {"process --model %M --block 12x @dry.wav @out.wav", 2, "not '12x'"},
  {"process --model %M --block -5 @dry.wav @out.wav", 2, "--block must"},
  {"process --model %M --quality turbo @dry.wav @out.wav", 2,
   "--quality must be exact or fast, not 'turbo'"},
  {"process --model %M -q EXACT @dry.wav @out.wav", 2,
   "--quality must be exact or fast, not 'EXACT'"},
  {"process --model %M @dry.wav @out.wav --quality", 2,
   "requires an argument"},
  {"process --plugin urn:x --quality fast @dry.wav @out.wav", 2,
   "--quality works on the model core, not with --plugin or --preset: set "
   "Carry's quality control instead (--control quality=1 for fast)"},
  {"signal", 2, "missing output file"},
  {"signal @a.wav @b.wav", 2, "too many"},
  {"signal --seconds 0 @out.wav", 2, "--seconds must"},
  {"signal --seconds 1e9 @out.wav", 2, "--seconds must"},
  {"signal --rate 100 @out.wav", 2, "--rate must"},
  {"signal --seed -3 @out.wav", 2, "--seed must"},
  {"signal --seed pi @out.wav", 2, "--seed must"},
  {"signal --frobnicate @out.wav", 2, "carry signal: unrecognized option"},
  {"signal @no_dir/out.wav", 4, "no_dir/out.wav"},
  {"bench --rate-ratio 0.5", 2, "--rate-ratio must be 1 to 16, not '0.5'"},
  {"bench --rate-ratio 17", 2, "--rate-ratio must be 1 to 16"},
  {"bench -R 2 -R 3 -R 4", 2,
   "at most 64 models times qualities times (1 + rate ratios)"},
  {"bench --quality fastest", 2, "unknown quality 'fastest' (exact, fast, "
                                 "both)"},
  {"bench --plugin -R 2", 2, "--plugin and --rate-ratio do not go together"},
  {"bench --plugin -m %M -m %M", 2, "--plugin times one model at a time"},
  {"bench --streams 0", 2, "--streams must be 1 to 16, not '0'"},
  {"bench --streams 17", 2, "--streams must be 1 to 16, not '17'"},
  {"bench -R 1 -R 2 -R 3 -R 4 -R 5", 2, "at most 4 rate ratios"},
};

/** One line, optionally followed by the "Try 'carry ... --help'" hint. */
static bool is_one_error(const char *text)
{
  const char *end = strchr(text, '\n');
  return end && (end[1] == '\0' ||
                 (!strncmp(end + 1, "Try '", 5) &&
                  strchr(end + 1, '\n') == text + strlen(text) - 1));
}

static void test_bad_arguments(void)
{
  for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); ++k) {
    const bad_case *c = &bad_cases[k];
    const run_result r = run("%s", c->command);
    CHECK(r.status == c->status, "'%s' exited %d, expected %d; stderr: %s",
          c->command, r.status, c->status, r.stderr_text);
    CHECK(strstr(r.stderr_text, c->message) != NULL,
          "'%s': expected '%s' in stderr, found: %s", c->command, c->message,
          r.stderr_text);
    CHECK(!temp_files_exists("out.wav"), "'%s' left out.wav behind", c->command);
    CHECK(count_files("out.wav.") == 0, "'%s' left a temporary file",
          c->command);
    CHECK(is_one_error(r.stderr_text), "'%s': not one line of error: %s",
          c->command, r.stderr_text);
  }
}

static void test_help(void)
{
  static const char *const commands[] = {
    "--help", "process --help", "signal --help", "bench --help",
  };
  for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); ++k) {
    const run_result r = run("%s", commands[k]);
    CHECK(r.status == 0, "'%s' exited %d", commands[k], r.status);
    CHECK(strstr(r.stdout_text, "Usage: carry") != NULL,
          "'%s' printed no usage: %s", commands[k], r.stdout_text);
  }
  const run_result r = run("--version");
  CHECK(r.status == 0 && !strncmp(r.stdout_text, "carry ", 6),
        "--version: %d '%s'", r.status, r.stdout_text);
}

/** carry bench --rate-ratio times the corrected stream beside the plain
    one. */
static void test_bench_rate_ratio(void)
{
  const run_result r =
    run("bench --seconds 0.02 --rounds 1 --rate-ratio 2 --model %%M");
  CHECK(r.status == 0 && strstr(r.stdout_text, "R=2") &&
          strstr(r.stdout_text, "ns/sample"),
        "bench --rate-ratio: %d '%s' '%s'", r.status, r.stdout_text,
        r.stderr_text);
}

/** carry bench times the standard models in both qualities, each against
    its reference figure and goal (none for a fast GRU); --quality picks
    one. */
static void test_bench_goals(void)
{
  const run_result r = run("bench --seconds 0.01 --rounds 1 --json");
  CHECK(r.status == 0 &&
          strstr(r.stdout_text, "\"model\": \"LSTM-32\", \"quality\": "
                                "\"exact\"") &&
          strstr(r.stdout_text, "\"model\": \"LSTM-32\", \"quality\": "
                                "\"fast\"") &&
          strstr(r.stdout_text, "\"reference_ns_per_sample\": 252, ") &&
          strstr(r.stdout_text, "\"goal\": 1.50, \"goal_met\": ") &&
          strstr(r.stdout_text, "\"goal\": 1.25, \"goal_met\": ") &&
          strstr(r.stdout_text, "\"goal\": null, \"goal_met\": null") &&
          strstr(r.stdout_text, "\"clock_ghz\": ") &&
          strstr(r.stdout_text, "\"cycles_per_sample\": ") &&
          strstr(r.stdout_text, "\"speedup_per_cycle\": "),
        "bench --json: %d '%s' '%s'", r.status, r.stdout_text, r.stderr_text);
  const run_result t = run("bench --seconds 0.01 --rounds 1 --quality fast");
  CHECK(t.status == 0 && strstr(t.stdout_text, "goals met: ") &&
          strstr(t.stdout_text, " fast    ") &&
          !strstr(t.stdout_text, " exact    "),
        "bench --quality fast: %d '%s' '%s'", t.status, t.stdout_text,
        t.stderr_text);
}

/** carry bench --streams times a lockstep batch beside the stream, and
    --stereo a pair of streams in step. */
static void test_bench_streams(void)
{
  const run_result r =
    run("bench --seconds 0.02 --rounds 1 --streams 3 --model %%M");
  CHECK(r.status == 0 && strstr(r.stdout_text, "lockstep: 3 streams") &&
          strstr(r.stdout_text, "  lockstep ") &&
          strstr(r.stdout_text, "speed-up"),
        "bench --streams: %d '%s' '%s'", r.status, r.stdout_text,
        r.stderr_text);
  const run_result s =
    run("bench --seconds 0.02 --rounds 1 --stereo --quality exact --json");
  CHECK(s.status == 0 && strstr(s.stdout_text, "\"stereo_ratio\": "),
        "bench --stereo: %d '%s' '%s'", s.status, s.stdout_text,
        s.stderr_text);
}

/* ------------------------------------------------------------------------ */
/* carry signal */

static void test_signal_determinism(void)
{
  run_ok("signal --seconds 3 --seed 7 @seed7a.wav");
  run_ok("signal --seconds 3 --seed 7 @seed7b.wav");
  run_ok("signal --seconds 3 --seed 8 @seed8.wav");
  CHECK(same_bytes("seed7a.wav", "seed7b.wav"),
        "the same seed gave different files");
  CHECK(!same_bytes("seed7a.wav", "seed8.wav"),
        "different seeds gave the same file");
}

/** The longest run of exact zeros, in frames. */
static size_t longest_silence(const float *x, size_t n)
{
  size_t longest = 0, current = 0;
  for (size_t t = 0; t < n; ++t) {
    current = x[t] == 0.0f ? current + 1 : 0;
    longest = current > longest ? current : longest;
  }
  return longest;
}

static void test_signal_format(void)
{
  run_ok("signal @default.wav");
  audio a = read_audio("default.wav");
  CHECK(a.samples && a.info.channels == 1 && a.info.samplerate == 48000 &&
          a.info.format == (SF_FORMAT_WAV | SF_FORMAT_PCM_24) &&
          a.info.frames == 12 * 48000,
        "default signal: %d channels, %d Hz, format %#x, %lld frames",
        a.info.channels, a.info.samplerate, (unsigned)a.info.format,
        (long long)a.info.frames);
  float peak = 0.0f;
  for (sf_count_t t = 0; a.samples && t < a.info.frames; ++t) {
    peak = fmaxf(peak, fabsf(a.samples[t]));
  }
  CHECK(fabs(20.0 * log10(peak) + 3.0) < 0.05, "peak %.3f dBFS, expected -3",
        20.0 * log10(peak));
  CHECK(a.samples && longest_silence(a.samples, (size_t)a.info.frames) >
                       48000 / 5, "no silence between the sections");
  free(a.samples);

  run_ok("signal --float --rate 44100 --seconds 0.5 @float.wav");
  a = read_audio("float.wav");
  CHECK(a.info.format == (SF_FORMAT_WAV | SF_FORMAT_FLOAT) &&
          a.info.samplerate == 44100 && a.info.frames == 22050,
        "--float --rate 44100: format %#x, %d Hz, %lld frames",
        (unsigned)a.info.format, a.info.samplerate, (long long)a.info.frames);
  free(a.samples);
}

/* ------------------------------------------------------------------------ */
/* carry process */

static void test_block_invariance(void)
{
  static const int blocks[] = {1, 7, 256, 4096};
  for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); ++k) {
    char command[256];
    snprintf(command, sizeof(command),
             "process --model %%M --param asymmetry=0.6 --block %d "
             "@dry_float.wav @block%d.wav", blocks[k], blocks[k]);
    run_ok(command);
  }
  CHECK(same_bytes("block1.wav", "block7.wav"), "--block 1 and 7 differ");
  CHECK(same_bytes("block1.wav", "block256.wav"), "--block 1 and 256 differ");
  CHECK(same_bytes("block1.wav", "block4096.wav"),
        "--block 1 and 4096 differ");
  CHECK(!same_bytes("dry_float.wav", "block256.wav"),
        "the model left the signal unchanged");
}

/** Writes a two-channel float file from two mono ones. */
static bool write_stereo(const char *name, const float *left,
                         const float *right, size_t n)
{
  float *frames = malloc(2 * (n ? n : 1) * sizeof(float));
  for (size_t t = 0; frames && t < n; ++t) {
    frames[2 * t] = left[t];
    frames[2 * t + 1] = right[t];
  }
  const bool ok = frames && write_audio(name, SF_FORMAT_WAV | SF_FORMAT_FLOAT,
                                        48000, 2, frames, n);
  free(frames);
  return ok;
}

/** Processes the stereo file and checks each output channel against the
    mono processing of the matching input. */
static void check_stereo(const char *name, const char *left_ref,
                         const char *right_ref)
{
  char command[256];
  snprintf(command, sizeof(command), "process --model %%M @%s @out_%s",
           name, name);
  run_ok(command);
  snprintf(command, sizeof(command), "out_%s", name);
  audio out = read_audio(command);
  audio left = read_audio(left_ref), right = read_audio(right_ref);
  const size_t n = (size_t)left.info.frames;
  CHECK(out.info.channels == 2 && (size_t)out.info.frames == n,
        "%s: %d channels, %lld frames", name, out.info.channels,
        (long long)out.info.frames);
  float *out_left = channel_of(&out, 0), *out_right = channel_of(&out, 1);
  CHECK(out.info.channels == 2 && same_samples(out_left, left.samples, n),
        "%s: the left channel differs from mono processing", name);
  CHECK(out.info.channels == 2 && same_samples(out_right, right.samples, n),
        "%s: the right channel differs from mono processing", name);
  free(out_left);
  free(out_right);
  free(out.samples);
  free(left.samples);
  free(right.samples);
}

static void test_stereo(void)
{
  audio dry = read_audio("dry_float.wav");
  const size_t n = (size_t)dry.info.frames;
  float *silence = calloc(n, sizeof(float));
  CHECK(dry.samples && silence, "cannot read dry_float.wav");
  if (!dry.samples || !silence) {
    free(dry.samples);
    free(silence);
    return;
  }
  write_audio("silence.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1,
              silence, n);
  run_ok("process --model %M @dry_float.wav @wet_mono.wav");
  run_ok("process --model %M @silence.wav @wet_silence.wav");
  write_stereo("equal.wav", dry.samples, dry.samples, n);
  write_stereo("half.wav", dry.samples, silence, n);
  check_stereo("equal.wav", "wet_mono.wav", "wet_mono.wav");
  check_stereo("half.wav", "wet_mono.wav", "wet_silence.wav");

  /* The demo model's DC reference unit cancels its bias: silence stays
     silent. */
  audio wet = read_audio("wet_silence.wav");
  float peak = 0.0f;
  for (size_t t = 0; wet.samples && t < n; ++t) {
    peak = fmaxf(peak, fabsf(wet.samples[t]));
  }
  CHECK(wet.samples && peak < 1e-6f, "silence came out at %g", peak);
  free(wet.samples);
  free(dry.samples);
  free(silence);
}

/** Processes `name` and checks the output's format, rate and length. */
static void check_format_kept(const char *name, int format, int rate)
{
  audio dry = read_audio("dry_float.wav");
  const size_t n = (size_t)dry.info.frames / 4;
  CHECK(dry.samples && write_audio(name, format, rate, 1, dry.samples, n),
        "cannot write %s", name);
  free(dry.samples);
  char command[256];
  snprintf(command, sizeof(command), "process --model %%M @%s @out_%s",
           name, name);
  run_ok(command);
  snprintf(command, sizeof(command), "out_%s", name);
  audio out = read_audio(command);
  CHECK(out.samples && out.info.format == format &&
          out.info.samplerate == rate && (size_t)out.info.frames == n,
        "%s: format %#x (expected %#x), %d Hz, %lld frames", name,
        (unsigned)out.info.format, (unsigned)format, out.info.samplerate,
        (long long)out.info.frames);
  free(out.samples);
}

static void test_formats_kept(void)
{
  check_format_kept("pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 48000);
  check_format_kept("float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000);
  check_format_kept("pcm16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 48000);
  check_format_kept("pcm16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 48000);
}

static void test_knob_addressing(void)
{
  run_ok("process --model %M --param asymmetry=0.8 @dry.wav @by_name.wav");
  run_ok("process --model %M --param ASYMMETRY=0.8 @dry.wav @by_case.wav");
  run_ok("process --model %M --param 1=0.8 @dry.wav @by_index.wav");
  run_ok("process --model %M -p asymmetry=0.1 -p 1=0.8 @dry.wav "
         "@by_last.wav");
  run_ok("process --model %M @dry.wav @by_default.wav");
  CHECK(same_bytes("by_name.wav", "by_index.wav"),
        "knob by name and by index differ");
  CHECK(same_bytes("by_name.wav", "by_case.wav"),
        "knob names are case-sensitive");
  CHECK(same_bytes("by_name.wav", "by_last.wav"),
        "a repeated --param does not take the last value");
  CHECK(!same_bytes("by_name.wav", "by_default.wav"), "the knob does nothing");
  run_ok("process --model %M --param asymmetry=0.3 @dry.wav @other.wav");
  CHECK(!same_bytes("by_name.wav", "other.wav"),
        "knob values 0.8 and 0.3 give the same output");
}

/** A 44.1 kHz file through the 48 kHz demo model: resampled by default,
    the latency taken off (as long as the input) unless kept, where the
    output is the same later by exactly that much. */
static void test_rate_mismatch(void)
{
  run_ok("signal --seconds 0.5 --rate 44100 @dry44.wav");
  const run_result r = run("process --model %%M @dry44.wav @wet44.wav");
  CHECK(r.status == 0, "a 44.1 kHz file failed: %s", r.stderr_text);
  CHECK(strstr(r.stderr_text, "model 48000 Hz, host 44100 Hz: resampling, "
                              "latency 130 samples (compensated)") != NULL,
        "the report says what ran: %s", r.stderr_text);
  run_ok("process --model %M --keep-latency @dry44.wav @late44.wav");
  audio in = read_audio("dry44.wav"), out = read_audio("wet44.wav");
  audio late = read_audio("late44.wav");
  const size_t n = (size_t)in.info.frames;
  CHECK(out.info.samplerate == 44100 && (size_t)out.info.frames == n &&
          (size_t)late.info.frames == n,
        "44100 Hz and %zu frames, not %d Hz and %lld, %lld", n,
        out.info.samplerate, (long long)out.info.frames,
        (long long)late.info.frames);
  CHECK(out.samples && late.samples && n > 130 &&
          same_samples(late.samples + 130, out.samples, n - 130),
        "--keep-latency: the same output 130 samples later");
  run_ok("process --model %M --rate-mode off @dry44.wav @off44.wav");
  const run_result bad = run("process --model %%M --rate-mode correct "
                             "@dry44.wav @x.wav");
  CHECK(bad.status == 2 && strstr(bad.stderr_text, "44100"),
        "correcting below the model's rate is refused: %d %s", bad.status,
        bad.stderr_text);
  free(in.samples);
  free(out.samples);
  free(late.samples);
}

/** A core stream of `model` over `x`, as carry process runs it: settled
    at exact, then switched to `quality`.  NULL if it cannot be made. */
static float *core_output(const carry_model *model, carry_quality quality,
                          const float *x, size_t n)
{
  carry_error err = {CARRY_SUCCESS, ""};
  carry_stream *stream = carry_stream_create(model, 256, &err);
  float *y = malloc((n ? n : 1) * sizeof(float));
  if (stream && y) {
    carry_stream_settle(stream, NULL, CARRY_SETTLE_SAMPLES);
    carry_stream_set_quality(stream, quality);
    carry_stream_process(stream, x, NULL, y, (uint32_t)n);
  } else {
    free(y);
    y = NULL;
  }
  carry_stream_free(stream);
  return y;
}

static double max_abs_diff(const float *x, const float *y, size_t n)
{
  double worst = 0.0;
  for (size_t t = 0; t < n; ++t) {
    worst = fmax(worst, fabs((double)x[t] - (double)y[t]));
  }
  return worst;
}

/** --quality on a trained preset: exact is the default; fast stays within
    1e-4 of it and is what a core stream set to fast gives, sample for
    sample (which fails if the option never reached the streams, once the
    fast activations differ from the exact ones), in a batch too. */
static void test_quality(void)
{
  const char *model = test_source_path("presets/overdrive.json");
  const char *runs[][2] = {
    {"", "q_default.wav"}, {"--quality exact", "q_exact.wav"},
    {"--quality fast", "q_fast.wav"}, {"-q fast", "q_fast_short.wav"},
  };
  for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); ++k) {
    const run_result r = run("process --model %s %s @dry_float.wav @%s",
                             model, runs[k][0], runs[k][1]);
    CHECK(r.status == 0, "--quality '%s' exited %d: %s", runs[k][0],
          r.status, r.stderr_text);
    CHECK(!strstr(runs[k][0], "fast") ==
            !strstr(r.stderr_text, "; fast quality"),
          "'%s': the report names a fast quality only then: %s", runs[k][0],
          r.stderr_text);
  }
  CHECK(same_bytes("q_default.wav", "q_exact.wav"),
        "exact is not the default quality");
  CHECK(same_bytes("q_fast.wav", "q_fast_short.wav"), "-q fast differs "
        "from --quality fast");
  const run_result batch = run("process --model %s --quality fast "
                               "@dry_float.wav -o @q_batch", model);
  CHECK(batch.status == 0 && same_bytes("q_fast.wav", "q_batch/dry_float.wav"),
        "a batch at --quality fast (exit %d) writes the one-file run's "
        "bytes: %s", batch.status, batch.stderr_text);
  audio dry = read_audio("dry_float.wav");
  audio exact = read_audio("q_exact.wav"), fast = read_audio("q_fast.wav");
  carry_model *loaded = carry_model_load(model, NULL);
  const size_t n = (size_t)dry.info.frames;
  float *core_exact = loaded && dry.samples
                        ? core_output(loaded, CARRY_QUALITY_EXACT,
                                      dry.samples, n) : NULL;
  float *core_fast = loaded && dry.samples
                       ? core_output(loaded, CARRY_QUALITY_FAST,
                                     dry.samples, n) : NULL;
  if (CHECK(core_exact && core_fast && exact.samples && fast.samples &&
              (size_t)exact.info.frames == n &&
              (size_t)fast.info.frames == n,
            "read the outputs and run the core streams")) {
    const double diff = max_abs_diff(exact.samples, fast.samples, n);
    const double core_diff = max_abs_diff(core_exact, core_fast, n);
    CHECK(diff <= 1e-4, "--quality fast is %g from exact, more than 1e-4",
          diff);
    CHECK(same_samples(exact.samples, core_exact, n), "--quality exact "
          "differs from an exact core stream by %g",
          max_abs_diff(exact.samples, core_exact, n));
    CHECK(same_samples(fast.samples, core_fast, n), "--quality fast "
          "differs from a fast core stream by %g (and from exact by %g)",
          max_abs_diff(fast.samples, core_fast, n), diff);
    printf("--quality fast on overdrive.json: %.3g from exact (core "
           "streams: %.3g)%s\n", diff, core_diff,
           core_diff == 0.0 ? "; the fast activations are still the exact "
                              "ones, so this cannot yet tell the option "
                              "reached the streams" : "");
  }
  carry_model_free(loaded);
  free(core_exact);
  free(core_fast);
  free(dry.samples);
  free(exact.samples);
  free(fast.samples);
}

static void test_report_and_clipping(void)
{
  const run_result r = run("process --model @gain.json @dry.wav "
                           "@clipped.wav");
  CHECK(r.status == 0, "gain model failed: %s", r.stderr_text);
  CHECK(strstr(r.stderr_text, "144000 frames, 1 channel, 3.000 s") &&
          strstr(r.stderr_text, "x real time") &&
          strstr(r.stderr_text, "samples clipped"),
        "the report lacks frames, speed or clipping: %s", r.stderr_text);
  audio dry = read_audio("dry.wav"), out = read_audio("clipped.wav");
  int n_wrong = 0;
  for (sf_count_t t = 0; dry.samples && out.samples && t < dry.info.frames;
       ++t) {
    const float expected = fmaxf(-1.0f, fminf(1.0f, 4.0f * dry.samples[t]));
    n_wrong += fabsf(out.samples[t] - expected) > 1e-5f;
  }
  CHECK(dry.samples && out.samples && n_wrong == 0,
        "%d samples not clipped to full scale", n_wrong);
  free(dry.samples);
  free(out.samples);

  const run_result quiet = run("process --model %%M @dry.wav @quiet.wav");
  CHECK(quiet.status == 0 && strstr(quiet.stderr_text, "dBFS") &&
          !strstr(quiet.stderr_text, "clipped"),
        "report of an unclipped run: %s", quiet.stderr_text);
}

static void test_in_place(void)
{
  run_ok("signal --seconds 1 --seed 3 @in_place.wav");
  run_ok("process --model %M @in_place.wav @in_place_ref.wav");
  run_ok("process --model %M @in_place.wav @in_place.wav");
  CHECK(same_bytes("in_place.wav", "in_place_ref.wav"),
        "IN == OUT gives a different result");
  CHECK(count_files("in_place.wav.") == 0, "a temporary file is left");
}

/** A failing run leaves an existing OUT as it was. */
static void test_failure_keeps_output(void)
{
  write_text("keep.wav", "keep me");
  const run_result r = run("process --model %%M --param drive=1 @dry.wav "
                           "@keep.wav");
  size_t size = 0;
  char *kept = temp_files_read_bytes(temp_files_path("keep.wav"), &size);
  CHECK(r.status == 2 && kept && !strcmp(kept, "keep me"),
        "a failed run changed its output file");
  free(kept);
}

/** Waits up to 10 s for a file whose name starts with `prefix`. */
static bool await_file(const char *prefix)
{
  for (int k = 0; k < 10000; ++k) {
    if (count_files(prefix)) {
      return true;
    }
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  return false;
}

/** Ctrl-C in the middle of processing leaves neither OUT nor a temporary
    file. */
static void test_interrupt(void)
{
  run_ok("signal --seconds 60 @long.wav");
  const pid_t pid = start("process --model %M --block 1 @long.wav "
                          "@long_out.wav");
  const bool started = await_file("long_out.wav.");
  if (pid > 0) {
    kill(pid, SIGINT);
  }
  const run_result r = finish(pid);
  CHECK(started, "no temporary file appeared");
  if (r.status == 0) {
    printf("note: processing ended before the interrupt; not checked\n");
    return;
  }
  CHECK(r.status == 1 && strstr(r.stderr_text, "interrupted"),
        "interrupted run: exit %d, stderr %s", r.status, r.stderr_text);
  CHECK(!temp_files_exists("long_out.wav") && count_files("long_out.wav") == 0,
        "an interrupted run left a file");
}

/* ------------------------------------------------------------------------ */

static bool set_up(void)
{
  const char *exe = getenv("CARRY_EXE");
  if (!exe || access(exe, X_OK) != 0) {
    fprintf(stderr, "CARRY_EXE does not name the built carry\n");
    return false;
  }
  snprintf(demo_model, sizeof(demo_model), "%s",
           test_source_path("presets/demo/soft-clip.json"));
  if (!temp_files_make("cli")) {
    return false;
  }
  write_models();
  return run_ok("signal --seconds 3 @dry.wav") &&
         run_ok("signal --seconds 3 --float @dry_float.wav");
}

int main(void)
{
  if (!set_up()) {
    return 1;
  }
  test_help();
  test_bench_rate_ratio();
  test_bench_goals();
  test_bench_streams();
  test_bad_arguments();
  test_signal_determinism();
  test_signal_format();
  test_block_invariance();
  test_stereo();
  test_formats_kept();
  test_knob_addressing();
  test_rate_mismatch();
  test_quality();
  test_report_and_clipping();
  test_in_place();
  test_failure_keeps_output();
  test_interrupt();
  temp_files_remove();
  return test_finish("cli");
}
