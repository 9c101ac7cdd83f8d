/*
  `carry reference` as users run it: the built binary ($CARRY_EXE) with a
  table of bad argument lists (exit code and message), --list and --help,
  and good runs whose outputs must equal the library's effect_process on
  the same samples, channel by channel, in the input's format.
*/

#include "effects.h"
#include "harness.h"
#include "subprocess.h"
#include "temp_files.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGS 16
#define PATH_SIZE 4096
#define TEXT_SIZE 8192
#define RATE 48000


/* ------------------------------------------------------------------------ */
/* Files */

/** An audio file in the temporary directory (see temp_files_read_frames). */
static float *read_audio(const char *name, SF_INFO *info)
{
  return temp_files_read_frames(temp_files_path(name), info);
}

static bool write_audio(const char *name, int format, int rate, int channels,
                        const float *frames, size_t n_frames)
{
  SF_INFO info = {0, rate, channels, format, 0, 0};
  SNDFILE *file = sf_open(temp_files_path(name), SFM_WRITE, &info);
  if (!file) {
    return false;
  }
  sf_command(file, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
  const sf_count_t written = sf_writef_float(file, frames,
                                             (sf_count_t)n_frames);
  sf_close(file);
  return written == (sf_count_t)n_frames;
}

/* ------------------------------------------------------------------------ */
/* Running the command */

typedef struct run_result {
  int status;  ///< Exit code, or -1 if it did not exit
  char out[TEXT_SIZE];
  char err[TEXT_SIZE];
} run_result;

/** Runs `carry` with the space-separated words of `command`; "@name" is a
    file in the temporary directory. */
static run_result run(const char *command)
{
  static char storage[MAX_ARGS][PATH_SIZE];
  char words[1024];
  snprintf(words, sizeof(words), "%s", command);
  char *argv[MAX_ARGS];
  int argc = 0;
  argv[argc++] = getenv("CARRY_EXE");
  for (char *word = strtok(words, " "); word && argc < MAX_ARGS - 1;
       word = strtok(NULL, " ")) {
    snprintf(storage[argc], PATH_SIZE, "%s%s", word[0] == '@' ? temp_files_path("")
                                                               : "",
             word + (word[0] == '@'));
    argv[argc] = storage[argc];
    ++argc;
  }
  argv[argc] = NULL;
  const subprocess_files files = {.out = temp_files_path(".stdout"),
                                  .err = temp_files_path(".stderr")};
  run_result r;
  r.status = subprocess_wait(subprocess_start(argv, &files));
  subprocess_read_text(files.out, r.out, TEXT_SIZE);
  subprocess_read_text(files.err, r.err, TEXT_SIZE);
  return r;
}

/* ------------------------------------------------------------------------ */
/* Cases */

typedef struct bad_case {
  const char *command;
  int status;
  const char *message;  ///< Expected in stderr
} bad_case;

static const bad_case bad_cases[] = {
  {"reference", 2, "missing --effect"},
  {"reference @dry.wav @out.wav", 2, "missing --effect NAME"},
  {"reference --effect fuzz", 2, "missing input file IN and output OUT"},
  {"reference --effect fuzz @dry.wav", 2, "missing output file OUT"},
  {"reference --effect fuzz @dry.wav @out.wav @wet.wav", 2, "too many"},
  {"reference --effect phaser @dry.wav @out.wav", 2,
   "unknown effect 'phaser'; the effects are: diode_clipper, overdrive, "
   "fuzz, preamp"},
  {"reference --effect overdrive --param level=1 @dry.wav @out.wav", 2,
   "overdrive has no parameter 'level'; its parameters are: drive [0, 1], "
   "tone [0, 1]"},
  {"reference --effect overdrive --param drive=1.5 @dry.wav @out.wav", 2,
   "drive = 1.5 is outside [0, 1]"},
  {"reference --effect overdrive --param drive=-0.5 @dry.wav @out.wav", 2,
   "is outside [0, 1]"},
  {"reference --effect fuzz --param fuzz=nan @dry.wav @out.wav", 2,
   "'nan' is not a number"},
  {"reference --effect fuzz --param fuzz=0.5x @dry.wav @out.wav", 2,
   "'0.5x' is not a number"},
  {"reference --effect fuzz --param fuzz @dry.wav @out.wav", 2,
   "is not NAME=VALUE"},
  {"reference --effect fuzz --param =1 @dry.wav @out.wav", 2,
   "is not NAME=VALUE"},
  {"reference --effect fuzz --frobnicate @dry.wav @out.wav", 2,
   "carry reference: unrecognized option '--frobnicate'"},
  {"reference --effect fuzz @dry.wav @out.wav --effect", 2,
   "requires an argument"},
  {"reference --effect fuzz @missing.wav @out.wav", 4, "missing.wav"},
  {"reference --effect fuzz @text.txt @out.wav", 4, "text.txt"},
  {"reference --effect fuzz @slow.wav @out.wav", 4,
   "a sample rate of 4000 Hz is outside 8000..384000 Hz"},
  {"reference --effect fuzz @dry.wav @no_dir/out.wav", 4, "no_dir/out.wav"},
};

static void test_bad_arguments(void)
{
  for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); ++k) {
    const bad_case *c = &bad_cases[k];
    const run_result r = run(c->command);
    CHECK(r.status == c->status && strstr(r.err, c->message),
          "'%s' exited %d (expected %d) with: %s(expected '%s')", c->command,
          r.status, c->status, r.err, c->message);
    CHECK(!temp_files_exists("out.wav"), "'%s' left out.wav behind", c->command);
  }
}

