/*
  `carry train` as users run it, through the built binary ($CARRY_EXE): a
  table of bad argument lists and broken inputs (exit code and message);
  runs that write a model Carry loads, with its knobs and metadata; the
  same seed giving the same weights; a manifest; a resumed run ending where
  a straight one does; and Ctrl-C leaving the best model and a checkpoint
  to resume from.
*/

#include "harness.h"
#include "subprocess.h"
#include "temp_files.h"

#include <jansson.h>
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

#define RATE 16000
#define SECONDS 3
#define MAX_ARGS 64
#define PATH_SIZE 1024
#define OUTPUT_SIZE 16384


/** Short training options: the tests need working runs, not good models. */
#define QUICK "--segment-seconds 0.25 --warmup 100 --tbptt 1000 --batch 4 " \
              "--threads 1"

/* ------------------------------------------------------------------------ */
/* Running the command */

typedef struct run_result {
  int status;                 ///< Exit code, or -1
  char stderr_text[OUTPUT_SIZE];
} run_result;

/** Splits `command` at spaces; "@name" is a file in the temporary
    directory. */
static void split_args(char *command, char **argv,
                       char storage[][PATH_SIZE])
{
  int argc = 0;
  argv[argc++] = getenv("CARRY_EXE");
  for (char *word = strtok(command, " "); word && argc < MAX_ARGS - 1;
       word = strtok(NULL, " ")) {
    snprintf(storage[argc], PATH_SIZE, "%s",
             word[0] == '@' ? temp_files_path(word + 1) : word);
    argv[argc] = storage[argc];
    ++argc;
  }
  argv[argc] = NULL;
}

static pid_t start(const char *command)
{
  static char storage[MAX_ARGS][PATH_SIZE];
  char words[4096];
  char *argv[MAX_ARGS];
  snprintf(words, sizeof(words), "%s", command);
  split_args(words, argv, storage);
  const subprocess_files files = {.err = temp_files_path(".stderr")};
  return subprocess_start(argv, &files);
}

static run_result finish(pid_t pid)
{
  run_result r;
  r.status = subprocess_wait(pid);
  subprocess_read_text(temp_files_path(".stderr"), r.stderr_text,
                       OUTPUT_SIZE);
  return r;
}

static run_result run(const char *format, ...)
  __attribute__((format(printf, 1, 2)));

static run_result run(const char *format, ...)
{
  char command[4096];
  va_list args;
  va_start(args, format);
  vsnprintf(command, sizeof(command), format, args);
  va_end(args);
  return finish(start(command));
}

static bool run_ok(const char *command)
{
  const run_result r = run("%s", command);
  return CHECK(r.status == 0, "'%s' exited %d: %s", command, r.status,
               r.stderr_text);
}

/* ------------------------------------------------------------------------ */
/* Audio */

static bool write_wav(const char *name, int rate, int channels,
                      const float *x, size_t n_frames)
{
  SF_INFO info = {0, rate, channels, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0, 0};
  SNDFILE *file = sf_open(temp_files_path(name), SFM_WRITE, &info);
  if (!file) {
    return false;
  }
  const bool ok = sf_writef_float(file, x, (sf_count_t)n_frames) ==
                  (sf_count_t)n_frames;
  sf_close(file);
  return ok;
}

/** tanh(g x) through a one-pole low-pass. */
static void make_target(const float *dry, float *target, size_t n,
                        double gain)
{
  const double a = exp(-2.0 * M_PI * 2000.0 / RATE);
  double state = 0.0;
  for (size_t t = 0; t < n; ++t) {
    state = (1.0 - a) * tanh(gain * dry[t]) + a * state;
    target[t] = (float)state;
  }
}

static void write_inputs(void)
{
  const size_t n = (size_t)RATE * SECONDS;
  float *dry = malloc(2 * n * sizeof(float));
  float *target = malloc(n * sizeof(float));
  test_signal(dry, n, 1);
  write_wav("dry.wav", RATE, 1, dry, n);
  make_target(dry, target, n, 1.0);
  write_wav("soft.wav", RATE, 1, target, n);
  make_target(dry, target, n, 4.0);
  write_wav("hard.wav", RATE, 1, target, n);
  write_wav("short.wav", RATE, 1, target, n - 5);
  write_wav("fast.wav", 22050, 1, target, n);
  memcpy(dry + n, dry, n * sizeof(float));
  write_wav("stereo.wav", RATE, 2, dry, n);
  FILE *file = fopen(temp_files_path("not_audio.txt"), "w");
  if (file) {
    fputs("This is not audio.\n", file);
    fclose(file);
  }
  file = fopen(temp_files_path("manifest.json"), "w");
  if (file) {
    fputs("{\"pairs\": [\n"
          "  {\"dry\": \"dry.wav\", \"target\": \"soft.wav\", "
          "\"knobs\": {\"drive\": 0}},\n"
          "  {\"dry\": \"dry.wav\", \"target\": \"hard.wav\", "
          "\"knobs\": {\"drive\": 1}}],\n"
          " \"knob_ranges\": {\"drive\": [0, 2]}}\n", file);
    fclose(file);
  }
  file = fopen(temp_files_path("bad_manifest.json"), "w");
  if (file) {
    fputs("{\"pairs\": [{\"dry\": \"dry.wav\", \"target\": 7}]}\n", file);
    fclose(file);
  }
  free(dry);
  free(target);
}

