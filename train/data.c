/*
  Training data: pairs of dry and target audio with their knob values, the
  split into training segments and validation sequences, and the
  fingerprint that ties a checkpoint to its data.
*/

#include "train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Data sets */

static carry_status check_knob_names(int n_knobs, const char *const *names,
                                     carry_error *err)
{
  if (n_knobs < 0 || n_knobs > CARRY_MAX_KNOBS) {
    return carry_fail(err, CARRY_ERR_LIMIT, "%d knobs is outside the "
                      "supported 0 to %d", n_knobs, CARRY_MAX_KNOBS);
  }
  for (int k = 0; k < n_knobs; ++k) {
    if (!names[k][0] || strlen(names[k]) >= CARRY_NAME_SIZE) {
      return carry_fail(err, CARRY_ERR_BAD_ARG, "knob %d needs a name of 1 "
                        "to %d bytes", k + 1, CARRY_NAME_SIZE - 1);
    }
    for (int j = 0; j < k; ++j) {
      if (!strcasecmp(names[j], names[k])) {
        return carry_fail(err, CARRY_ERR_BAD_ARG, "knob '%s' is named "
                          "twice", names[k]);
      }
    }
  }
  return CARRY_SUCCESS;
}

carry_train_data *carry_train_data_create(double sample_rate, int n_knobs,
                                          const char *const *knob_names,
                                          carry_error *err)
{
  if (!(sample_rate >= 1000.0 && sample_rate <= 1e6)) {
    carry_fail(err, CARRY_ERR_VALUE, "sample rate %g Hz is not a plausible "
               "audio rate", sample_rate);
    return NULL;
  }
  if (check_knob_names(n_knobs, knob_names, err)) {
    return NULL;
  }
  carry_train_data *data = calloc(1, sizeof(*data));
  if (!data) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for training data");
    return NULL;
  }
  data->sample_rate = sample_rate;
  data->n_knobs = n_knobs;
  for (int k = 0; k < n_knobs; ++k) {
    strcpy(data->knob_names[k], knob_names[k]);
  }
  carry_succeed(err);
  return data;
}

static void free_pair(train_pair *pair)
{
  free(pair->dry);
  free(pair->target);
  free(pair->dry_name);
  free(pair->target_name);
}

void carry_train_data_free(carry_train_data *data)
{
  if (data) {
    for (int p = 0; p < data->n_pairs; ++p) {
      free_pair(&data->pairs[p]);
    }
    free(data->pairs);
    free(data);
  }
}

static bool all_finite(const float *x, size_t n)
{
  for (size_t k = 0; k < n; ++k) {
    if (!isfinite(x[k])) {
      return false;
    }
  }
  return true;
}

static char *copy_name(const char *name)
{
  return name ? strdup(name) : NULL;
}

static float *copy_samples(const float *x, size_t n)
{
  float *copy = malloc(n * sizeof(float));
  if (copy) {
    memcpy(copy, x, n * sizeof(float));
  }
  return copy;
}

static carry_status check_pair(const carry_train_data *data, const float *dry,
                               const float *target, size_t n,
                               const float *knobs, carry_error *err)
{
  if (n < 2) {
    return carry_fail(err, CARRY_ERR_VALUE, "pair %d has %zu samples; a "
                      "pair needs at least 2", data->n_pairs + 1, n);
  }
  if (!all_finite(dry, n) || !all_finite(target, n)) {
    return carry_fail(err, CARRY_ERR_VALUE, "pair %d holds a sample that "
                      "is not a finite number", data->n_pairs + 1);
  }
  for (int k = 0; k < data->n_knobs; ++k) {
    if (!isfinite(knobs[k])) {
      return carry_fail(err, CARRY_ERR_VALUE, "pair %d: knob '%s' is not a "
                        "finite number", data->n_pairs + 1,
                        data->knob_names[k]);
    }
  }
  return CARRY_SUCCESS;
}

static carry_status grow(carry_train_data *data, carry_error *err)
{
  if (data->n_pairs < data->capacity) {
    return CARRY_SUCCESS;
  }
  const int capacity = data->capacity ? 2 * data->capacity : 8;
  train_pair *pairs = realloc(data->pairs, (size_t)capacity * sizeof(*pairs));
  if (!pairs) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for pairs");
  }
  data->pairs = pairs;
  data->capacity = capacity;
  return CARRY_SUCCESS;
}

