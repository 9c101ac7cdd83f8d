/*
  Checkpoints: the whole state of a trainer in one binary file, so that a
  resumed run continues exactly where the saved one was.

  Layout (native byte order and float format, which the header records and
  a reader checks): the magic "CARRYTRN", the version, a byte-order mark
  and the float size; the settings; the data's fingerprint, knob and pair
  counts; the position (epoch, batch, Adam's step count, learning rate,
  patience counters, best and latest validation figures, times, the
  generator before and after the epoch's shuffle); the parameter count P
  and four arrays of P floats (weights, best weights, Adam's m and v); and
  an FNV-1a checksum of everything before it.  Written to PATH.tmp and
  renamed, so a crash never leaves half a checkpoint in place of a whole.
*/

#include "train_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "CARRYTRN"
#define VERSION 1u
#define BYTE_ORDER_MARK 0x01020304u

/* ------------------------------------------------------------------------ */
/* Writing */

/** A growing byte buffer; a failed allocation is remembered. */
typedef struct writer {
  unsigned char *data;
  size_t size;
  size_t capacity;
  bool is_out_of_memory;
} writer;

static void put(writer *w, const void *bytes, size_t n)
{
  if (w->is_out_of_memory) {
    return;
  }
  if (w->size + n > w->capacity) {
    size_t capacity = w->capacity ? w->capacity : 4096;
    while (capacity < w->size + n) {
      capacity *= 2;
    }
    unsigned char *bigger = realloc(w->data, capacity);
    if (!bigger) {
      w->is_out_of_memory = true;
      return;
    }
    w->data = bigger;
    w->capacity = capacity;
  }
  memcpy(w->data + w->size, bytes, n);
  w->size += n;
}

static void put_i32(writer *w, int32_t value)
{
  put(w, &value, sizeof(value));
}

static void put_u64(writer *w, uint64_t value)
{
  put(w, &value, sizeof(value));
}

static void put_f64(writer *w, double value)
{
  put(w, &value, sizeof(value));
}

static void put_settings(writer *w, const carry_train_settings *s)
{
  put_i32(w, (int32_t)s->arch.type);
  put_i32(w, s->arch.n_units);
  put_i32(w, s->arch.n_layers);
  put_i32(w, s->arch.has_skip);
  put_u64(w, s->seed);
  put_f64(w, s->learning_rate);
  put_f64(w, s->lr_factor);
  put_i32(w, s->lr_patience);
  put_f64(w, s->lr_min);
  put_f64(w, s->clip_norm);
  put_i32(w, s->segment_samples);
  put_i32(w, s->warmup_samples);
  put_i32(w, s->tbptt_samples);
  put_i32(w, s->batch_size);
  put_f64(w, s->validation_fraction);
  put_i32(w, s->n_threads);
  put_i32(w, s->max_epochs);
  put_f64(w, s->max_minutes);
  put_i32(w, s->patience);
}

static void put_position(writer *w, const train_position *p)
{
  put_i32(w, p->epoch);
  put_i32(w, p->batch);
  put_u64(w, p->n_updates);
  put_u64(w, p->n_skipped);
  put_f64(w, p->lr);
  put_i32(w, p->epochs_since_best);
  put_i32(w, p->epochs_since_lr_change);
  put_f64(w, p->best_val_loss);
  put_f64(w, p->best_val_esr);
  put_f64(w, p->best_val_esr_pre);
  put_i32(w, p->best_epoch);
  put_f64(w, p->initial_val_loss);
  put_f64(w, p->val_loss);
  put_f64(w, p->val_esr);
  put_f64(w, p->val_esr_pre);
  put_f64(w, p->epoch_loss_sum);
  put_u64(w, p->epoch_loss_count);
  put_f64(w, p->seconds);
  put_f64(w, p->gemm_seconds);
  put_f64(w, p->epoch_seconds);
  put_u64(w, p->samples_trained);
  put_i32(w, p->is_validated);
  put_u64(w, p->rng.state);
  put_u64(w, p->epoch_rng.state);
}

