/*
  The trainer as a library: a short run on a simple target reduces the
  validation loss tenfold; the validation ESR it reports is what Carry's
  inference gives on the validation audio; the same seed gives the same
  weights; a run resumed from a checkpoint (after an epoch, or in the
  middle of one) ends with the same weights as one that was not stopped;
  broken checkpoints, manifests, data, architectures and settings give
  clear errors.
*/

#include "carry_train.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RATE 16000.0
#define PAIR_SAMPLES 64000   // 4 s per pair

static char temp_dir[256];

static const char *temp_path(const char *name)
{
  static char paths[4][512];
  static int next = 0;
  char *path = paths[next++ % 4];
  snprintf(path, 512, "%s/%s", temp_dir, name);
  return path;
}

static void write_text(const char *name, const char *text)
{
  FILE *file = fopen(temp_path(name), "w");
  if (file) {
    fputs(text, file);
    fclose(file);
  }
}

/* ------------------------------------------------------------------------ */
/* Data and settings */

/** The simple target: tanh(3x) through a one-pole low-pass at 2 kHz. */
static void make_target(const float *dry, float *target, size_t n)
{
  const double a = exp(-2.0 * M_PI * 2000.0 / RATE);
  double state = 0.0;
  for (size_t t = 0; t < n; ++t) {
    state = (1.0 - a) * tanh(3.0 * dry[t]) + a * state;
    target[t] = (float)state;
  }
}

/** `n_pairs` pairs of the simple target (signals from `seed` on), the
    last `n_validation` of them for validation only. */
static carry_train_data *make_data(int n_pairs, int n_validation,
                                   uint64_t seed)
{
  carry_error err;
  carry_train_data *data = carry_train_data_create(RATE, 0, NULL, &err);
  float *dry = malloc(PAIR_SAMPLES * sizeof(float));
  float *target = malloc(PAIR_SAMPLES * sizeof(float));
  for (int p = 0; p < n_pairs; ++p) {
    test_signal(dry, PAIR_SAMPLES, seed + (uint64_t)p);
    make_target(dry, target, PAIR_SAMPLES);
    CHECK(!carry_train_data_add(data, dry, target, PAIR_SAMPLES, NULL,
                                p >= n_pairs - n_validation, NULL, NULL,
                                &err), "%s", err.message);
  }
  free(dry);
  free(target);
  return data;
}

static carry_train_settings small_settings(const char *arch, int epochs)
{
  carry_train_settings s;
  carry_train_settings_init(&s, RATE);
  carry_error err;
  CHECK(!carry_train_parse_arch(arch, &s.arch, &err), "%s", err.message);
  s.segment_samples = 4000;
  s.warmup_samples = 200;
  s.tbptt_samples = 1000;
  s.batch_size = 6;
  s.max_epochs = epochs;
  s.patience = 0;
  s.n_threads = 1;
  return s;
}

static carry_trainer *run(const carry_train_settings *s,
                          const carry_train_data *data,
                          const char *checkpoint)
{
  carry_error err;
  carry_trainer *t = carry_trainer_create(s, data, &err);
  if (CHECK(t != NULL, "create: %s", err.message)) {
    CHECK(!carry_trainer_run(t, checkpoint, NULL, NULL, &err), "run: %s",
          err.message);
  }
  return t;
}