carry_status carry_train_data_add(carry_train_data *data, const float *dry,
                                  const float *target, size_t n,
                                  const float *knobs, bool is_validation,
                                  const char *dry_name,
                                  const char *target_name, carry_error *err)
{
  carry_status st = check_pair(data, dry, target, n, knobs, err);
  if (st || (st = grow(data, err))) {
    return st;
  }
  train_pair pair;
  memset(&pair, 0, sizeof(pair));
  pair.n = n;
  pair.is_validation = is_validation;
  if (data->n_knobs) {
    memcpy(pair.knobs, knobs, (size_t)data->n_knobs * sizeof(float));
  }
  pair.dry = copy_samples(dry, n);
  pair.target = copy_samples(target, n);
  pair.dry_name = copy_name(dry_name);
  pair.target_name = copy_name(target_name);
  if (!pair.dry || !pair.target || (dry_name && !pair.dry_name) ||
      (target_name && !pair.target_name)) {
    free_pair(&pair);
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a pair "
                      "of %zu samples", n);
  }
  data->pairs[data->n_pairs++] = pair;
  return carry_succeed(err);
}

carry_status carry_train_data_set_knob_range(carry_train_data *data,
                                             int knob, float min, float max,
                                             carry_error *err)
{
  if (knob < 0 || knob >= data->n_knobs) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "no knob %d", knob + 1);
  }
  if (!isfinite(min) || !isfinite(max) || min > max) {
    return carry_fail(err, CARRY_ERR_VALUE, "knob '%s': range [%g, %g] is "
                      "not MIN <= MAX", data->knob_names[knob], (double)min,
                      (double)max);
  }
  data->has_range[knob] = true;
  data->range_min[knob] = min;
  data->range_max[knob] = max;
  return carry_succeed(err);
}

int carry_train_data_n_knobs(const carry_train_data *data)
{
  return data->n_knobs;
}

int carry_train_data_n_pairs(const carry_train_data *data)
{
  return data->n_pairs;
}

double carry_train_data_sample_rate(const carry_train_data *data)
{
  return data->sample_rate;
}

int carry_train_data_find_knob(const carry_train_data *data,
                               const char *name)
{
  for (int k = 0; k < data->n_knobs; ++k) {
    if (!strcasecmp(data->knob_names[k], name)) {
      return k;
    }
  }
  return -1;
}

void train_data_knob_range(const carry_train_data *data, int k, float *min,
                           float *max)
{
  if (data->has_range[k]) {
    *min = data->range_min[k];
    *max = data->range_max[k];
    return;
  }
  *min = *max = data->n_pairs ? data->pairs[0].knobs[k] : 0.0f;
  for (int p = 1; p < data->n_pairs; ++p) {
    *min = fminf(*min, data->pairs[p].knobs[k]);
    *max = fmaxf(*max, data->pairs[p].knobs[k]);
  }
}

/* ------------------------------------------------------------------------ */
/* The split */

static bool has_validation_pairs(const carry_train_data *data)
{
  for (int p = 0; p < data->n_pairs; ++p) {
    if (data->pairs[p].is_validation) {
      return true;
    }
  }
  return false;
}

static train_sequence sequence_of(const train_pair *pair, size_t start,
                                  size_t n)
{
  train_sequence s = {pair->dry + start, pair->target + start, n,
                      pair->knobs};
  return s;
}

/** Each pair whole, training or validation as marked. */
static void split_explicitly(const carry_train_data *data, train_split *split)
{
  for (int p = 0; p < data->n_pairs; ++p) {
    const train_pair *pair = &data->pairs[p];
    if (pair->is_validation) {
      split->val[split->n_val++] = sequence_of(pair, 0, pair->n);
    } else {
      split->train[split->n_train++] = sequence_of(pair, 0, pair->n);
    }
  }
}

/** The end of each pair validates, the rest trains. */
static carry_status split_by_fraction(const carry_train_data *data,
                                      double fraction, train_split *split,
                                      carry_error *err)
{
  for (int p = 0; p < data->n_pairs; ++p) {
    const train_pair *pair = &data->pairs[p];
    const size_t n_val = (size_t)llround(fraction * (double)pair->n);
    if (n_val < 1 || n_val >= pair->n) {
      return carry_fail(err, CARRY_ERR_VALUE, "pair %d (%zu samples) is too "
                        "short to keep %g of it for validation", p + 1,
                        pair->n, fraction);
    }
    const size_t n_train = pair->n - n_val;
    split->train[split->n_train++] = sequence_of(pair, 0, n_train);
    split->val[split->n_val++] = sequence_of(pair, n_train, n_val);
  }
  return CARRY_SUCCESS;
}

