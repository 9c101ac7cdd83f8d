/*
  The registry of reference effects and the public API around the
  effect classes (see effects.h and parts.h).
*/

#include "parts.h"

#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const effect_class *const classes[] = {
  &diode_clipper_class,
  &overdrive_class,
  &fuzz_class,
  &preamp_class,
};

#define N_CLASSES ((int)(sizeof(classes) / sizeof(classes[0])))

struct effect {
  const effect_class *cls;
  double rate;
  double values[EFFECT_MAX_PARAMS];  ///< The knobs, as set
  effect_stats stats;
  alignas(max_align_t) unsigned char state[];  ///< The class's state
};

/* ------------------------------------------------------------------------ */
/* Errors */

const char *effect_strerror(effect_status status)
{
  switch (status) {
  case EFFECT_SUCCESS: return "success";
  case EFFECT_ERR_UNKNOWN_EFFECT: return "unknown effect";
  case EFFECT_ERR_UNKNOWN_PARAM: return "unknown parameter";
  case EFFECT_ERR_VALUE: return "bad parameter value";
  case EFFECT_ERR_RATE: return "unsupported sample rate";
  case EFFECT_ERR_NO_MEMORY: return "out of memory";
  }
  return "unknown status";
}

static effect_status fail(effect_error *err, effect_status status,
                          const char *format, ...)
  __attribute__((format(printf, 3, 4)));

static effect_status fail(effect_error *err, effect_status status,
                          const char *format, ...)
{
  if (err) {
    va_list args;
    va_start(args, format);
    err->status = status;
    vsnprintf(err->message, sizeof(err->message), format, args);
    va_end(args);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* The registry */

int effect_count(void)
{
  return N_CLASSES;
}

const effect_info *effect_info_at(int index)
{
  return index >= 0 && index < N_CLASSES ? &classes[index]->info : NULL;
}

static const effect_class *find_class(const char *name)
{
  for (int k = 0; name && k < N_CLASSES; ++k) {
    if (!strcmp(classes[k]->info.name, name)) {
      return classes[k];
    }
  }
  return NULL;
}

const effect_info *effect_find(const char *name)
{
  const effect_class *cls = find_class(name);
  return cls ? &cls->info : NULL;
}

int effect_find_param(const effect_info *info, const char *name)
{
  for (int k = 0; info && name && k < info->n_params; ++k) {
    if (!strcasecmp(info->params[k].name, name)) {
      return k;
    }
  }
  return -1;
}

/** "diode_clipper, overdrive, fuzz, preamp" for messages. */
static void list_names(char *list, size_t size)
{
  list[0] = '\0';
  for (int k = 0; k < N_CLASSES; ++k) {
    const size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", k ? ", " : "",
             classes[k]->info.name);
  }
}

/* ------------------------------------------------------------------------ */
/* Running */

effect *effect_create(const char *name, double sample_rate, effect_error *err)
{
  const effect_class *cls = find_class(name);
  if (!cls) {
    char names[128];
    list_names(names, sizeof(names));
    fail(err, EFFECT_ERR_UNKNOWN_EFFECT, "unknown effect '%s'; the effects "
         "are: %s", name ? name : "(null)", names);
    return NULL;
  }
  if (!(sample_rate >= EFFECT_MIN_RATE && sample_rate <= EFFECT_MAX_RATE)) {
    fail(err, EFFECT_ERR_RATE, "%s: a sample rate of %g Hz is outside "
         "%g..%g Hz", cls->info.name, sample_rate, EFFECT_MIN_RATE,
         EFFECT_MAX_RATE);
    return NULL;
  }
  effect *fx = calloc(1, sizeof(effect) + cls->state_size);
  if (!fx) {
    fail(err, EFFECT_ERR_NO_MEMORY, "%s: out of memory", cls->info.name);
    return NULL;
  }
  fx->cls = cls;
  fx->rate = sample_rate;
  for (int k = 0; k < cls->info.n_params; ++k) {
    fx->values[k] = cls->info.params[k].value;
  }
  cls->configure(fx->state, sample_rate, fx->values);
  effect_reset(fx);
  return fx;
}

const effect_info *effect_get_info(const effect *fx)
{
  return &fx->cls->info;
}

double effect_get_rate(const effect *fx)
{
  return fx->rate;
}

/** "drive [0, 1]" or "drive [0, 1], tone [0, 1]" for messages. */
static void list_params(const effect_info *info, char *list, size_t size)
{
  list[0] = '\0';
  for (int k = 0; k < info->n_params; ++k) {
    const size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s [%g, %g]", k ? ", " : "",
             info->params[k].name, info->params[k].min,
             info->params[k].max);
  }
}

effect_status effect_set_param(effect *fx, const char *name, double value,
                               effect_error *err)
{
  const effect_info *info = &fx->cls->info;
  const int index = effect_find_param(info, name);
  if (index < 0) {
    char params[128];
    list_params(info, params, sizeof(params));
    return fail(err, EFFECT_ERR_UNKNOWN_PARAM, "%s has no parameter '%s'; "
                "its parameters are: %s", info->name, name ? name : "(null)",
                params);
  }
  const effect_param *param = &info->params[index];
  if (!(value >= param->min && value <= param->max)) {
    return fail(err, EFFECT_ERR_VALUE, "%s: %s = %g is outside [%g, %g]",
                info->name, param->name, value, param->min, param->max);
  }
  fx->values[index] = value;
  fx->cls->configure(fx->state, fx->rate, fx->values);
  return EFFECT_SUCCESS;
}

double effect_get_param(const effect *fx, int index)
{
  return index >= 0 && index < fx->cls->info.n_params ? fx->values[index]
                                                      : NAN;
}

void effect_process(effect *fx, const float *in, float *out, size_t n)
{
  fx->cls->process(fx->state, in, out, n, &fx->stats);
}

void effect_reset(effect *fx)
{
  fx->cls->reset(fx->state);
  memset(&fx->stats, 0, sizeof(fx->stats));
}

effect_stats effect_get_stats(const effect *fx)
{
  return fx->stats;
}

void effect_free(effect *fx)
{
  free(fx);
}