static bool same_weights(const carry_trainer *a, const carry_trainer *b,
                         bool best)
{
  size_t n_a = 0, n_b = 0;
  const float *wa = carry_trainer_parameters(a, best, &n_a);
  const float *wb = carry_trainer_parameters(b, best, &n_b);
  return n_a == n_b && !memcmp(wa, wb, n_a * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* Learning */

static void test_learns(void)
{
  carry_train_data *data = make_data(2, 0, 1);
  carry_train_settings s = small_settings("lstm:8", 8);
  carry_trainer *t = run(&s, data, NULL);
  const carry_train_progress *p = carry_trainer_progress(t);
  printf("lstm:8, 8 epochs of %.1f s: validation loss %.4g -> %.4g (%.0fx), "
         "ESR %.4g, in %.2f s\n", 2 * 0.8 * PAIR_SAMPLES / RATE,
         p->initial_val_loss, p->best_val_loss,
         p->initial_val_loss / p->best_val_loss, p->best_val_esr, p->seconds);
  CHECK(p->best_val_loss * 10.0 <= p->initial_val_loss,
        "validation loss only went from %g to %g", p->initial_val_loss,
        p->best_val_loss);
  CHECK(p->epoch == 8 && p->stop == CARRY_TRAIN_EPOCHS_DONE,
        "stopped after %d epochs (reason %d)", p->epoch, (int)p->stop);
  // 2 x 51200 training samples: 24 segments, 4 batches, 4 chunks each.
  CHECK(p->n_updates == 8u * 4u * 4u, "%llu updates, expected 8 epochs x 4 "
        "batches x 4 chunks", (unsigned long long)p->n_updates);
  carry_trainer_free(t);
  carry_train_data_free(data);
}

/** Plain ESR of Carry's inference over `n` samples from zero state. */
static double carry_esr(const carry_model *model, const float *dry,
                        const float *target, size_t n)
{
  float *out = malloc(n * sizeof(float));
  carry_error err;
  carry_stream *stream = carry_stream_create(model, 512, &err);
  carry_stream_process(stream, dry, NULL, out, (uint32_t)n);
  double error = 0.0, energy = 0.0;
  for (size_t k = 0; k < n; ++k) {
    error += ((double)out[k] - target[k]) * ((double)out[k] - target[k]);
    energy += (double)target[k] * target[k];
  }
  carry_stream_free(stream);
  free(out);
  return error / energy;
}

/** The reported validation ESR, against Carry's output on the last 20% of
    the one pair, streamed from zero state. */
static void test_validation_esr(void)
{
  carry_train_data *data = make_data(1, 0, 7);
  carry_train_settings s = small_settings("gru:8", 2);
  s.arch.has_skip = true;
  carry_trainer *t = run(&s, data, NULL);
  carry_error err;
  carry_model *model = carry_trainer_export(t, NULL, true, &err);
  float *dry = malloc(PAIR_SAMPLES * sizeof(float));
  float *target = malloc(PAIR_SAMPLES * sizeof(float));
  test_signal(dry, PAIR_SAMPLES, 7);
  make_target(dry, target, PAIR_SAMPLES);
  const size_t start = PAIR_SAMPLES - PAIR_SAMPLES / 5;
  const double esr = carry_esr(model, dry + start, target + start,
                               PAIR_SAMPLES / 5);
  const double reported = carry_trainer_progress(t)->best_val_esr;
  CHECK(fabs(esr - reported) <= 1e-4 * esr, "validation ESR %.9g, Carry "
        "gives %.9g", reported, esr);
  free(dry);
  free(target);
  carry_model_free(model);
  carry_trainer_free(t);
  carry_train_data_free(data);
}

/* ------------------------------------------------------------------------ */
/* Determinism and resuming */

static void test_determinism(void)
{
  carry_train_data *data = make_data(2, 1, 3);
  carry_train_settings s = small_settings("gru:6x2", 2);
  s.n_threads = 2;
  carry_trainer *a = run(&s, data, NULL);
  carry_trainer *b = run(&s, data, NULL);
  s.seed = 2;
  carry_trainer *c = run(&s, data, NULL);
  CHECK(same_weights(a, b, false) && same_weights(a, b, true),
        "two runs with the same seed differ");
  CHECK(!same_weights(a, c, false), "another seed gives the same weights");
  carry_trainer_free(a);
  carry_trainer_free(b);
  carry_trainer_free(c);
  carry_train_data_free(data);
}

/** Stops a run after `stop_after` batches. */
typedef struct stopper {
  int batches;
  int stop_after;
} stopper;

static bool stop_early(const carry_train_progress *p, void *user)
{
  stopper *s = user;
  return p->event != CARRY_TRAIN_BATCH || ++s->batches < s->stop_after;
}

static carry_trainer *resume_to(const char *checkpoint,
                                const carry_train_data *data, int epochs)
{
  carry_error err;
  carry_trainer *t = carry_trainer_resume(checkpoint, data, &err);
  if (!CHECK(t != NULL, "resume: %s", err.message)) {
    return NULL;
  }
  CHECK(!carry_trainer_set_limits(t, epochs, 0.0, 0, &err), "%s",
        err.message);
  CHECK(!carry_trainer_run(t, checkpoint, NULL, NULL, &err), "%s",
        err.message);
  return t;
}

static void check_resumed(const carry_trainer *straight,
                          const carry_trainer *resumed, const char *how)
{
  const carry_train_progress *a = carry_trainer_progress(straight);
  const carry_train_progress *b = carry_trainer_progress(resumed);
  CHECK(resumed && same_weights(straight, resumed, false) &&
          same_weights(straight, resumed, true),
        "%s: the weights differ from a straight run", how);
  CHECK(a->best_val_loss == b->best_val_loss && a->epoch == b->epoch &&
          a->best_epoch == b->best_epoch && a->n_updates == b->n_updates &&
          a->learning_rate == b->learning_rate,
        "%s: best %g at %d, %llu updates, lr %g; straight: %g at %d, %llu, "
        "%g", how, b->best_val_loss, b->best_epoch,
        (unsigned long long)b->n_updates, b->learning_rate, a->best_val_loss,
        a->best_epoch, (unsigned long long)a->n_updates, a->learning_rate);
}

static void test_resume(void)
{
  carry_train_data *data = make_data(2, 0, 5);
  carry_train_settings s = small_settings("lstm:6x2", 4);
  s.arch.has_skip = true;
  s.lr_patience = 1;  // so that the schedule's state matters too
  carry_trainer *straight = run(&s, data, NULL);

  const char *checkpoint = temp_path("resume.checkpoint");
  s.max_epochs = 2;
  carry_trainer *first = run(&s, data, checkpoint);
  carry_trainer_free(first);
  carry_trainer *resumed = resume_to(checkpoint, data, 4);
  check_resumed(straight, resumed, "resumed after epoch 2");
  carry_trainer_free(resumed);

  s.max_epochs = 4;
  carry_error err;
  carry_trainer *stopped = carry_trainer_create(&s, data, &err);
  stopper stop = {0, 6};  // two batches into the second (of 4 batches)
  CHECK(!carry_trainer_run(stopped, checkpoint, stop_early, &stop, &err),
        "%s", err.message);
  CHECK(carry_trainer_progress(stopped)->stop == CARRY_TRAIN_INTERRUPTED &&
          carry_trainer_progress(stopped)->batch == 2,
        "the callback did not stop the run two batches into an epoch");
  carry_trainer_free(stopped);
  resumed = resume_to(checkpoint, data, 4);
  check_resumed(straight, resumed, "resumed in the middle of epoch 2");
  carry_trainer_free(resumed);

  // Ctrl-C after an epoch's last batch, before its validation: the
  // checkpoint holds every batch done (found by `carry train`'s test
  // on a loaded machine, where it was refused as impossible)
  stopped = carry_trainer_create(&s, data, &err);
  stop = (stopper){0, 8};
  CHECK(!carry_trainer_run(stopped, checkpoint, stop_early, &stop, &err),
        "%s", err.message);
  CHECK(carry_trainer_progress(stopped)->stop == CARRY_TRAIN_INTERRUPTED &&
          carry_trainer_progress(stopped)->batch == 4,
        "the callback did not stop the run after an epoch's last batch");
  carry_trainer_free(stopped);
  resumed = resume_to(checkpoint, data, 4);
  check_resumed(straight, resumed, "resumed after the last batch of epoch 2");
  carry_trainer_free(resumed);
  carry_trainer_free(straight);
  carry_train_data_free(data);
}

/* ------------------------------------------------------------------------ */
/* Broken checkpoints */

static char *read_bytes(const char *path, size_t *size)
{
  FILE *file = fopen(path, "rb");
  char *bytes = malloc(1 << 20);
  *size = file && bytes ? fread(bytes, 1, 1 << 20, file) : 0;
  if (file) {
    fclose(file);
  }
  return bytes;
}

static void write_bytes(const char *name, const char *bytes, size_t size)
{
  FILE *file = fopen(temp_path(name), "wb");
  if (file) {
    fwrite(bytes, 1, size, file);
    fclose(file);
  }
}

static void expect_resume_error(const char *name,
                                const carry_train_data *data,
                                carry_status status, const char *message)
{
  carry_error err;
  carry_trainer *t = carry_trainer_resume(temp_path(name), data, &err);
  CHECK(t == NULL && err.status == status, "%s: status %d, expected %d",
        name, (int)err.status, (int)status);
  CHECK(strstr(err.message, message) && strstr(err.message, name),
        "%s: expected '%s' and the file's name in: %s", name, message,
        err.message);
  carry_trainer_free(t);
}

static void make_broken_checkpoints(const char *good)
{
  size_t size = 0;
  char *bytes = read_bytes(temp_path(good), &size);
  write_bytes("truncated.checkpoint", bytes, size / 2);
  write_bytes("tiny.checkpoint", bytes, 10);
  bytes[size / 2] ^= 0x10;
  write_bytes("flipped.checkpoint", bytes, size);
  bytes[size / 2] ^= 0x10;
  bytes[8] = 7;  // the version
  write_bytes("version.checkpoint", bytes, size);
  free(bytes);
  write_text("text.checkpoint", "{\"not\": \"a checkpoint\"}\n");
}

static void test_checkpoint_errors(void)
{
  carry_train_data *data = make_data(1, 0, 11);
  carry_train_settings s = small_settings("gru:4", 1);
  carry_trainer *t = run(&s, data, temp_path("good.checkpoint"));
  carry_trainer_free(t);
  make_broken_checkpoints("good.checkpoint");
  expect_resume_error("missing.checkpoint", data, CARRY_ERR_IO,
                      "No such file");
  expect_resume_error("text.checkpoint", data, CARRY_ERR_FORMAT,
                      "is not a Carry training checkpoint");
  expect_resume_error("tiny.checkpoint", data, CARRY_ERR_FORMAT,
                      "is damaged or truncated (10 bytes)");
  expect_resume_error("truncated.checkpoint", data, CARRY_ERR_FORMAT,
                      "is damaged or truncated");
  expect_resume_error("flipped.checkpoint", data, CARRY_ERR_FORMAT,
                      "checksum does not match");
  expect_resume_error("version.checkpoint", data, CARRY_ERR_UNSUPPORTED,
                      "has version 7; this trainer reads version 1");
  carry_train_data *other = make_data(1, 0, 12);
  expect_resume_error("good.checkpoint", other, CARRY_ERR_VALUE,
                      "was made from other training data");
  carry_train_data *more = make_data(2, 0, 11);
  expect_resume_error("good.checkpoint", more, CARRY_ERR_VALUE,
                      "was made with 1 pair and 0 knobs, but this run has 2 "
                      "and 0");
  carry_train_data_free(more);
  carry_train_data_free(other);
  carry_train_data_free(data);
}

/* ------------------------------------------------------------------------ */
/* Manifests */

static void test_good_manifest(void)
{
  write_text("good.json",
             "{\"pairs\": [\n"
             "  {\"dry\": \"dry.wav\", \"target\": \"a.wav\",\n"
             "   \"knobs\": {\"drive\": 0.25, \"tone\": 1}},\n"
             "  {\"dry\": \"/abs/dry.wav\", \"target\": \"b.wav\",\n"
             "   \"knobs\": {\"TONE\": 0.5, \"drive\": 0.75}}],\n"
             " \"validation\": [{\"dry\": \"v.wav\", \"target\": \"vt.wav\",\n"
             "   \"knobs\": {\"drive\": 0.5, \"tone\": 0}}],\n"
             " \"knob_ranges\": {\"drive\": [0, 1]}}\n");
  carry_error err;
  carry_train_manifest *m = carry_train_manifest_load(temp_path("good.json"),
                                                      &err);
  if (!CHECK(m != NULL, "good manifest: %s", err.message)) {
    return;
  }
  CHECK(m->n_knobs == 2 && !strcmp(m->knob_names[0], "drive") &&
          !strcmp(m->knob_names[1], "tone"), "knob names");
  CHECK(m->n_pairs == 3 && !m->pairs[0].is_validation &&
          m->pairs[2].is_validation, "pairs");
  CHECK(!strcmp(m->pairs[0].dry, temp_path("dry.wav")) &&
          !strcmp(m->pairs[1].dry, "/abs/dry.wav"),
        "paths: '%s', '%s'", m->pairs[0].dry, m->pairs[1].dry);
  CHECK(m->pairs[1].knobs[0] == 0.75f && m->pairs[1].knobs[1] == 0.5f &&
          m->pairs[2].knobs[1] == 0.0f, "knob values");
  CHECK(m->has_range[0] && !m->has_range[1] && m->range_max[0] == 1.0f,
        "ranges");
  carry_train_manifest_free(m);
}

typedef struct bad_manifest {
  const char *text;
  carry_status status;
  const char *message;   ///< Expected after "FILE: "
} bad_manifest;

#define PAIR(knobs) "{\"dry\": \"d.wav\", \"target\": \"t.wav\"" knobs "}"

static const bad_manifest bad_manifests[] = {
  {"{\"pairs\": [", CARRY_ERR_SYNTAX, "line 1, column"},
  {"[1, 2]", CARRY_ERR_FORMAT, "expected a JSON object with \"pairs\", "
   "found an array"},
  {"{}", CARRY_ERR_FORMAT, "pairs: expected a non-empty array of pairs, "
   "found nothing"},
  {"{\"pairs\": []}", CARRY_ERR_FORMAT, "pairs: expected a non-empty array "
   "of pairs, found an empty array"},
  {"{\"pairs\": {}}", CARRY_ERR_FORMAT, "pairs: expected a non-empty array "
   "of pairs, found an object"},
  {"{\"pairs\": [3]}", CARRY_ERR_FORMAT, "pairs[0]: expected an object "
   "{\"dry\", \"target\", \"knobs\"}, found a number"},
  {"{\"pairs\": [{\"target\": \"t.wav\"}]}", CARRY_ERR_FORMAT,
   "pairs[0]: missing \"dry\" (a file name)"},
  {"{\"pairs\": [{\"dry\": \"d.wav\", \"target\": 5}]}", CARRY_ERR_FORMAT,
   "pairs[0].target: expected a file name, found a number"},
  {"{\"pairs\": [{\"dry\": \"\", \"target\": \"t.wav\"}]}", CARRY_ERR_FORMAT,
   "pairs[0].dry: expected a file name, found an empty string"},
  {"{\"pairs\": [" PAIR(", \"wet\": 1") "]}", CARRY_ERR_FORMAT,
   "pairs[0]: unknown key \"wet\""},
  {"{\"pair\": [" PAIR("") "]}", CARRY_ERR_FORMAT, "unknown key \"pair\""},
  {"{\"pairs\": [" PAIR(", \"knobs\": [1]") "]}", CARRY_ERR_FORMAT,
   "pairs[0].knobs: expected an object of NAME: VALUE, found an array"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1}") ", "
   PAIR(", \"knobs\": {\"drive\": \"high\"}") "]}", CARRY_ERR_FORMAT,
   "pairs[1].knobs.drive: expected a number, found a string"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1, \"tone\": 0}") ", "
   PAIR(", \"knobs\": {\"drive\": 0}") "]}", CARRY_ERR_FORMAT,
   "pairs[1].knobs: no value for knob 'tone'; every pair gives a value for "
   "every knob"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1}") ", "
   PAIR(", \"knobs\": {\"drive\": 0, \"gain\": 1}") "]}", CARRY_ERR_FORMAT,
   "pairs[1].knobs: knob 'gain' is not one the first pair names"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1}") "], \"validation\": "
   "[" PAIR("") "]}", CARRY_ERR_FORMAT, "validation[0].knobs: no value for "
   "knob 'drive'"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1}") "], \"knob_ranges\": "
   "{\"gain\": [0, 1]}}", CARRY_ERR_FORMAT, "knob_ranges.gain: no pair has a "
   "knob called 'gain'"},
  {"{\"pairs\": [" PAIR(", \"knobs\": {\"drive\": 1}") "], \"knob_ranges\": "
   "{\"drive\": [1, 0]}}", CARRY_ERR_FORMAT, "knob_ranges.drive: expected "
   "[MIN, MAX] with MIN <= MAX"},
  {"{\"pairs\": [" PAIR("") "], \"pairs\": []}", CARRY_ERR_SYNTAX,
   "duplicate object key"},
};

