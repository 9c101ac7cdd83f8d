/*
  The audio path: parameters that glide sample by sample, the model
  crossfade, dry/wet mix and bypass.

    x   = in * input_gain
    y   = current(x), crossfaded into incoming(x) while a new model arrives
          (the dry pass-through x stands in for a missing model)
    out = d + (enabled * mix) * (y * output_gain - d)

  where d is the input delayed by the model's latency (resampling delays
  y), so that dry and wet meet in time and bypass keeps the latency the
  host compensates for; while models cross-fade, so do their delays.

  Audio is cut on a fixed grid of CARRY_GRID samples counted from
  activate(): the knobs reach the streams once per cell and model swaps
  complete at cell ends, so with steady controls the output is the same
  whatever the host's block sizes.
*/

#include "plugin.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Parameters */

static float port_value(const float *port, float lo, float hi, float fallback)
{
  if (!port || !isfinite(*port)) {
    return fallback;
  }
  return *port < lo ? lo : *port > hi ? hi : *port;
}

/** Sets a linear gain target from a dB port, computing the power only when
    the port moved. */
static void read_gain(carry_plugin *self, int index, carry_glide *gain)
{
  const float db = port_value(self->params[index], -24.0f, 24.0f,
                              self->last_gain_db[index]);
  if (db != self->last_gain_db[index]) {
    self->last_gain_db[index] = db;
    gain->target = powf(10.0f, db / 20.0f);
  }
}

void carry_read_params(carry_plugin *self)
{
  const float *const *p = self->params;
  read_gain(self, 0, &self->input_gain);
  read_gain(self, 1, &self->output_gain);
  self->mix.target = port_value(p[PORT_MIX - PORT_INPUT_GAIN], 0.0f, 1.0f,
                                self->mix.target);
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    self->knobs[k].target = port_value(p[PORT_KNOB + k - PORT_INPUT_GAIN],
                                       0.0f, 1.0f, self->knobs[k].target);
  }
  const float enabled = port_value(p[PORT_ENABLED - PORT_INPUT_GAIN], 0.0f,
                                   1.0f, self->enabled.target);
  self->enabled.target = enabled > 0.5f ? 1.0f : 0.0f;
  const float normalize =
    port_value(self->normalize, 0.0f, 1.0f, self->normalized.target);
  self->normalized.target = normalize > 0.5f ? 1.0f : 0.0f;
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) { // for save(), any thread
    uint32_t bits;
    memcpy(&bits, &self->knobs[k].target, sizeof(bits));
    atomic_store_explicit(&self->knob_bits[k], bits, memory_order_relaxed);
  }
}

void carry_snap_params(carry_plugin *self)
{
  carry_read_params(self);
  carry_glide *glides[] = {&self->input_gain, &self->output_gain, &self->mix,
                           &self->enabled,    &self->normalized,
                           &self->knobs[0],   &self->knobs[1],
                           &self->knobs[2]};
  for (size_t k = 0; k < sizeof(glides) / sizeof(glides[0]); ++k) {
    glides[k]->value = glides[k]->target;
  }
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    self->cell_knobs[k] = self->knobs[k].value;
  }
}

/** One-pole step, landing exactly on the target once close. */
static float glide(carry_glide *g, float coef)
{
  const float distance = g->target - g->value;
  const float next = g->value + distance * coef;
  // Once a step no longer moves the float, it would never land: land.
  g->value = next == g->value || fabsf(distance) < 1e-6f ? g->target : next;
  return g->value;
}

/** Straight-line step of at most `step`. */
static float slew(carry_glide *g, float step)
{
  const float distance = g->target - g->value;
  g->value = distance > step    ? g->value + step
             : distance < -step ? g->value - step
                                : g->target;
  return g->value;
}

/* ------------------------------------------------------------------------ */
/* One cell */

/** The ramps' values while nothing moves: every glide on its target and
    no fade running.  False (and `ramps` untouched) otherwise. */
static bool steady_ramps(const carry_plugin *self, float *ramps)
{
  const carry_glide *glides[] = {&self->input_gain, &self->output_gain,
                                 &self->mix,        &self->enabled,
                                 &self->normalized, &self->knobs[0],
                                 &self->knobs[1],   &self->knobs[2]};
  for (size_t k = 0; k < sizeof(glides) / sizeof(glides[0]); ++k) {
    if (glides[k]->value != glides[k]->target) {
      return false;
    }
  }
  if (self->incoming) {
    return false;
  }
  // What the gliding loop below would give, bit for bit: a glide or a slew
  // on its target returns the target.
  ramps[0] = self->input_gain.value;
  ramps[1] = self->output_gain.value;
  ramps[2] = self->mix.value * self->enabled.value;
  ramps[3] = self->normalized.value;
  ramps[4] = self->fade;
  return true;
}

/** Per-sample gains, mix, bypass and fade for `n` samples.  In the steady
    state the ramps are constants, filled over a whole cell once and left
    alone while they hold (most cells): the per-sample glides cost as much
    as a small model. */
