/*
  Export: the trained weights as a carry_model (recurrent layers, then a
  linear dense layer of one output), with the knobs in Carry's spec and the
  training settings and validation figures in the "metadata" object.
*/

#include "train_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The shape */

static void describe_knobs(const carry_train_data *data,
                           carry_model_spec *spec)
{
  for (int k = 0; k < data->n_knobs; ++k) {
    carry_knob *knob = &spec->knobs[k];
    snprintf(knob->name, sizeof(knob->name), "%s", data->knob_names[k]);
    train_data_knob_range(data, k, &knob->min, &knob->max);
    knob->value = 0.5f * (knob->min + knob->max);
  }
}

static void describe(const carry_trainer *t, const char *name,
                     carry_model_spec *spec)
{
  const carry_train_arch *arch = &t->settings.arch;
  carry_model_spec_init(spec);
  spec->n_inputs = 1 + t->data->n_knobs;
  spec->n_layers = arch->n_layers + 1;
  for (int l = 0; l < arch->n_layers; ++l) {
    spec->layers[l].type = arch->type;
    spec->layers[l].n_units = arch->n_units;
  }
  spec->layers[arch->n_layers].type = CARRY_LAYER_DENSE;
  spec->layers[arch->n_layers].n_units = 1;
  spec->layers[arch->n_layers].activation = CARRY_ACT_LINEAR;
  spec->has_skip = arch->has_skip;
  spec->sample_rate = t->data->sample_rate;
  snprintf(spec->name, sizeof(spec->name), "%s", name ? name : "");
  describe_knobs(t->data, spec);
}

/* ------------------------------------------------------------------------ */
/* The weights */

/** The array in `params` at the place `view` has in the trainer's own. */
static const float *at(const carry_trainer *t, const float *params,
                       const float *view)
{
  return params + (view - t->net->params);
}

static void copy(float *to, const float *from, size_t n)
{
  memcpy(to, from, n * sizeof(float));
}

static void copy_layer(const carry_trainer *t, const float *params, int l,
                       carry_model *model)
{
  const train_layer *layer = &t->net->layers[l];
  const carry_layer_weights w = carry_model_layer(model, l);
  const size_t I = (size_t)w.n_in, H = (size_t)w.n_units;
  const size_t G = (size_t)w.n_rows;
  copy(w.kernel, at(t, params, layer->kernel), I * G);
  copy(w.recurrent, at(t, params, layer->recurrent), H * G);
  copy(w.bias, at(t, params, layer->bias), G);
  if (w.recurrent_bias) {
    copy(w.recurrent_bias, at(t, params, layer->recurrent_bias), G);
  }
}

static void copy_weights(const carry_trainer *t, const float *params,
                         carry_model *model)
{
  const int L = t->settings.arch.n_layers;
  for (int l = 0; l < L; ++l) {
    copy_layer(t, params, l, model);
  }
  const carry_layer_weights head = carry_model_layer(model, L);
  copy(head.kernel, at(t, params, t->net->head.kernel),
       (size_t)t->net->head.n_in);
  copy(head.bias, at(t, params, t->net->head.bias), 1);
}

/* ------------------------------------------------------------------------ */
/* The metadata */

static const char *stop_name(carry_train_stop stop)
{
  switch (stop) {
  case CARRY_TRAIN_RUNNING: return "running";
  case CARRY_TRAIN_EPOCHS_DONE: return "epochs";
  case CARRY_TRAIN_EARLY_STOP: return "early stop";
  case CARRY_TRAIN_TIME_UP: return "time limit";
  case CARRY_TRAIN_INTERRUPTED: return "interrupted";
  }
  return "";
}

static json_t *pair_json(const carry_train_data *data, const train_pair *p)
{
  json_t *knobs = json_object();
  for (int k = 0; k < data->n_knobs; ++k) {
    json_object_set_new(knobs, data->knob_names[k],
                        json_real((double)p->knobs[k]));
  }
  return json_pack("{s:s?, s:s?, s:I, s:o, s:b}", "dry", p->dry_name,
                   "target", p->target_name, "samples", (json_int_t)p->n,
                   "knobs", knobs, "validation", p->is_validation);
}

static json_t *data_json(const carry_train_data *data)
{
  json_t *pairs = json_array();
  for (int p = 0; p < data->n_pairs; ++p) {
    json_array_append_new(pairs, pair_json(data, &data->pairs[p]));
  }
  return pairs;
}

static json_t *schedule_json(const carry_train_settings *s)
{
  return json_pack("{s:s, s:f, s:i, s:f}", "type", "plateau", "factor",
                   s->lr_factor, "patience", s->lr_patience, "min",
                   s->lr_min);
}