static void test_bad_manifests(void)
{
  for (size_t k = 0; k < sizeof(bad_manifests) / sizeof(bad_manifests[0]);
       ++k) {
    const bad_manifest *b = &bad_manifests[k];
    char name[32];
    snprintf(name, sizeof(name), "bad%zu.json", k);
    write_text(name, b->text);
    carry_error err;
    carry_train_manifest *m = carry_train_manifest_load(temp_path(name),
                                                        &err);
    char expected[1024];
    snprintf(expected, sizeof(expected), "%s: %s", temp_path(name),
             b->message);
    CHECK(!m && err.status == b->status &&
            (strstr(err.message, expected) ||
             (b->status == CARRY_ERR_SYNTAX &&
              strstr(err.message, b->message))),
          "manifest %zu: status %d, message: %s\nexpected: %s", k,
          (int)err.status, err.message, expected);
    carry_train_manifest_free(m);
  }
  carry_error err;
  CHECK(!carry_train_manifest_load(temp_path("none.json"), &err) &&
          err.status == CARRY_ERR_IO && strstr(err.message, "none.json"),
        "a missing manifest: %s", err.message);
}

/* ------------------------------------------------------------------------ */
/* Data, architectures and settings */

static void expect_create_error(const carry_train_settings *s,
                                const carry_train_data *data,
                                const char *message)
{
  carry_error err;
  carry_trainer *t = carry_trainer_create(s, data, &err);
  CHECK(!t && strstr(err.message, message), "expected '%s', got: %s",
        message, t ? "a trainer" : err.message);
  carry_trainer_free(t);
}