static void fill_ramps(carry_plugin *self, uint32_t n)
{
  float steady[CARRY_STEADY_RAMPS];
  if (steady_ramps(self, steady)) {
    if (self->has_steady_ramps &&
        !memcmp(steady, self->steady_ramps, sizeof(steady))) {
      return;
    }
    for (uint32_t t = 0; t < CARRY_GRID; ++t) {
      self->ramp_in[t] = steady[0];
      self->ramp_out[t] = steady[1];
      self->ramp_mix[t] = steady[2];
      self->ramp_normalized[t] = steady[3];
      self->ramp_fade[t] = steady[4];
    }
    memcpy(self->steady_ramps, steady, sizeof(steady));
    self->has_steady_ramps = true;
    return;
  }
  self->has_steady_ramps = false;
  const float coef = self->glide_coef;
  for (uint32_t t = 0; t < n; ++t) {
    self->ramp_in[t] = glide(&self->input_gain, coef);
    self->ramp_out[t] = glide(&self->output_gain, coef);
    self->ramp_mix[t] = glide(&self->mix, coef) *
                        slew(&self->enabled, self->enable_step);
    self->ramp_normalized[t] = glide(&self->normalized, coef);
    for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
      glide(&self->knobs[k], coef);
    }
    if (self->incoming) {
      self->fade = fminf(self->fade + self->fade_step, 1.0f);
    }
    self->ramp_fade[t] = self->fade;
  }
}

/** Runs one engine over every channel's x into `out`, with its
    normalising gain as far as the toggle has glided (exactly 1 when
    off). */
static void run_engine(carry_plugin *self, carry_engine *engine,
                       float out[][CARRY_GRID], uint32_t n)
{
  float knobs[CARRY_MAX_KNOBS];
  carry_engine_knobs(engine, self->cell_knobs, knobs);
  carry_engine_process(engine, (const float(*)[CARRY_GRID])self->x, knobs,
                       out, n);
  const float gain = engine->normalize_gain - 1.0f;
  for (int c = 0; c < self->n_channels; ++c) {
    for (uint32_t t = 0; t < n; ++t) {
      const float amount = self->ramp_normalized[t];
      out[c][t] = amount > 0.0f ? out[c][t] * (1.0f + amount * gain)
                                : out[c][t];
    }
  }
}

/** The model's part of every channel: y = current(x) faded into
    incoming(x), or x where a model is missing. */
static void render(carry_plugin *self, uint32_t n)
{
  if (self->current) {
    run_engine(self, self->current, self->y, n);
  } else {
    memcpy(self->y, self->x, sizeof(self->y));
  }
  if (!self->incoming) {
    return;
  }
  run_engine(self, self->incoming, self->z, n);
  for (int c = 0; c < self->n_channels; ++c) {
    float *y = self->y[c];
    const float *z = self->z[c];
    for (uint32_t t = 0; t < n; ++t) {
      const float f = self->ramp_fade[t];
      y[t] = f >= 1.0f ? z[t] : y[t] + f * (z[t] - y[t]);
    }
  }
}

static uint32_t latency_of(const carry_engine *engine)
{
  return engine ? engine->latency : 0u;
}

/** Copies n samples out of a ring from position `from` (wrapping), in at
    most two pieces: no index arithmetic per sample. */
static void read_ring(const float *ring, uint64_t from, float *out,
                      uint32_t n)
{
  const uint32_t at = (uint32_t)(from & (CARRY_DRY_RING - 1));
  const uint32_t first = n < CARRY_DRY_RING - at ? n : CARRY_DRY_RING - at;
  memcpy(out, ring + at, first * sizeof(float));
  memcpy(out + first, ring, (n - first) * sizeof(float));
}

/** Stores the cell's inputs of channel c in its dry ring. */
static void remember_dry(carry_plugin *self, int c, const float *dry,
                         uint32_t n)
{
  float *ring = self->dry_ring[c];
  const uint32_t at = (uint32_t)(self->clock & (CARRY_DRY_RING - 1));
  const uint32_t first = n < CARRY_DRY_RING - at ? n : CARRY_DRY_RING - at;
  memcpy(ring + at, dry, first * sizeof(float));
  memcpy(ring, dry + first, (n - first) * sizeof(float));
}

/** The dry input of channel c as late as the models' output: delayed by
    the current model's latency, cross-faded into the incoming one's. */
static void delay_dry(carry_plugin *self, int c, uint32_t n)
{
  const float *ring = self->dry_ring[c];
  read_ring(ring, self->clock - latency_of(self->current), self->delayed, n);
  if (!self->incoming) {
    return;
  }
  float incoming[CARRY_GRID];
  read_ring(ring, self->clock - latency_of(self->incoming), incoming, n);
  for (uint32_t t = 0; t < n; ++t) {
    const float f = self->ramp_fade[t], d = self->delayed[t];
    self->delayed[t] = d + f * (incoming[t] - d);
  }
}

/** Channel c of a cell, from its copied input `dry[c]` and the model's
    output y[c]. */
