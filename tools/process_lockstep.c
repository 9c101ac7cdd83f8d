/*
  carry process on a batch, in lockstep: a worker runs the channels of
  several files as the lanes of one carry_batch, so that the model's
  recurrent step is a matrix-matrix product, and gives a lane to the next
  file's channel as soon as one ends (files differ in length).

  Each file's output is byte for byte what process_one_file() writes: the
  lanes start from the state a file's streams settle to (the same for every
  file of a model and knobs, so one settled stream serves them all), a
  lane's output is bit for bit its stream's (dsp/batch.c), and the frames
  are read and written in the same blocks.  The part of a block after a
  file's last input frame is silence, which is where the tail (--tail)
  starts, so it is run as the tail's first frames.
*/

#include "audio_job.h"
#include "batch.h"
#include "cli.h"
#include "process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/** Lanes of a worker's batch: 16, which run as one 16-lane vector in the
    products where the CPU has AVX-512 (measured faster per stream than 8,
    README, "carry bench"), else as two halves of 8. */
#define LOCKSTEP_LANES 16

/** One file in the lanes. */
typedef struct lockstep_file {
  const batch_item *item;
  audio_job audio;
  carry_rate_stream *stream;     ///< What a one-file run would make, for
                                 ///< the check and the report
  int lanes[CARRY_MAX_LANES];    ///< (C) the lane of each channel
  bool is_at_end;                ///< The input is read to its end
  sf_count_t tail_left;          ///< Frames of silence still to run
  double start;                  ///< Monotonic seconds
} lockstep_file;

/** A worker's lanes and the files in them. */
typedef struct lockstep_group {
  const process_model *prepared;
  const process_args *args;
  const process_feed *feed;
  atomic_uint_least64_t *meter;
  carry_stream *settled;         ///< The state every file starts from
  carry_batch *batch;
  uint32_t block;                ///< T: frames per step
  float *in[CARRY_MAX_LANES];    ///< (T) per lane
  float *out[CARRY_MAX_LANES];   ///< (T) per lane
  lockstep_file *files[CARRY_MAX_LANES];  ///< In the lanes, or NULL
  bool is_lane_free[CARRY_MAX_LANES];
  int n_free;
} lockstep_group;

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const float *knobs_of(const lockstep_group *g)
{
  const bool has_knobs =
    carry_model_get_spec(g->prepared->model)->n_inputs > 1;
  return has_knobs ? g->prepared->knobs : NULL;
}

bool process_lockstep_fits(const process_model *prepared,
                           const process_args *args)
{
  (void)args;
  return !prepared->plugin && prepared->model;
}

/* ------------------------------------------------------------------------ */
/* Files */

static void free_file(lockstep_file *f)
{
  if (f) {
    carry_rate_stream_free(f->stream);
    audio_job_free(&f->audio);
    free(f);
  }
}

/** Whether libsndfile's encoding of the output could depend on how its
    frames are cut into writes, which the lanes do not keep for the tail. */
static bool is_lossy(int format)
{
  const int subtype = format & SF_FORMAT_SUBMASK;
  return subtype == SF_FORMAT_VORBIS || subtype == SF_FORMAT_OPUS ||
         subtype == SF_FORMAT_MPEG_LAYER_I ||
         subtype == SF_FORMAT_MPEG_LAYER_II ||
         subtype == SF_FORMAT_MPEG_LAYER_III;
}

/** Whether the file's streams would be plain streams of the model (no
    resampling, no rate correction): only those run in lanes. */
static bool runs_plain(const lockstep_file *f, const lockstep_group *g)
{
  const carry_stream *core = carry_rate_stream_core(f->stream);
  return carry_rate_stream_mode(f->stream) != CARRY_RATE_RESAMPLE &&
         carry_rate_stream_latency(f->stream) == 0 &&
         carry_stream_rate_ratio(core) == 1.0 &&
         f->audio.n_channels <= carry_batch_n_lanes(g->batch);
}

/** Opens `item` as process_one_file() would, as far as choosing the path;
    returns the exit code, or -1 when the file must take the one-file
    path (`*f` is then NULL). */