static void test_list_and_help(void)
{
  run_result r = run("reference --list");
  CHECK(r.status == 0, "--list exited %d", r.status);
  for (int e = 0; e < effect_count(); ++e) {
    const effect_info *info = effect_info_at(e);
    CHECK(strstr(r.out, info->name) && strstr(r.out, info->summary),
          "--list lacks %s", info->name);
    for (int p = 0; p < info->n_params; ++p) {
      char line[128];
      snprintf(line, sizeof(line), "--param %s=0..1 (default %g)",
               info->params[p].name, info->params[p].value);
      CHECK(strstr(r.out, line) != NULL, "--list lacks '%s'", line);
    }
  }
  r = run("reference --help");
  CHECK(r.status == 0 && strstr(r.out, "Usage: carry reference"),
        "--help: %d %s", r.status, r.out);
  r = run("--help");
  CHECK(strstr(r.out, "reference"), "carry --help lacks reference");
}

/** What the library gives for channel `c` of interleaved frames. */
static float *expected_channel(const float *frames, int n_channels, int c,
                               size_t n, const char *name, double drive,
                               double tone)
{
  float *x = malloc(n * sizeof(float));
  for (size_t t = 0; t < n; ++t) {
    x[t] = frames[t * (size_t)n_channels + (size_t)c];
  }
  effect *fx = effect_create(name, RATE, NULL);
  effect_set_param(fx, "drive", drive, NULL);
  effect_set_param(fx, "tone", tone, NULL);
  effect_process(fx, x, x, n);
  effect_free(fx);
  return x;
}

/** Two different channels through the overdrive: each output channel is
    the library's output for its input channel, bit for bit. */