static carry_status cut_segments(train_split *split, int S, carry_error *err)
{
  size_t n_segments = 0;
  for (int s = 0; s < split->n_train; ++s) {
    n_segments += split->train[s].n / (size_t)S;
  }
  if (n_segments == 0) {
    return carry_fail(err, CARRY_ERR_VALUE, "no training segments: every "
                      "pair's training part is shorter than one segment "
                      "(%d samples); use shorter segments or longer pairs", S);
  }
  if (n_segments > (size_t)INT32_MAX / 2) {
    return carry_fail(err, CARRY_ERR_LIMIT, "%zu segments are too many",
                      n_segments);
  }
  split->segments = malloc(n_segments * sizeof(train_segment));
  if (!split->segments) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for %zu "
                      "segments", n_segments);
  }
  for (int s = 0; s < split->n_train; ++s) {
    for (size_t k = 0; k + 1 <= split->train[s].n / (size_t)S; ++k) {
      train_segment segment = {s, k * (size_t)S};
      split->segments[split->n_segments++] = segment;
    }
  }
  return CARRY_SUCCESS;
}

/** Every pair's knob values within the ranges the caller set. */
static carry_status check_knob_ranges(const carry_train_data *data,
                                      carry_error *err)
{
  for (int p = 0; p < data->n_pairs; ++p) {
    for (int k = 0; k < data->n_knobs; ++k) {
      const float value = data->pairs[p].knobs[k];
      if (data->has_range[k] &&
          (value < data->range_min[k] || value > data->range_max[k])) {
        return carry_fail(err, CARRY_ERR_VALUE, "pair %d: knob '%s' = %g "
                          "lies outside its range [%g, %g]", p + 1,
                          data->knob_names[k], (double)value,
                          (double)data->range_min[k],
                          (double)data->range_max[k]);
      }
    }
  }
  return CARRY_SUCCESS;
}

static carry_status allocate_split(const carry_train_data *data,
                                   train_split *split, carry_error *err)
{
  const size_t n = data->n_pairs ? (size_t)data->n_pairs : 1;
  split->train = calloc(n, sizeof(train_sequence));
  split->val = calloc(n, sizeof(train_sequence));
  if (!split->train || !split->val) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory");
  }
  return CARRY_SUCCESS;
}

carry_status train_split_create(const carry_train_data *data,
                                const carry_train_settings *settings,
                                train_split *split, carry_error *err)
{
  memset(split, 0, sizeof(*split));
  carry_status st = check_knob_ranges(data, err);
  if (!st) {
    st = allocate_split(data, split, err);
  }
  if (!st && has_validation_pairs(data)) {
    split_explicitly(data, split);
  } else if (!st) {
    st = split_by_fraction(data, settings->validation_fraction, split, err);
  }
  if (!st && split->n_train == 0) {
    st = carry_fail(err, CARRY_ERR_VALUE, "no training pairs: %s",
                    data->n_pairs ? "every pair is for validation"
                                  : "none were given");
  }
  if (!st) {
    st = cut_segments(split, settings->segment_samples, err);
  }
  for (int v = 0; !st && v < split->n_val; ++v) {
    split->max_val_length = split->val[v].n > split->max_val_length
                              ? split->val[v].n : split->max_val_length;
  }
  if (st) {
    train_split_free(split);
  }
  return st;
}

void train_split_free(train_split *split)
{
  free(split->train);
  free(split->val);
  free(split->segments);
  memset(split, 0, sizeof(*split));
}

/* ------------------------------------------------------------------------ */
/* Fingerprint */

static uint64_t fnv1a(uint64_t hash, const void *bytes, size_t n)
{
  const unsigned char *p = bytes;
  for (size_t k = 0; k < n; ++k) {
    hash = (hash ^ p[k]) * 0x100000001B3ull;
  }
  return hash;
}

uint64_t train_data_fingerprint(const carry_train_data *data)
{
  uint64_t hash = 0xCBF29CE484222325ull;
  hash = fnv1a(hash, &data->sample_rate, sizeof(data->sample_rate));
  hash = fnv1a(hash, &data->n_knobs, sizeof(data->n_knobs));
  for (int k = 0; k < data->n_knobs; ++k) {
    hash = fnv1a(hash, data->knob_names[k], strlen(data->knob_names[k]));
  }
  for (int p = 0; p < data->n_pairs; ++p) {
    const train_pair *pair = &data->pairs[p];
    const unsigned char is_validation = pair->is_validation;
    hash = fnv1a(hash, &pair->n, sizeof(pair->n));
    hash = fnv1a(hash, &is_validation, 1);
    hash = fnv1a(hash, pair->knobs, (size_t)data->n_knobs * sizeof(float));
    hash = fnv1a(hash, pair->dry, pair->n * sizeof(float));
    hash = fnv1a(hash, pair->target, pair->n * sizeof(float));
  }
  return hash;
}
