/*
  Architectures ("lstm:32", "gru:16", "lstm:16x2") and the settings'
  defaults and ranges.
*/

#include "train_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Architectures */

/** A whole decimal number in [1, max] at `text`, ending at `*end`. */
static bool parse_count(const char *text, long max, long *value, char **end)
{
  errno = 0;
  if (text[0] < '0' || text[0] > '9') {
    return false;
  }
  *value = strtol(text, end, 10);
  return errno == 0 && *value >= 1 && *value <= max;
}

static carry_status bad_arch(const char *text, carry_error *err)
{
  return carry_fail(err, CARRY_ERR_BAD_ARG,
                    "architecture '%s' is not TYPE:UNITS or TYPE:UNITSxLAYERS "
                    "with TYPE lstm or gru, 1 to %d units and 1 to %d layers "
                    "(for example lstm:32, gru:16, lstm:16x2)",
                    text, CARRY_MAX_UNITS, CARRY_MAX_RECURRENT);
}

carry_status carry_train_parse_arch(const char *text, carry_train_arch *arch,
                                    carry_error *err)
{
  const char *colon = strchr(text, ':');
  const size_t type_length = colon ? (size_t)(colon - text) : 0;
  carry_layer_type type;
  if (type_length == 4 && !strncasecmp(text, "lstm", 4)) {
    type = CARRY_LAYER_LSTM;
  } else if (type_length == 3 && !strncasecmp(text, "gru", 3)) {
    type = CARRY_LAYER_GRU;
  } else {
    return bad_arch(text, err);
  }
  long units = 0, layers = 1;
  char *end = NULL;
  if (!parse_count(colon + 1, CARRY_MAX_UNITS, &units, &end)) {
    return bad_arch(text, err);
  }
  if ((*end == 'x' || *end == 'X') &&
      !parse_count(end + 1, CARRY_MAX_RECURRENT, &layers, &end)) {
    return bad_arch(text, err);
  }
  if (*end != '\0') {
    return bad_arch(text, err);
  }
  arch->type = type;
  arch->n_units = (int)units;
  arch->n_layers = (int)layers;
  return carry_succeed(err);
}

void carry_train_format_arch(const carry_train_arch *arch, char *text,
                             size_t size)
{
  const char *type = arch->type == CARRY_LAYER_LSTM ? "lstm" : "gru";
  if (arch->n_layers > 1) {
    snprintf(text, size, "%s:%dx%d", type, arch->n_units, arch->n_layers);
  } else {
    snprintf(text, size, "%s:%d", type, arch->n_units);
  }
}

const char *carry_train_blas_kernels(void)
{
  return openblas_get_corename();
}

bool carry_train_is_aidax_size(const carry_train_arch *arch, int n_knobs)
{
  // AIDA-X's RTNeural model variants (src/model_variant.hpp); its plugin
  // refuses models with more than one input.
  static const int sizes[] = {8, 12, 16, 20, 32, 40, 64, 80};
  if (arch->n_layers != 1 || n_knobs != 0) {
    return false;
  }
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
    if (arch->n_units == sizes[k]) {
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------------------ */
/* Settings */

void carry_train_settings_init(carry_train_settings *s, double sample_rate)
{
  memset(s, 0, sizeof(*s));
  s->arch.type = CARRY_LAYER_LSTM;
  s->arch.n_units = 32;
  s->arch.n_layers = 1;
  s->seed = 1;
  s->learning_rate = 5e-3;
  s->lr_factor = 0.5;
  s->lr_patience = 5;
  s->lr_min = 1e-5;
  s->segment_samples = (int)(0.5 * sample_rate + 0.5);
  s->warmup_samples = (int)(1000.0 * sample_rate / 48000.0 + 0.5);
  s->tbptt_samples = 1024;
  s->batch_size = 16;
  s->validation_fraction = 0.2;
  s->n_threads = 1;
  s->max_epochs = 200;
  s->patience = 20;
}

/** The first range a setting breaks, or NULL. */
static const char *broken_range(const carry_train_settings *s)
{
  if (s->arch.n_units < 1 || s->arch.n_units > CARRY_MAX_UNITS ||
      s->arch.n_layers < 1 || s->arch.n_layers > CARRY_MAX_RECURRENT ||
      (s->arch.type != CARRY_LAYER_LSTM && s->arch.type != CARRY_LAYER_GRU)) {
    return "the architecture is not LSTM or GRU of 1 to 1024 units, 1 to 8 "
           "layers";
  }
  if (!(s->learning_rate > 0.0 && s->learning_rate <= 1.0)) {
    return "the learning rate must lie in (0, 1]";
  }
  if (!(s->lr_factor > 0.0 && s->lr_factor <= 1.0) || s->lr_patience < 0 ||
      !(s->lr_min >= 0.0)) {
    return "the plateau schedule needs a factor in (0, 1], a patience of 0 "
           "or more and a floor of 0 or more";
  }
  if (!(s->clip_norm >= 0.0 && s->clip_norm < 1e30)) {
    return "the clipping norm must be 0 (off) or positive";
  }
  if (s->segment_samples < 2 || s->warmup_samples < 0 ||
      s->warmup_samples >= s->segment_samples) {
    return "a segment needs at least 2 samples, and more than its warm-up";
  }
  if (s->tbptt_samples < 1 || s->tbptt_samples > (1 << 20)) {
    return "the samples per update must lie in 1 to 1048576";
  }
  if (s->batch_size < 1 || s->batch_size > 4096) {
    return "the batch size must lie in 1 to 4096";
  }
  if ((long long)s->tbptt_samples * s->batch_size > (1 << 24)) {
    return "the samples per update times the batch size must not exceed "
           "16777216";
  }
  if (!(s->validation_fraction > 0.0 && s->validation_fraction < 1.0)) {
    return "the validation fraction must lie in (0, 1)";
  }
  if (s->n_threads < 0 || s->n_threads > 256 || s->max_epochs < 0 ||
      !(s->max_minutes >= 0.0) || s->patience < 0) {
    return "threads, epochs, minutes and patience cannot be negative";
  }
  return NULL;
}

carry_status carry_train_settings_check(const carry_train_settings *s,
                                        carry_error *err)
{
  const char *broken = broken_range(s);
  if (broken) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "bad training settings: %s",
                      broken);
  }
  return carry_succeed(err);
}
