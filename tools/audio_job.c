/*
  The audio file side of `carry process` and `carry reference`.
*/

#include "audio_job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int audio_job_open_input(audio_job *job, const char *in_path)
{
  job->in_path = in_path;
  job->in = sf_open(in_path, SFM_READ, &job->in_info);
  if (!job->in) {
    return cli_error(CLI_EXIT_FILE, "cannot read audio file '%s': %s",
                     in_path, sf_strerror(NULL));
  }
  job->n_channels = job->in_info.channels;
  return CLI_EXIT_OK;
}

int audio_job_allocate(audio_job *job, uint32_t block)
{
  job->block = block;
  job->frames = malloc((size_t)block * (size_t)job->n_channels *
                       sizeof(float));
  job->channel = malloc((size_t)block * sizeof(float));
  if (!job->frames || !job->channel) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d channels of "
                     "%u frames", job->n_channels, block);
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The output format */

static const char *format_name(int format)
{
  SF_FORMAT_INFO info = {format, NULL, NULL};
  if (sf_command(NULL, SFC_GET_FORMAT_INFO, &info, sizeof(info)) != 0 ||
      !info.name) {
    return "unknown";
  }
  return info.name;
}

static bool is_float_subtype(int format)
{
  const int subtype = format & SF_FORMAT_SUBMASK;
  return subtype == SF_FORMAT_FLOAT || subtype == SF_FORMAT_DOUBLE ||
         subtype == SF_FORMAT_VORBIS || subtype == SF_FORMAT_OPUS ||
         subtype == SF_FORMAT_MPEG_LAYER_I ||
         subtype == SF_FORMAT_MPEG_LAYER_II ||
         subtype == SF_FORMAT_MPEG_LAYER_III;
}

/** --format and --bits over the input's type and sample type.  Ogg
    without --bits is Vorbis; a lossy input's samples become float in
    another format.  What libsndfile cannot write is an error. */
static int choose_requested_format(audio_job *job)
{
  const int in_type = job->in_info.format & SF_FORMAT_TYPEMASK;
  const int in_subtype = job->in_info.format & SF_FORMAT_SUBMASK;
  const int type = job->out_type ? job->out_type : in_type;
  int subtype = job->out_subtype ? job->out_subtype : in_subtype;
  if (!job->out_subtype && type == SF_FORMAT_OGG) {
    subtype = SF_FORMAT_VORBIS;
  } else if (!job->out_subtype && in_type == SF_FORMAT_OGG) {
    subtype = SF_FORMAT_FLOAT;
  }
  job->out_info.format = type | subtype;
  if (!sf_format_check(&job->out_info)) {
    return cli_error(CLI_EXIT_USAGE, "cannot write '%s' as %s with %s "
                     "samples: libsndfile does not write that combination%s",
                     job->out_path, format_name(type), format_name(subtype),
                     job->out_subtype ? "" : " (choose one with --bits)");
  }
  return CLI_EXIT_OK;
}

static int choose_output_format(audio_job *job)
{
  const int format = job->in_info.format;
  SF_INFO *out = &job->out_info;
  memset(out, 0, sizeof(*out));
  out->samplerate = job->in_info.samplerate;
  out->channels = job->in_info.channels;
  out->format = format;
  if (job->out_type || job->out_subtype) {
    return choose_requested_format(job);
  }
  if (sf_format_check(out)) {
    return CLI_EXIT_OK;
  }
  const int subtype = format & SF_FORMAT_SUBMASK;
  out->format = SF_FORMAT_WAV | subtype;
  if (sf_format_check(out)) {
    cli_warn("libsndfile cannot write %s files; writing WAV (%s) instead",
             format_name(format & SF_FORMAT_TYPEMASK), format_name(subtype));
    return CLI_EXIT_OK;
  }
  out->format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  cli_warn("libsndfile cannot write %s (%s) files; writing 32-bit float WAV "
           "instead", format_name(format & SF_FORMAT_TYPEMASK),
           format_name(subtype));
  return CLI_EXIT_OK;
}