/* ------------------------------------------------------------------------ */
/* Bad argument lists */

typedef struct bad_case {
  const char *command;
  int status;
  const char *message;
} bad_case;

#define T "train --arch lstm:4 --out @m.json "
#define PAIR "--pair @dry.wav @soft.wav "

static const bad_case bad_cases[] = {
  {"train", 2, "missing --out"},
  {"train --out @m.json " PAIR, 2, "missing --arch"},
  {T, 2, "missing training data: --pair DRY TARGET or --manifest FILE"},
  {T "--pair @dry.wav", 2, "--pair needs two files, DRY and TARGET"},
  {T "--pair @dry.wav --skip", 2, "--pair needs two files"},
  {T "--knob drive=1 " PAIR, 2, "--knob drive=1 must follow the --pair"},
  {"train --arch lstm --out @m.json " PAIR, 2,
   "--arch: architecture 'lstm' is not TYPE:UNITS"},
  {"train --arch lstm:8x9 --out @m.json " PAIR, 2, "is not TYPE:UNITS"},
  {T PAIR "--epochs -1", 2, "--epochs must be a whole number from 0"},
  {T PAIR "--lr 0", 2, "--lr must be a number above 0 and at most 1"},
  {T PAIR "--lr 2", 2, "--lr must be a number above 0"},
  {T PAIR "--batch 0", 2, "--batch must be a whole number from 1 to 4096"},
  {T PAIR "--seed pi", 2, "--seed must be a whole number"},
  {T PAIR "--segment-seconds 0", 2, "--segment-seconds must be a number "
   "above 0"},
  {T PAIR "--validation-fraction 1", 2, "--validation-fraction must be"},
  {T PAIR "--max-minutes x", 2, "--max-minutes must be"},
  {T PAIR "--warmup 4000", 2, "more than its warm-up (segments of 4000 "
   "samples with a warm-up of 4000)"},
  {T PAIR "--knob drive", 2, "--knob 'drive' is not NAME=VALUE"},
  {T PAIR "--knob drive=loud", 2, "--knob drive: 'loud' is not a number"},
  {T PAIR "--knob drive=0 --pair @dry.wav @hard.wav", 2,
   "pair 2 ('" "%T/hard.wav'): no value for knob 'drive'; every pair gives "
   "a value for every knob"},
  {T PAIR "--knob drive=0 --pair @dry.wav @hard.wav --knob drive=1 "
   "--knob tone=1", 2, "knob 'tone' is not one the first pair names"},
  {T PAIR "--knob drive=0 --knob DRIVE=1", 2, "knob 'DRIVE' is given twice"},
  {T PAIR "--manifest @manifest.json", 2, "give the training pairs with "
   "--pair or with --manifest, not both"},
  {T PAIR "--frobnicate", 2, "carry train: unrecognized option "
   "'--frobnicate'"},
  {T PAIR "extra", 2, "unexpected argument 'extra'"},
  {T "--pair @dry.wav @missing.wav", 4, "cannot read audio file '%T/"
   "missing.wav'"},
  {T "--pair @not_audio.txt @soft.wav", 4, "not_audio.txt"},
  {T "--pair @stereo.wav @soft.wav", 4, "stereo.wav' has 2 channels; carry "
   "train reads mono files"},
  {T "--pair @dry.wav @fast.wav", 4, "fast.wav' is at 22050 Hz but '%T/"
   "dry.wav' is at 16000 Hz"},
  {T "--pair @dry.wav @short.wav", 4, "a pair's files must have the same "
   "length"},
  {T PAIR "--knob drive=1 --knob-range drive=0-1", 2, "--knob-range "
   "'drive=0-1' is not NAME=MIN:MAX"},
  {T PAIR "--knob drive=1 --knob-range gain=0:1", 2, "no pair has a knob "
   "called 'gain'"},
  {T PAIR "--knob drive=1 --knob-range drive=0:0.5", 2, "pair 1: knob "
   "'drive' = 1 lies outside its range [0, 0.5]"},
  {T "--manifest @bad_manifest.json", 2, "bad_manifest.json: "
   "pairs[0].target: expected a file name, found a number"},
  {T "--manifest @none.json", 4, "cannot read manifest"},
  {"train --resume @none.checkpoint --out @m.json " PAIR, 3,
   "cannot resume: cannot read checkpoint '%T/none.checkpoint'"},
  {"train --resume @not_audio.txt --out @m.json " PAIR, 3,
   "is not a Carry training checkpoint"},
  {"train --resume @c.checkpoint --arch gru:4 --out @m.json " PAIR, 2,
   "--arch gru:4 differs from the checkpoint's lstm:4"},
  {"train --resume @c.checkpoint --lr 0.01 --out @m.json " PAIR, 2,
   "--lr 0.01 differs from the checkpoint's 0.005"},
  {"train --resume @c.checkpoint --seed 9 --out @m.json " PAIR, 2,
   "--seed 9 differs from the checkpoint's 1"},
  {"train --resume @c.checkpoint --out @m.json --pair @dry.wav @hard.wav", 2,
   "was made from other training data"},
  {T PAIR "--out @no_dir/m.json", 4, "no_dir/m.json"},
  {T PAIR "--checkpoint @no_dir/c", 4, "cannot write checkpoint '%T/"
   "no_dir/c'"},
};