static void test_data_errors(void)
{
  static const char *const names[] = {"drive", "Drive"};
  carry_error err;
  CHECK(!carry_train_data_create(RATE, 2, names, &err) &&
          strstr(err.message, "knob 'Drive' is named twice"), "%s",
        err.message);
  carry_train_data *data = carry_train_data_create(RATE, 1, names, &err);
  float x[6000] = {0}, knob = 1.5f, nan_knob = NAN;
  CHECK(carry_train_data_add(data, x, x, 6000, &nan_knob, false, NULL, NULL,
                             &err) == CARRY_ERR_VALUE &&
          strstr(err.message, "knob 'drive' is not a finite number"), "%s",
        err.message);
  x[17] = INFINITY;
  CHECK(carry_train_data_add(data, x, x, 6000, &knob, false, NULL, NULL,
                             &err) == CARRY_ERR_VALUE &&
          strstr(err.message, "not a finite number"), "%s", err.message);
  x[17] = 0.0f;
  carry_train_data_add(data, x, x, 6000, &knob, false, NULL, NULL, &err);
  carry_train_data_set_knob_range(data, 0, 0.0f, 1.0f, &err);
  carry_train_settings s = small_settings("lstm:4", 1);
  expect_create_error(&s, data, "pair 1: knob 'drive' = 1.5 lies outside "
                      "its range [0, 1]");
  carry_train_data_set_knob_range(data, 0, 0.0f, 2.0f, &err);
  s.segment_samples = 5000;  // the training part is 4800 samples
  expect_create_error(&s, data, "no training segments");
  s.segment_samples = 100;
  s.warmup_samples = 100;
  expect_create_error(&s, data, "more than its warm-up");
  carry_train_data_free(data);
}