static void test_stereo_matches_library(const float *dry, size_t n)
{
  float *frames = malloc(2 * n * sizeof(float));
  for (size_t t = 0; t < n; ++t) {
    frames[2 * t] = dry[t];
    frames[2 * t + 1] = 0.3f * dry[n - 1 - t];
  }
  write_audio("stereo.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, RATE, 2, frames,
              n);
  const run_result r = run("reference --effect overdrive --param drive=0.8 "
                           "--param TONE=0.3 @stereo.wav @stereo_out.wav");
  CHECK(r.status == 0 && strstr(r.err, "overdrive: 24000 frames, 2 channels"),
        "stereo run: %d %s", r.status, r.err);
  SF_INFO info;
  float *out = read_audio("stereo_out.wav", &info);
  CHECK(out && info.channels == 2 && info.frames == (sf_count_t)n &&
          info.format == (SF_FORMAT_WAV | SF_FORMAT_FLOAT),
        "stereo output: %d channels, %lld frames", info.channels,
        (long long)info.frames);
  for (int c = 0; out && c < 2; ++c) {
    float *expected = expected_channel(frames, 2, c, n, "overdrive", 0.8,
                                       0.3);
    size_t n_wrong = 0;
    for (size_t t = 0; t < n; ++t) {
      n_wrong += out[2 * t + (size_t)c] != expected[t];
    }
    CHECK(n_wrong == 0, "channel %d: %zu samples differ from the library",
          c, n_wrong);
    free(expected);
  }
  free(out);
  free(frames);
}

/** A 24-bit file gives a 24-bit file; IN may be OUT. */
static void test_format_and_in_place(void)
{
  run_result r = run("reference --effect preamp @dry24.wav @wet24.wav");
  SF_INFO info;
  float *out = read_audio("wet24.wav", &info);
  CHECK(r.status == 0 && out &&
          info.format == (SF_FORMAT_WAV | SF_FORMAT_PCM_24),
        "24-bit: exit %d, format %#x: %s", r.status, (unsigned)info.format,
        r.err);
  free(out);
  run("reference --effect fuzz --param fuzz=1 @dry.wav @wet.wav");
  run("reference --effect fuzz --param fuzz=0 @dry.wav @out.wav");
  SF_INFO info_in;
  float *dry = read_audio("dry.wav", &info_in);
  write_audio("in_place.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, RATE, 1, dry,
              (size_t)info_in.frames);
  r = run("reference --effect fuzz --param fuzz=1 @in_place.wav "
          "@in_place.wav");
  float *wet = read_audio("wet.wav", &info), *in_place =
                                               read_audio("in_place.wav",
                                                          &info_in);
  float *other = read_audio("out.wav", &info_in);
  CHECK(r.status == 0 && wet && in_place && other &&
          !memcmp(wet, in_place, (size_t)info.frames * sizeof(float)),
        "in place differs: %s", r.err);
  CHECK(wet && other &&
          memcmp(wet, other, (size_t)info.frames * sizeof(float)) != 0,
        "fuzz=0 and fuzz=1 give the same output");
  unlink(temp_files_path("out.wav"));
  free(dry);
  free(wet);
  free(in_place);
  free(other);
}

/* ------------------------------------------------------------------------ */

static bool set_up(float *dry, size_t n)
{
  const char *exe = getenv("CARRY_EXE");
  if (!exe || access(exe, X_OK) != 0) {
    fprintf(stderr, "CARRY_EXE does not name the built carry\n");
    return false;
  }
  if (!temp_files_make("reference")) {
    return false;
  }
  for (size_t t = 0; t < n; ++t) {
    const double time = (double)t / RATE;
    dry[t] = (float)(0.7 * exp(-3.0 * time) * sin(2.0 * M_PI * 196.0 * time) +
                     0.1 * sin(2.0 * M_PI * 1500.0 * time));
  }
  FILE *text = fopen(temp_files_path("text.txt"), "w");
  if (text) {
    fputs("not audio\n", text);
    fclose(text);
  }
  return write_audio("dry.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, RATE, 1, dry,
                     n) &&
         write_audio("dry24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, RATE, 1,
                     dry, n) &&
         write_audio("slow.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 4000, 1, dry,
                     n);
}

int main(void)
{
  enum { N = RATE / 2 };
  static float dry[N];
  if (!set_up(dry, N)) {
    return 1;
  }
  test_bad_arguments();
  test_list_and_help();
  test_stereo_matches_library(dry, N);
  test_format_and_in_place();
  temp_files_remove();
  return test_finish("reference_cli");
}