int audio_job_open_output(audio_job *job, const char *out_path)
{
  job->out_path = out_path;
  int status = choose_output_format(job);
  if (status == CLI_EXIT_OK) {
    status = cli_output_open(&job->output, out_path);
  }
  if (status != CLI_EXIT_OK) {
    return status;
  }
  job->out = sf_open(job->output.temp_path, SFM_WRITE, &job->out_info);
  if (!job->out) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", out_path,
                     sf_strerror(NULL));
  }
  /* No PEAK chunk: it holds a time stamp, and equal audio should give
     equal files. */
  sf_command(job->out, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
  job->counts_clipping = !is_float_subtype(job->out_info.format);
  if (job->counts_clipping) {
    sf_command(job->out, SFC_SET_CLIPPING, NULL, SF_TRUE);
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Processing */

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/** A channel processor seen as a frames processor. */
typedef struct channel_adapter {
  audio_job *job;
  audio_job_channel_fn process;
  void *context;
} channel_adapter;

/** Each channel apart, in place (audio_job_frames_fn). */
static int process_channels(void *context, float *frames, uint32_t n_frames)
{
  const channel_adapter *adapter = context;
  audio_job *job = adapter->job;
  const size_t n_channels = (size_t)job->n_channels;
  for (int c = 0; c < job->n_channels; ++c) {
    for (uint32_t t = 0; t < n_frames; ++t) {
      job->channel[t] = frames[t * n_channels + (size_t)c];
    }
    adapter->process(adapter->context, c, job->channel, n_frames);
    for (uint32_t t = 0; t < n_frames; ++t) {
      frames[t * n_channels + (size_t)c] = job->channel[t];
    }
  }
  return CLI_EXIT_OK;
}

static void measure(const float *frames, size_t n_values, audio_job *job)
{
  for (size_t k = 0; k < n_values; ++k) {
    const float magnitude = fabsf(frames[k]);
    job->peak = magnitude > job->peak ? magnitude : job->peak;
    job->n_clipped += magnitude > 1.0f;
  }
}

/** Processes the `n_frames` in `frames` and writes them, less what is
    still to drop of the latency. */
static int process_block(audio_job *job, uint32_t n_frames,
                         audio_job_frames_fn process, void *context)
{
  const int processed = process(context, job->frames, n_frames);
  if (processed != CLI_EXIT_OK) {
    return processed;
  }
  return audio_job_write_block(job, n_frames);
}

int audio_job_write_block(audio_job *job, uint32_t n_frames)
{
  const uint32_t drop = job->to_drop < n_frames ? job->to_drop : n_frames;
  job->to_drop -= drop;
  const float *frames = job->frames + (size_t)drop * (size_t)job->n_channels;
  const sf_count_t n_kept = n_frames - drop;
  measure(frames, (size_t)n_kept * (size_t)job->n_channels, job);
  if (sf_writef_float(job->out, frames, n_kept) != n_kept) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", job->out_path,
                     sf_strerror(job->out));
  }
  job->n_frames += n_kept;
  return CLI_EXIT_OK;
}

/** The last `latency` frames of output, and the tail, come from silence
    after the end. */
static int flush_latency(audio_job *job, audio_job_frames_fn process,
                         void *context)
{
  for (sf_count_t left = job->latency + job->tail; left > 0;) {
    const uint32_t n = left < job->block ? (uint32_t)left : job->block;
    memset(job->frames, 0, (size_t)n * (size_t)job->n_channels *
                           sizeof(float));
    const int status = process_block(job, n, process, context);
    if (status != CLI_EXIT_OK) {
      return status;
    }
    left -= n;
  }
  return CLI_EXIT_OK;
}

int audio_job_run_frames(audio_job *job, audio_job_frames_fn process,
                         void *context)
{
  const double start = now_seconds();
  job->to_drop = job->latency;
  for (;;) {
    if (cli_interrupted()) {
      return cli_error(CLI_EXIT_FAILED, "interrupted; '%s' not written",
                       job->out_path);
    }
    const sf_count_t n_read = sf_readf_float(job->in, job->frames,
                                             job->block);
    if (n_read <= 0) {
      break;
    }
    const int status = process_block(job, (uint32_t)n_read, process,
                                     context);
    if (status != CLI_EXIT_OK) {
      return status;
    }
  }
  if (sf_error(job->in) != SF_ERR_NO_ERROR) {
    return cli_error(CLI_EXIT_FILE, "cannot read '%s': %s", job->in_path,
                     sf_strerror(job->in));
  }
  const int status = flush_latency(job, process, context);
  job->seconds_spent = now_seconds() - start;
  return status;
}

int audio_job_run(audio_job *job, audio_job_channel_fn process,
                  void *context)
{
  channel_adapter adapter = {job, process, context};
  return audio_job_run_frames(job, process_channels, &adapter);
}

int audio_job_finish(audio_job *job)
{
  const int out_error = sf_close(job->out);
  job->out = NULL;
  sf_close(job->in);
  job->in = NULL;
  if (out_error != SF_ERR_NO_ERROR) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", job->out_path,
                     sf_error_number(out_error));
  }
  return cli_output_commit(&job->output);
}

void audio_job_describe(const audio_job *job, char *text, size_t size)
{
  const double seconds = (double)job->n_frames / job->in_info.samplerate;
  const double speed = job->seconds_spent > 0.0
                         ? seconds / job->seconds_spent : 0.0;
  char peak[32] = "-inf";
  if (job->peak > 0.0f) {
    snprintf(peak, sizeof(peak), "%.1f", 20.0 * log10(job->peak));
  }
  char clipped[64] = "";
  if (job->n_clipped && job->counts_clipping) {
    snprintf(clipped, sizeof(clipped), ", %zu samples clipped",
             job->n_clipped);
  }
  snprintf(text, size, "%lld frames, %d channel%s, %.3f s in %.3f s (%.1fx "
           "real time), peak %s dBFS%s", (long long)job->n_frames,
           job->n_channels, job->n_channels == 1 ? "" : "s", seconds,
           job->seconds_spent, speed, peak, clipped);
}

void audio_job_free(audio_job *job)
{
  if (job->out) {
    sf_close(job->out);
    job->out = NULL;
  }
  if (job->in) {
    sf_close(job->in);
    job->in = NULL;
  }
  cli_output_discard(&job->output);
  free(job->frames);
  free(job->channel);
  job->frames = NULL;
  job->channel = NULL;
}