static uint64_t checksum(const unsigned char *bytes, size_t n)
{
  uint64_t hash = 0xCBF29CE484222325ull;
  for (size_t k = 0; k < n; ++k) {
    hash = (hash ^ bytes[k]) * 0x100000001B3ull;
  }
  return hash;
}

static void put_trainer(writer *w, const carry_trainer *t)
{
  const size_t P = t->net->n_params;
  put(w, MAGIC, 8);
  put_i32(w, VERSION);
  put_i32(w, (int32_t)BYTE_ORDER_MARK);
  put_i32(w, (int32_t)sizeof(float));
  put_settings(w, &t->settings);
  put_u64(w, t->fingerprint);
  put_i32(w, t->data->n_knobs);
  put_i32(w, t->data->n_pairs);
  put_position(w, &t->pos);
  put_u64(w, P);
  put(w, t->net->params, P * sizeof(float));
  put(w, t->best, P * sizeof(float));
  put(w, t->m, P * sizeof(float));
  put(w, t->v, P * sizeof(float));
  if (!w->is_out_of_memory) {
    put_u64(w, checksum(w->data, w->size));
  }
}

static carry_status write_file(const char *path, const writer *w,
                               carry_error *err)
{
  const int errnum = carry_write_file_atomically(path, w->data, w->size);
  if (errnum) {
    return carry_fail(err, CARRY_ERR_IO, "cannot write checkpoint '%s': %s",
                      path, strerror(errnum));
  }
  return carry_succeed(err);
}