static void finish_channel(carry_plugin *self, int c, uint32_t offset,
                           uint32_t n)
{
  remember_dry(self, c, self->dry[c], n);
  delay_dry(self, c, n);
  const float *d = self->delayed;
  const float *y = self->y[c];
  float *out = self->out[c] + offset;
  for (uint32_t t = 0; t < n; ++t) {
    const float w = self->ramp_mix[t];
    const float wet = y[t] * self->ramp_out[t];
    out[t] = w >= 1.0f ? wet : d[t] + w * (wet - d[t]);
  }
}

/** At a cell's end: a finished fade makes the incoming model current and
    starts the waiting one; the next cell's knobs are taken. */
static void end_cell(carry_plugin *self)
{
  if (self->incoming && self->fade >= 1.0f) {
    carry_retire(self, self->current);
    self->current = self->incoming;
    self->incoming = self->waiting;
    self->waiting = NULL;
    self->fade = 0.0f;
  }
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    self->cell_knobs[k] = self->knobs[k].value;
  }
}

static void process_cell(carry_plugin *self, uint32_t offset, uint32_t n)
{
  fill_ramps(self, n);
  // Every input first: a host may hand one channel's output the buffer of
  // another's input.
  for (int c = 0; c < self->n_channels; ++c) {
    memcpy(self->dry[c], self->in[c] + offset, n * sizeof(float));
    for (uint32_t t = 0; t < n; ++t) {
      self->x[c][t] = self->dry[c][t] * self->ramp_in[t];
    }
  }
  render(self, n);  // the channels in step: each weight read once for both
  for (int c = 0; c < self->n_channels; ++c) {
    finish_channel(self, c, offset, n);
  }
  self->clock += n;
  if (self->clock % CARRY_GRID == 0) {
    end_cell(self);
  }
}

/* ------------------------------------------------------------------------ */
/* A block */

/** Whether every input sample is finite: the exponent bits of each, ORed
    over the block where all ones (inf, NaN), branch-free so that it
    vectorises. */
static bool is_finite_input(const carry_plugin *self, uint32_t n)
{
  uint32_t is_bad = 0;
  for (int c = 0; c < self->n_channels; ++c) {
    const float *in = self->in[c];
    for (uint32_t t = 0; t < n; ++t) {
      uint32_t bits;
      memcpy(&bits, in + t, sizeof(bits));
      is_bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
  }
  return !is_bad;
}

void carry_reset_engines(carry_plugin *self)
{
  carry_engine *engines[] = {self->current, self->incoming, self->waiting};
  for (int k = 0; k < 3; ++k) {
    if (engines[k]) {
      carry_engine_reset(engines[k]);
    }
  }
}

/** The quality port: 0 exact, 1 fast; unconnected or nonsense keeps the
    quality in force. */
static carry_quality read_quality(const carry_plugin *self)
{
  const float *port = self->quality_port;
  if (!port || !(*port >= 0.0f && *port <= 1.0f)) {
    return self->quality;
  }
  return *port >= 0.5f ? CARRY_QUALITY_FAST : CARRY_QUALITY_EXACT;
}

void carry_apply_quality(carry_plugin *self)
{
  self->quality = read_quality(self);
  // Every cycle, not only when the port moves: an engine swapped in since
  // the last one was loaded at exact.  Each skips the work if it is set.
  carry_engine *engines[] = {self->current, self->incoming, self->waiting};
  for (int k = 0; k < 3; ++k) {
    if (engines[k]) {
      carry_engine_set_quality(engines[k], self->quality);
    }
  }
}

/** A NaN or infinity in the input: silence for this block, and every
    model back to its settled state, so that nothing of it stays (the dry
    delay lines hold silence for it too). */
static void refuse_block(carry_plugin *self, uint32_t n)
{
  carry_reset_engines(self);
  for (int c = 0; c < self->n_channels; ++c) {
    memset(self->out[c], 0, n * sizeof(float));
    for (uint32_t t = 0; t < n && t < CARRY_DRY_RING; ++t) {
      self->dry_ring[c][(self->clock + t) & (CARRY_DRY_RING - 1)] = 0.0f;
    }
  }
}

void carry_end_fades(carry_plugin *self)
{
  carry_engine *newest = self->waiting ? self->waiting : self->incoming;
  if (!newest) {
    return;
  }
  carry_retire(self, self->current);
  if (newest != self->incoming) {
    carry_retire(self, self->incoming);
  }
  self->current = newest;
  self->incoming = self->waiting = NULL;
  self->fade = 0.0f;
}

uint32_t carry_latency(const carry_plugin *self)
{
  const carry_engine *newest = self->waiting    ? self->waiting
                               : self->incoming ? self->incoming
                                                : self->current;
  return latency_of(newest);
}

void carry_process(carry_plugin *self, uint32_t n)
{
  const uint64_t fp_mode = carry_flush_denormals();
  if (!is_finite_input(self, n)) {
    refuse_block(self, n);
    self->clock += n;
    carry_restore_fp_mode(fp_mode);
    return;
  }
  for (uint32_t offset = 0; offset < n;) {
    const uint32_t to_edge = CARRY_GRID - (uint32_t)(self->clock % CARRY_GRID);
    const uint32_t count = n - offset < to_edge ? n - offset : to_edge;
    process_cell(self, offset, count);
    offset += count;
  }
  carry_restore_fp_mode(fp_mode);
}