static int open_file(lockstep_group *g, const batch_item *item,
                     lockstep_file **out)
{
  *out = NULL;
  lockstep_file *f = calloc(1, sizeof(*f));
  if (!f) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for '%s'",
                     item->in_path);
  }
  f->item = item;
  f->start = now_seconds();
  int status = audio_job_open_input(&f->audio, item->in_path);
  if (status == CLI_EXIT_OK) {
    carry_error err = {CARRY_SUCCESS, ""};
    f->stream = carry_rate_stream_create(g->prepared->model,
                                         f->audio.in_info.samplerate,
                                         g->args->rate_mode, g->args->block,
                                         &err);
    if (!f->stream || !runs_plain(f, g)) {
      free_file(f);
      return -1; // the one-file path makes (or reports) it
    }
    process_audio_options(&f->audio, g->args);
    f->tail_left = f->audio.tail;
    status = batch_make_parents(item->out_path);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_allocate(&f->audio, g->block);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_output(&f->audio, item->out_path);
  }
  if (status == CLI_EXIT_OK && is_lossy(f->audio.out_info.format)) {
    free_file(f);
    return -1;
  }
  if (status != CLI_EXIT_OK) {
    free_file(f);
    return status;
  }
  *out = f;
  return CLI_EXIT_OK;
}

/** Gives the file's channels free lanes, each starting from the settled
    state. */
static void place_file(lockstep_group *g, lockstep_file *f)
{
  int c = 0;
  for (int lane = 0; c < f->audio.n_channels; ++lane) {
    if (g->is_lane_free[lane]) {
      g->is_lane_free[lane] = false;
      g->files[lane] = f;
      f->lanes[c++] = lane;
      carry_batch_reset_lane(g->batch, lane, g->settled, NULL);
    }
  }
  g->n_free -= f->audio.n_channels;
}

static void release_file(lockstep_group *g, lockstep_file *f)
{
  for (int c = 0; c < f->audio.n_channels; ++c) {
    g->is_lane_free[f->lanes[c]] = true;
    g->files[f->lanes[c]] = NULL;
  }
  g->n_free += f->audio.n_channels;
  free_file(f);
}

/** The file is written: closes it and reports it. */
static void finish_file(lockstep_group *g, lockstep_file *f)
{
  process_outcome outcome;
  memset(&outcome, 0, sizeof(outcome));
  f->audio.seconds_spent = now_seconds() - f->start;
  int status = audio_job_finish(&f->audio);
  if (status == CLI_EXIT_OK) {
    outcome.seconds_of_audio = (double)f->audio.n_frames /
                               f->audio.in_info.samplerate;
    outcome.seconds_spent = f->audio.seconds_spent;
    process_describe(g->prepared, g->args, &f->audio, f->stream,
                     outcome.summary, sizeof(outcome.summary));
  }
  const batch_item *item = f->item;
  release_file(g, f);
  g->feed->finish(g->feed->context, item, status, &outcome);
}

/** A failed or interrupted file: its output is not written. */
static void drop_file(lockstep_group *g, lockstep_file *f, int status)
{
  const batch_item *item = f->item;
  release_file(g, f);
  g->feed->finish(g->feed->context, item, status, NULL);
}

/* ------------------------------------------------------------------------ */
/* Steps */

/** Fills the file's frames for this step: the next input block, then (at
    the end of the input) silence for the tail.  Returns the frames to run
    and write (0: the file is done), or -1 on a read error (reported). */
static sf_count_t read_step(lockstep_group *g, lockstep_file *f,
                            sf_count_t *n_input)
{
  audio_job *a = &f->audio;
  *n_input = 0;
  if (!f->is_at_end) {
    const sf_count_t n_read = sf_readf_float(a->in, a->frames, g->block);
    *n_input = n_read > 0 ? n_read : 0;
  }
  if (*n_input == (sf_count_t)g->block) {
    return *n_input;
  }
  if (!f->is_at_end && sf_error(a->in) != SF_ERR_NO_ERROR) {
    cli_error(CLI_EXIT_FILE, "cannot read '%s': %s", a->in_path,
              sf_strerror(a->in));
    return -1;
  }
  f->is_at_end = true;
  const sf_count_t room = (sf_count_t)g->block - *n_input;
  const sf_count_t n_tail = f->tail_left < room ? f->tail_left : room;
  f->tail_left -= n_tail;
  memset(a->frames + (size_t)*n_input * (size_t)a->n_channels, 0,
         (size_t)n_tail * (size_t)a->n_channels * sizeof(float));
  return *n_input + n_tail;
}