/** The message with "%T" standing for the temporary directory. */
static void expand(const char *message, char *text, size_t size)
{
  text[0] = '\0';
  for (const char *p = message; *p && strlen(text) + 1 < size; ++p) {
    const size_t used = strlen(text);
    if (p[0] == '%' && p[1] == 'T') {
      snprintf(text + used, size - used, "%s", temp_files_dir());
      ++p;
    } else {
      text[used] = *p;
      text[used + 1] = '\0';
    }
  }
}

static void test_bad_arguments(void)
{
  // A checkpoint for the resume cases: lstm:4, seed 1, lr 0.005, no knobs.
  run_ok("train --arch lstm:4 --out @c.json --checkpoint @c.checkpoint "
         PAIR "--epochs 0 " QUICK);
  unlink(temp_files_path("m.json"));
  for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); ++k) {
    const bad_case *c = &bad_cases[k];
    char message[1024];
    expand(c->message, message, sizeof(message));
    unlink(temp_files_path("m.json"));
    // QUICK first, so that a case's own options override it.
    const run_result r = run("train " QUICK "%s", c->command + 5);
    CHECK(r.status == c->status, "'%s' exited %d, expected %d: %s",
          c->command, r.status, c->status, r.stderr_text);
    CHECK(strstr(r.stderr_text, message) != NULL,
          "'%s': expected '%s' in: %s", c->command, message, r.stderr_text);
    CHECK(!temp_files_exists("m.json"), "'%s' left m.json behind", c->command);
  }
}

/* ------------------------------------------------------------------------ */
/* Runs */

static carry_model *load(const char *name)
{
  carry_error err;
  carry_model *model = carry_model_load(temp_files_path(name), &err);
  CHECK(model != NULL, "%s does not load in Carry: %s", name, err.message);
  return model;
}

static bool same_weights(const carry_model *a, const carry_model *b)
{
  const int n_layers = carry_model_get_spec(a)->n_layers;
  bool same = n_layers == carry_model_get_spec(b)->n_layers;
  for (int l = 0; same && l < n_layers; ++l) {
    const carry_layer_weights x = carry_model_layer_const(a, l);
    const carry_layer_weights y = carry_model_layer_const(b, l);
    const size_t n_in = (size_t)x.n_in * (size_t)x.n_rows;
    same = !memcmp(x.kernel, y.kernel, n_in * sizeof(float)) &&
           !memcmp(x.bias, y.bias, (size_t)x.n_rows * sizeof(float));
  }
  return same;
}