carry_status carry_trainer_save_checkpoint(const carry_trainer *t,
                                           const char *path, carry_error *err)
{
  writer w = {NULL, 0, 0, false};
  put_trainer(&w, t);
  carry_status st = w.is_out_of_memory
                      ? carry_fail(err, CARRY_ERR_NO_MEMORY, "%s: out of "
                                   "memory for the checkpoint", path)
                      : write_file(path, &w, err);
  free(w.data);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Reading */

/** Reads a file's bytes in order; running past the end is remembered. */
typedef struct reader {
  const unsigned char *data;
  size_t size;
  size_t at;
  bool is_truncated;
} reader;

static void get(reader *r, void *bytes, size_t n)
{
  if (r->is_truncated || n > r->size - r->at) {
    r->is_truncated = true;
    memset(bytes, 0, n);
    return;
  }
  memcpy(bytes, r->data + r->at, n);
  r->at += n;
}

static int32_t get_i32(reader *r)
{
  int32_t value;
  get(r, &value, sizeof(value));
  return value;
}

static uint64_t get_u64(reader *r)
{
  uint64_t value;
  get(r, &value, sizeof(value));
  return value;
}

static double get_f64(reader *r)
{
  double value;
  get(r, &value, sizeof(value));
  return value;
}

static void get_settings(reader *r, carry_train_settings *s)
{
  memset(s, 0, sizeof(*s));
  s->arch.type = (carry_layer_type)get_i32(r);
  s->arch.n_units = get_i32(r);
  s->arch.n_layers = get_i32(r);
  s->arch.has_skip = get_i32(r) != 0;
  s->seed = get_u64(r);
  s->learning_rate = get_f64(r);
  s->lr_factor = get_f64(r);
  s->lr_patience = get_i32(r);
  s->lr_min = get_f64(r);
  s->clip_norm = get_f64(r);
  s->segment_samples = get_i32(r);
  s->warmup_samples = get_i32(r);
  s->tbptt_samples = get_i32(r);
  s->batch_size = get_i32(r);
  s->validation_fraction = get_f64(r);
  s->n_threads = get_i32(r);
  s->max_epochs = get_i32(r);
  s->max_minutes = get_f64(r);
  s->patience = get_i32(r);
}

static void get_position(reader *r, train_position *p)
{
  p->epoch = get_i32(r);
  p->batch = get_i32(r);
  p->n_updates = get_u64(r);
  p->n_skipped = get_u64(r);
  p->lr = get_f64(r);
  p->epochs_since_best = get_i32(r);
  p->epochs_since_lr_change = get_i32(r);
  p->best_val_loss = get_f64(r);
  p->best_val_esr = get_f64(r);
  p->best_val_esr_pre = get_f64(r);
  p->best_epoch = get_i32(r);
  p->initial_val_loss = get_f64(r);
  p->val_loss = get_f64(r);
  p->val_esr = get_f64(r);
  p->val_esr_pre = get_f64(r);
  p->epoch_loss_sum = get_f64(r);
  p->epoch_loss_count = get_u64(r);
  p->seconds = get_f64(r);
  p->gemm_seconds = get_f64(r);
  p->epoch_seconds = get_f64(r);
  p->samples_trained = get_u64(r);
  p->is_validated = get_i32(r) != 0;
  p->rng.state = get_u64(r);
  p->epoch_rng.state = get_u64(r);
}

/** The whole file, or NULL with the error. */
static unsigned char *read_file(const char *path, size_t *size,
                                carry_error *err)
{
  FILE *file = fopen(path, "rb");
  if (!file) {
    carry_fail(err, CARRY_ERR_IO, "cannot read checkpoint '%s': %s", path,
               strerror(errno));
    return NULL;
  }
  unsigned char *data = NULL;
  size_t capacity = 0;
  *size = 0;
  for (;;) {
    if (*size == capacity) {
      capacity = capacity ? 2 * capacity : 1 << 16;
      unsigned char *bigger = realloc(data, capacity);
      if (!bigger) {
        break;
      }
      data = bigger;
    }
    const size_t n = fread(data + *size, 1, capacity - *size, file);
    *size += n;
    if (n == 0) {
      break;
    }
  }
  const bool ok = !ferror(file) && *size < capacity;
  fclose(file);
  if (!ok) {
    free(data);
    carry_fail(err, CARRY_ERR_IO, "cannot read checkpoint '%s'", path);
    return NULL;
  }
  return data;
}

/** The magic, version and number formats. */
static carry_status check_header(reader *r, const char *path,
                                 carry_error *err)
{
  char magic[8];
  get(r, magic, sizeof(magic));
  if (r->is_truncated || memcmp(magic, MAGIC, 8) != 0) {
    return carry_fail(err, CARRY_ERR_FORMAT, "'%s' is not a Carry training "
                      "checkpoint (it does not start with \"%s\")", path,
                      MAGIC);
  }
  const uint32_t version = (uint32_t)get_i32(r);
  const uint32_t mark = (uint32_t)get_i32(r);
  const int32_t float_size = get_i32(r);
  if (r->is_truncated) {
    return carry_fail(err, CARRY_ERR_FORMAT, "checkpoint '%s' is damaged or "
                      "truncated (%zu bytes)", path, r->size);
  }
  if (version != VERSION) {
    return carry_fail(err, CARRY_ERR_UNSUPPORTED, "checkpoint '%s' has "
                      "version %u; this trainer reads version %u", path,
                      version, VERSION);
  }
  if (mark != BYTE_ORDER_MARK || float_size != (int32_t)sizeof(float)) {
    return carry_fail(err, CARRY_ERR_UNSUPPORTED, "checkpoint '%s' was "
                      "written on a machine of another byte order or float "
                      "format", path);
  }
  return CARRY_SUCCESS;
}

/** The checksum at the end over everything before it; then the reader
    stops short of it. */
static carry_status check_sum(reader *r, const char *path, carry_error *err)
{
  uint64_t stored;
  if (r->size < r->at + sizeof(stored)) {
    return carry_fail(err, CARRY_ERR_FORMAT, "checkpoint '%s' is damaged or "
                      "truncated (%zu bytes)", path, r->size);
  }
  memcpy(&stored, r->data + r->size - sizeof(stored), sizeof(stored));
  if (stored != checksum(r->data, r->size - sizeof(stored))) {
    return carry_fail(err, CARRY_ERR_FORMAT, "checkpoint '%s' is damaged or "
                      "truncated: its checksum does not match (%zu bytes)",
                      path, r->size);
  }
  r->size -= sizeof(stored);
  return CARRY_SUCCESS;
}

/** The counts and fingerprint against the data given for the resumed
    run. */
static carry_status check_data(reader *r, const carry_trainer *t,
                               const char *path, carry_error *err)
{
  const uint64_t fingerprint = get_u64(r);
  const int n_knobs = get_i32(r), n_pairs = get_i32(r);
  if (n_knobs != t->data->n_knobs || n_pairs != t->data->n_pairs) {
    return carry_fail(err, CARRY_ERR_VALUE, "checkpoint '%s' was made with "
                      "%d pair%s and %d knob%s, but this run has %d and %d",
                      path, n_pairs, n_pairs == 1 ? "" : "s", n_knobs,
                      n_knobs == 1 ? "" : "s", t->data->n_pairs,
                      t->data->n_knobs);
  }
  if (fingerprint != t->fingerprint) {
    return carry_fail(err, CARRY_ERR_VALUE, "checkpoint '%s' was made from "
                      "other training data: the pairs' audio, knob values or "
                      "validation marks differ", path);
  }
  return CARRY_SUCCESS;
}

static carry_status get_arrays(reader *r, carry_trainer *t, const char *path,
                               carry_error *err)
{
  const size_t P = t->net->n_params;
  const uint64_t stored = get_u64(r);
  if (stored != P) {
    return carry_fail(err, CARRY_ERR_FORMAT, "checkpoint '%s' holds %llu "
                      "parameters where its settings need %zu", path,
                      (unsigned long long)stored, P);
  }
  get(r, t->net->params, P * sizeof(float));
  get(r, t->best, P * sizeof(float));
  get(r, t->m, P * sizeof(float));
  get(r, t->v, P * sizeof(float));
  if (r->is_truncated || r->at != r->size) {
    return carry_fail(err, CARRY_ERR_FORMAT, "checkpoint '%s' is %s", path,
                      r->is_truncated ? "truncated" : "longer than its "
                      "contents");
  }
  return CARRY_SUCCESS;
}

/** A position a trainer of these settings and data can be in.  `batch` may
    equal the number of batches: a run stopped after an epoch's last batch
    and before its validation, which a resumed run does first. */
static carry_status check_position(const carry_trainer *t, const char *path,
                                   carry_error *err)
{
  const train_position *p = &t->pos;
  const int n_batches = (t->split.n_segments + t->settings.batch_size - 1) /
                        t->settings.batch_size;
  if (p->epoch < 0 || p->batch < 0 || p->batch > n_batches ||
      !(p->lr > 0.0 && p->lr <= 1.0) || p->epochs_since_best < 0 ||
      p->epochs_since_lr_change < 0) {
    return carry_fail(err, CARRY_ERR_VALUE, "checkpoint '%s' holds an "
                      "impossible position (epoch %d, batch %d of %d, "
                      "learning rate %g)", path, p->epoch, p->batch,
                      n_batches, p->lr);
  }
  return CARRY_SUCCESS;
}

/** A trainer for the checkpoint's settings and the given data. */
static carry_trainer *new_for(reader *r, const carry_train_data *data,
                              const char *path, carry_error *err)
{
  carry_train_settings settings;
  get_settings(r, &settings);
  carry_error inner = {CARRY_SUCCESS, ""};
  carry_trainer *t = train_trainer_new(&settings, data, &inner);
  if (!t) {
    carry_fail(err, inner.status, "checkpoint '%s': %s", path,
               inner.message);
  }
  return t;
}

static carry_trainer *restore(reader *r, const carry_train_data *data,
                              const char *path, carry_error *err)
{
  if (check_header(r, path, err) || check_sum(r, path, err)) {
    return NULL;
  }
  carry_trainer *t = new_for(r, data, path, err);
  if (!t || check_data(r, t, path, err)) {
    carry_trainer_free(t);
    return NULL;
  }
  get_position(r, &t->pos);
  if (check_position(t, path, err) || get_arrays(r, t, path, err)) {
    carry_trainer_free(t);
    return NULL;
  }
  if (t->pos.batch > 0) {
    train_trainer_reshuffle(t);
  }
  carry_succeed(err);
  return t;
}

carry_trainer *carry_trainer_resume(const char *path,
                                    const carry_train_data *data,
                                    carry_error *err)
{
  size_t size = 0;
  unsigned char *bytes = read_file(path, &size, err);
  if (!bytes) {
    return NULL;
  }
  reader r = {bytes, size, 0, false};
  carry_trainer *t = restore(&r, data, path, err);
  free(bytes);
  return t;
}