/** Each channel of the frames to its lane's input, zero after `n`. */
static void spread(lockstep_group *g, const lockstep_file *f, sf_count_t n)
{
  const size_t C = (size_t)f->audio.n_channels;
  for (size_t c = 0; c < C; ++c) {
    float *in = g->in[f->lanes[c]];
    for (size_t t = 0; t < (size_t)n; ++t) {
      in[t] = f->audio.frames[t * C + c];
    }
    memset(in + n, 0, (g->block - (size_t)n) * sizeof(float));
  }
}

static void gather(lockstep_group *g, lockstep_file *f, sf_count_t n)
{
  const size_t C = (size_t)f->audio.n_channels;
  for (size_t c = 0; c < C; ++c) {
    const float *out = g->out[f->lanes[c]];
    for (size_t t = 0; t < (size_t)n; ++t) {
      f->audio.frames[t * C + c] = out[t];
    }
  }
}

/** Writes the file's frames of this step, as the one-file path writes
    them: the input part, then the tail part. */
static int write_step(lockstep_group *g, lockstep_file *f, sf_count_t n,
                      sf_count_t n_input)
{
  gather(g, f, n);
  audio_job *a = &f->audio;
  int status = n_input ? audio_job_write_block(a, (uint32_t)n_input)
                       : CLI_EXIT_OK;
  if (status == CLI_EXIT_OK && n > n_input) {
    const size_t C = (size_t)a->n_channels;
    memmove(a->frames, a->frames + (size_t)n_input * C,
            (size_t)(n - n_input) * C * sizeof(float));
    status = audio_job_write_block(a, (uint32_t)(n - n_input));
  }
  if (g->meter) {
    const double rate = a->in_info.samplerate;
    atomic_fetch_add_explicit(g->meter, (uint_least64_t)(1e6 * n / rate),
                              memory_order_relaxed);
  }
  return status;
}