static void check_model(const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 2 && spec->has_skip && spec->sample_rate == RATE,
        "inputs %d, skip %d, rate %g", spec->n_inputs, spec->has_skip,
        spec->sample_rate);
  CHECK(!strcmp(spec->knobs[0].name, "drive") && spec->knobs[0].min == 0.0f &&
          spec->knobs[0].max == 1.0f, "knob '%s' [%g, %g]",
        spec->knobs[0].name, (double)spec->knobs[0].min,
        (double)spec->knobs[0].max);
  CHECK(!strcmp(spec->name, "pedal"), "name '%s'", spec->name);
  json_t *meta = json_loads(carry_model_get_metadata(model), 0, NULL);
  const json_t *training = json_object_get(meta, "training");
  CHECK(!strcmp(json_string_value(json_object_get(training, "arch")),
                "lstm:8") &&
          json_integer_value(json_object_get(training, "seed")) == 3 &&
          json_integer_value(json_object_get(
            json_object_get(training, "run"), "epochs")) == 2,
        "metadata: %s", carry_model_get_metadata(model));
  json_decref(meta);
}

#define GOOD "train --arch lstm:8 --skip --seed 3 --name pedal " QUICK " " \
             "--pair @dry.wav @soft.wav --knob drive=0 " \
             "--pair @dry.wav @hard.wav --knob drive=1 "

static void test_runs(void)
{
  run_ok(GOOD "--epochs 2 --out @a.json");
  run_ok(GOOD "--epochs 2 --out @b.json");
  run_ok(GOOD "--epochs 1 --out @r.json --checkpoint @r.checkpoint");
  run_ok(GOOD "--epochs 2 --out @r.json --resume @r.checkpoint "
         "--checkpoint @r.checkpoint");
  carry_model *a = load("a.json"), *b = load("b.json"), *r = load("r.json");
  if (a && b && r) {
    check_model(a);
    CHECK(same_weights(a, b), "two runs with the same seed differ");
    CHECK(same_weights(a, r), "a resumed run differs from a straight one");
  }
  CHECK(temp_files_exists("a.json.checkpoint"), "no default checkpoint beside a.json");
  carry_model_free(a);
  carry_model_free(b);
  carry_model_free(r);
}

static void test_manifest_run(void)
{
  const run_result res = run("train --arch gru:8 --out @man.json --manifest "
                             "@manifest.json --epochs 1 " QUICK);
  CHECK(res.status == 0, "manifest run: %s", res.stderr_text);
  CHECK(strstr(res.stderr_text, "epoch 1/1: loss") &&
          strstr(res.stderr_text, "samples/s") &&
          strstr(res.stderr_text, "wrote '"), "progress lines: %s",
        res.stderr_text);
  carry_model *model = load("man.json");
  if (model) {
    const carry_knob *knob = &carry_model_get_spec(model)->knobs[0];
    CHECK(!strcmp(knob->name, "drive") && knob->max == 2.0f,
          "the manifest's knob range");
  }
  carry_model_free(model);
  const run_result plain = run("train --arch gru:8 --out @aidax.json "
                               "--epochs 0 " QUICK " " PAIR);
  CHECK(strstr(plain.stderr_text, "AIDA-X can load this model"),
        "no AIDA-X note: %s", plain.stderr_text);
}

/** Waits for `text` to appear in the running command's stderr. */
static bool wait_for(const char *text, double seconds)
{
  char output[OUTPUT_SIZE];
  const struct timespec pause = {0, 20000000};
  for (double waited = 0.0; waited < seconds; waited += 0.02) {
    subprocess_read_text(temp_files_path(".stderr"), output, sizeof(output));
    if (strstr(output, text)) {
      return true;
    }
    nanosleep(&pause, NULL);
  }
  return false;
}

static void test_interrupt(void)
{
  const pid_t pid = start(GOOD "--epochs 100000 --out @i.json");
  CHECK(wait_for("epoch 1/", 120.0), "no epoch finished");
  kill(pid, SIGINT);
  const run_result r = finish(pid);
  CHECK(r.status == 1 && strstr(r.stderr_text, "interrupted: wrote the best "
                                "model so far to"), "after Ctrl-C: exit %d: "
        "%s", r.status, r.stderr_text);
  carry_model *model = load("i.json");
  carry_model_free(model);
  run_ok(GOOD "--resume @i.json.checkpoint --epochs 1 --out @j.json");
  CHECK(temp_files_exists("j.json"), "no model after resuming");
}

int main(void)
{
  if (!getenv("CARRY_EXE") || !temp_files_make("train-cli")) {
    fprintf(stderr, "needs CARRY_EXE and a temporary directory\n");
    return 1;
  }
  write_inputs();
  run_ok("train --help");
  test_bad_arguments();
  test_runs();
  test_manifest_run();
  test_interrupt();
  char command[600];
  snprintf(command, sizeof(command), "rm -rf '%s'", temp_files_dir());
  if (system(command) != 0) {
    fprintf(stderr, "could not remove %s\n", temp_files_dir());
  }
  return test_finish("train_cli");
}