/** The seed as a JSON integer when it fits one, else as text. */
static json_t *seed_json(uint64_t seed)
{
  char text[32];
  if (seed <= (uint64_t)INT64_MAX) {
    return json_integer((json_int_t)seed);
  }
  snprintf(text, sizeof(text), "%llu", (unsigned long long)seed);
  return json_string(text);
}

static bool has_validation_pairs(const carry_train_data *data)
{
  for (int p = 0; p < data->n_pairs; ++p) {
    if (data->pairs[p].is_validation) {
      return true;
    }
  }
  return false;
}

static json_t *settings_json(const carry_trainer *t)
{
  const carry_train_settings *s = &t->settings;
  char arch[32];
  carry_train_format_arch(&s->arch, arch, sizeof(arch));
  json_t *o = json_object();
  json_object_set_new(o, "arch", json_string(arch));
  json_object_set_new(o, "skip", json_boolean(s->arch.has_skip));
  json_object_set_new(o, "seed", seed_json(s->seed));
  json_object_set_new(o, "learning_rate", json_real(s->learning_rate));
  json_object_set_new(o, "lr_schedule", schedule_json(s));
  json_object_set_new(o, "clip_norm", json_real(s->clip_norm));
  json_object_set_new(o, "segment_samples", json_integer(s->segment_samples));
  json_object_set_new(o, "warmup_samples", json_integer(s->warmup_samples));
  json_object_set_new(o, "tbptt_samples", json_integer(s->tbptt_samples));
  json_object_set_new(o, "batch_size", json_integer(s->batch_size));
  json_object_set_new(o, "loss", json_string("esr_preemphasis_0.85+dc"));
  json_object_set_new(o, "validation_fraction",
                      has_validation_pairs(t->data)
                        ? json_null() : json_real(s->validation_fraction));
  json_object_set_new(o, "max_epochs", json_integer(s->max_epochs));
  json_object_set_new(o, "patience", json_integer(s->patience));
  json_object_set_new(o, "openblas_threads", json_integer(t->n_threads));
  json_object_set_new(o, "openblas_kernels",
                      json_string(carry_train_blas_kernels()));
  return o;
}

static json_t *run_json(const carry_trainer *t)
{
  const train_position *p = &t->pos;
  return json_pack("{s:i, s:i, s:I, s:f, s:f, s:s}", "epochs", p->epoch,
                   "best_epoch", p->best_epoch, "updates",
                   (json_int_t)p->n_updates, "seconds", p->seconds,
                   "final_learning_rate", p->lr, "stopped",
                   stop_name(t->stop));
}

static json_t *validation_json(const carry_trainer *t, bool best)
{
  const train_position *p = &t->pos;
  return json_pack("{s:f, s:f, s:f, s:f, s:i}", "esr",
                   best ? p->best_val_esr : p->val_esr, "esr_preemphasis",
                   best ? p->best_val_esr_pre : p->val_esr_pre, "loss",
                   best ? p->best_val_loss : p->val_loss, "initial_loss",
                   p->initial_val_loss, "epoch",
                   best ? p->best_epoch : p->epoch);
}

/** The metadata object as text to free(), or NULL without memory. */
static char *metadata_text(const carry_trainer *t, bool best)
{
  json_t *training = settings_json(t);
  if (training) {
    json_object_set_new(training, "run", run_json(t));
    json_object_set_new(training, "data", data_json(t->data));
  }
  json_t *meta = json_pack(
    "{s:s, s:f, s:o, s:o?}", "trainer", "carry train", "esr",
    best ? t->pos.best_val_esr : t->pos.val_esr, "validation",
    validation_json(t, best), "training", training);
  char *text = meta ? json_dumps(meta, JSON_COMPACT | JSON_REAL_PRECISION(9))
                    : NULL;
  json_decref(meta);
  return text;
}

/* ------------------------------------------------------------------------ */
/* The model */

static carry_status finish(const carry_trainer *t, bool best,
                           carry_model *model, carry_error *err)
{
  char *metadata = metadata_text(t, best);
  if (!metadata) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for the "
                      "model's metadata");
  }
  carry_status st = carry_model_set_metadata(model, metadata, err);
  free(metadata);
  return st ? st : carry_model_prepare(model, err);
}

carry_model *carry_trainer_export(const carry_trainer *t, const char *name,
                                  bool best, carry_error *err)
{
  carry_model_spec spec;
  describe(t, name, &spec);
  carry_model *model = carry_model_create(&spec, err);
  if (!model) {
    return NULL;
  }
  copy_weights(t, best ? t->best : t->net->params, model);
  if (finish(t, best, model, err)) {
    carry_model_free(model);
    return NULL;
  }
  return model;
}