/** One step of every file in the lanes. */
static void run_step(lockstep_group *g)
{
  lockstep_file *files[CARRY_MAX_LANES];
  sf_count_t n[CARRY_MAX_LANES], n_input[CARRY_MAX_LANES];
  const float *in[CARRY_MAX_LANES] = {NULL};
  int n_files = 0;
  for (int lane = 0; lane < carry_batch_n_lanes(g->batch); ++lane) {
    lockstep_file *f = g->files[lane];
    if (f && f->lanes[0] == lane) {
      files[n_files] = f;
      n[n_files] = read_step(g, f, &n_input[n_files]);
      if (n[n_files] > 0) {
        spread(g, f, n[n_files]);
      }
      ++n_files;
    }
  }
  for (int k = 0; k < n_files; ++k) {
    for (int c = 0; n[k] > 0 && c < files[k]->audio.n_channels; ++c) {
      in[files[k]->lanes[c]] = g->in[files[k]->lanes[c]];
    }
  }
  carry_batch_process(g->batch, in, knobs_of(g), g->out, g->block);
  for (int k = 0; k < n_files; ++k) {
    const int status = n[k] < 0 ? CLI_EXIT_FILE
                       : n[k] ? write_step(g, files[k], n[k], n_input[k])
                              : CLI_EXIT_OK;
    if (status != CLI_EXIT_OK) {
      drop_file(g, files[k], status);
    } else if (n[k] == 0 ||
               (files[k]->is_at_end && files[k]->tail_left == 0 &&
                n[k] < (sf_count_t)g->block)) {
      finish_file(g, files[k]);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The worker */

/** A file the lanes cannot run bit for bit, the one-file way. */
static void run_alone(lockstep_group *g, const batch_item *item)
{
  process_outcome outcome;
  memset(&outcome, 0, sizeof(outcome));
  int status = batch_make_parents(item->out_path);
  if (status == CLI_EXIT_OK) {
    status = process_one_file(g->prepared, g->args, item->in_path,
                              item->out_path, g->meter, &outcome);
  }
  g->feed->finish(g->feed->context, item, status, &outcome);
}

/** Lanes the group may still fill: up to the feed's share while some
    run, all of them when none does (so that a file of more channels than
    the share still gets in). */
static int lanes_open(const lockstep_group *g)
{
  const int used = LOCKSTEP_LANES - g->n_free;
  const int open = used == 0 ? g->n_free : g->feed->max_lanes - used;
  return open < g->n_free ? open : g->n_free;
}

/** Takes files while lanes are open; a file waits in `*waiting` until
    enough are. */
static void refill(lockstep_group *g, lockstep_file **waiting)
{
  while (lanes_open(g) > 0) {
    if (*waiting) {
      if ((*waiting)->audio.n_channels > lanes_open(g)) {
        return;
      }
      place_file(g, *waiting);
      *waiting = NULL;
      continue;
    }
    const batch_item *item = g->feed->take(g->feed->context);
    if (!item) {
      return;
    }
    lockstep_file *f = NULL;
    const int status = open_file(g, item, &f);
    if (status < 0) {
      run_alone(g, item);
    } else if (status != CLI_EXIT_OK) {
      g->feed->finish(g->feed->context, item, status, NULL);
    } else {
      *waiting = f;
    }
  }
}

static void stop_all(lockstep_group *g, lockstep_file *waiting)
{
  for (int lane = 0; lane < carry_batch_n_lanes(g->batch); ++lane) {
    lockstep_file *f = g->files[lane];
    if (f && f->lanes[0] == lane) {
      drop_file(g, f, cli_error(CLI_EXIT_FAILED, "interrupted; '%s' not "
                                "written", f->audio.out_path));
    }
  }
  if (waiting) {
    const batch_item *item = waiting->item;
    free_file(waiting);
    g->feed->finish(g->feed->context, item, CLI_EXIT_FAILED, NULL);
  }
}

static void run_group(lockstep_group *g)
{
  lockstep_file *waiting = NULL;
  for (;;) {
    refill(g, &waiting);
    if (cli_interrupted()) {
      stop_all(g, waiting);
      return;
    }
    if (g->n_free == carry_batch_n_lanes(g->batch) && !waiting) {
      return;
    }
    run_step(g);
  }
}

static int make_group(lockstep_group *g)
{
  carry_error err = {CARRY_SUCCESS, ""};
  g->settled = carry_stream_create(g->prepared->model, g->block, &err);
  if (g->settled) {
    g->batch = carry_batch_create(g->prepared->model, LOCKSTEP_LANES,
                                  CARRY_KERNELS_AUTO, &err);
  }
  if (!g->batch) {
    return cli_error(CLI_EXIT_FAILED, "cannot run the model in lockstep: %s",
                     err.message);
  }
  if (!g->args->is_unsettled) {
    carry_stream_settle(g->settled, knobs_of(g), CARRY_SETTLE_SAMPLES);
  }
  // after settling, as a one-file run switches its streams (process.c)
  carry_batch_set_quality(g->batch, g->args->quality);
  for (int lane = 0; lane < LOCKSTEP_LANES; ++lane) {
    g->in[lane] = malloc(g->block * sizeof(float));
    g->out[lane] = malloc(g->block * sizeof(float));
    if (!g->in[lane] || !g->out[lane]) {
      return cli_error(CLI_EXIT_FAILED, "out of memory for the lanes");
    }
    g->is_lane_free[lane] = true;
  }
  g->n_free = LOCKSTEP_LANES;
  return CLI_EXIT_OK;
}

static void free_group(lockstep_group *g)
{
  for (int lane = 0; lane < CARRY_MAX_LANES; ++lane) {
    free(g->in[lane]);
    free(g->out[lane]);
  }
  carry_batch_free(g->batch);
  carry_stream_free(g->settled);
}

int process_lockstep_work(const process_model *prepared,
                          const process_args *args, const process_feed *feed,
                          atomic_uint_least64_t *meter)
{
  lockstep_group g;
  memset(&g, 0, sizeof(g));
  g.prepared = prepared;
  g.args = args;
  g.feed = feed;
  g.meter = meter;
  g.block = args->block;
  const int status = make_group(&g);
  if (status == CLI_EXIT_OK) {
    run_group(&g);
  }
  free_group(&g);
  return status;
}