static void test_arch(void)
{
  static const struct { const char *text; int type, units, layers; } good[] = {
    {"lstm:32", CARRY_LAYER_LSTM, 32, 1}, {"GRU:16", CARRY_LAYER_GRU, 16, 1},
    {"lstm:16x2", CARRY_LAYER_LSTM, 16, 2}, {"gru:1X8", CARRY_LAYER_GRU, 1, 8},
  };
  static const char *const bad[] = {
    "lstm", "lstm:", "lstm:0", "lstm:1025", "lstm:16x0", "lstm:16x9",
    "rnn:16", "lstm:16x", "lstm:16y2", "lstm:-3", "lstm: 16", ":16", "",
  };
  for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); ++k) {
    carry_train_arch arch;
    carry_error err;
    char text[32];
    CHECK(!carry_train_parse_arch(good[k].text, &arch, &err) &&
            (int)arch.type == good[k].type && arch.n_units == good[k].units &&
            arch.n_layers == good[k].layers, "'%s'", good[k].text);
    carry_train_format_arch(&arch, text, sizeof(text));
    CHECK(!strcasecmp(text, good[k].text), "'%s' reads back as '%s'",
          good[k].text, text);
  }
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); ++k) {
    carry_train_arch arch;
    carry_error err;
    CHECK(carry_train_parse_arch(bad[k], &arch, &err) == CARRY_ERR_BAD_ARG &&
            strstr(err.message, "is not TYPE:UNITS"), "'%s': %s", bad[k],
          err.message);
  }
  const carry_train_arch lstm32 = {CARRY_LAYER_LSTM, 32, 1, true};
  const carry_train_arch gru80 = {CARRY_LAYER_GRU, 80, 1, false};
  const carry_train_arch lstm24 = {CARRY_LAYER_LSTM, 24, 1, false};
  const carry_train_arch stacked = {CARRY_LAYER_LSTM, 16, 2, false};
  CHECK(carry_train_is_aidax_size(&lstm32, 0) &&
          carry_train_is_aidax_size(&gru80, 0) &&
          !carry_train_is_aidax_size(&lstm32, 1) &&
          !carry_train_is_aidax_size(&lstm24, 0) &&
          !carry_train_is_aidax_size(&stacked, 0), "AIDA-X sizes");
}

int main(void)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(temp_dir, sizeof(temp_dir), "%s/carry-train-XXXXXX",
           tmp ? tmp : "/tmp");
  if (!mkdtemp(temp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_arch();
  test_data_errors();
  test_good_manifest();
  test_bad_manifests();
  test_learns();
  test_validation_esr();
  test_determinism();
  test_resume();
  test_checkpoint_errors();
  char command[600];
  snprintf(command, sizeof(command), "rm -rf '%s'", temp_dir);
  if (system(command) != 0) {
    fprintf(stderr, "could not remove %s\n", temp_dir);
  }
  return test_finish("train");
}
