/*
  Signals for `carry check`: audio files in and out (libsndfile) and the
  built-in stimuli.
*/

#include "check.h"
#include "cli.h"
#include "guitar.h"

#include <sndfile.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef M_PI
#  define M_PI 3.14159265358979323846
#endif

bool check_signal_alloc(check_signal *signal, int n_channels,
                        size_t n_frames)
{
  memset(signal, 0, sizeof(*signal));
  if (n_channels < 1 || n_channels > CHECK_MAX_CHANNELS) {
    return false;
  }
  signal->n_channels = n_channels;
  signal->n_frames = n_frames;
  for (int c = 0; c < n_channels; ++c) {
    signal->channels[c] = calloc(n_frames ? n_frames : 1, sizeof(float));
    if (!signal->channels[c]) {
      check_signal_free(signal);
      return false;
    }
  }
  return true;
}

void check_signal_free(check_signal *signal)
{
  for (int c = 0; c < CHECK_MAX_CHANNELS; ++c) {
    free(signal->channels[c]);
  }
  memset(signal, 0, sizeof(*signal));
}

/* ------------------------------------------------------------------------ */
/* Files */

static bool deinterleave(SNDFILE *file, check_signal *signal)
{
  const int n_channels = signal->n_channels;
  float frames[1024 * CHECK_MAX_CHANNELS];  // (1024, C) interleaved
  size_t done = 0;
  while (done < signal->n_frames) {
    const sf_count_t n = sf_readf_float(file, frames, 1024);
    if (n <= 0) {
      return false;
    }
    for (sf_count_t t = 0; t < n && done + (size_t)t < signal->n_frames;
         ++t) {
      for (int c = 0; c < n_channels; ++c) {
        signal->channels[c][done + (size_t)t] = frames[t * n_channels + c];
      }
    }
    done += (size_t)n;
  }
  return true;
}

bool check_signal_read(const char *path, check_signal *signal, double *rate,
                       char *message, size_t size)
{
  SF_INFO info = {0};
  SNDFILE *file = sf_open(path, SFM_READ, &info);
  if (!file) {
    snprintf(message, size, "%s: %s", path, sf_strerror(NULL));
    return false;
  }
  bool is_read = false;
  if (info.channels > CHECK_MAX_CHANNELS) {
    snprintf(message, size, "%s: %d channels (at most %d)", path,
             info.channels, CHECK_MAX_CHANNELS);
  } else if (!check_signal_alloc(signal, info.channels,
                                 (size_t)info.frames)) {
    snprintf(message, size, "%s: out of memory", path);
  } else if (!(is_read = deinterleave(file, signal))) {
    snprintf(message, size, "%s: cannot read the audio", path);
    check_signal_free(signal);
  }
  *rate = info.samplerate;
  sf_close(file);
  return is_read;
}

static bool write_frames(SNDFILE *file, const check_signal *signal)
{
  float frames[1024 * CHECK_MAX_CHANNELS];  // (1024, C) interleaved
  for (size_t from = 0; from < signal->n_frames; from += 1024) {
    const size_t n = signal->n_frames - from < 1024 ? signal->n_frames - from
                                                    : 1024;
    for (size_t t = 0; t < n; ++t) {
      for (int c = 0; c < signal->n_channels; ++c) {
        frames[t * (size_t)signal->n_channels + (size_t)c] =
          signal->channels[c][from + t];
      }
    }
    if (sf_writef_float(file, frames, (sf_count_t)n) != (sf_count_t)n) {
      return false;
    }
  }
  return true;
}

/** Makes the directories above `path` that are missing, as --record writes
    a new suite's expected files into a directory that may not exist yet. */
static void make_parents(const char *path)
{
  char parent[4096];
  snprintf(parent, sizeof(parent), "%s", path);
  for (char *slash = strchr(parent + 1, '/'); slash;
       slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    mkdir(parent, 0777);  // an existing one is fine; cli_output_open reports
    *slash = '/';
  }
}

bool check_signal_write(const char *path, const check_signal *signal,
                        double rate, char *message, size_t size)
{
  cli_output output = {0};
  make_parents(path);
  if (cli_output_open(&output, path) != CLI_EXIT_OK) {
    snprintf(message, size, "%s: cannot create the file", path);
    return false;
  }
  SF_INFO info = {.samplerate = (int)rate, .channels = signal->n_channels,
                  .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
  SNDFILE *file = sf_open(output.temp_path, SFM_WRITE, &info);
  bool is_written = file && write_frames(file, signal);
  if (file) {
    is_written = !sf_close(file) && is_written;
  }
  is_written = is_written && cli_output_commit(&output) == CLI_EXIT_OK;
  if (!is_written) {
    snprintf(message, size, "%s: cannot write: %s", path, sf_strerror(NULL));
  }
  cli_output_discard(&output);
  return is_written;
}

/* ------------------------------------------------------------------------ */
/* Stimuli, one channel each */

/** xorshift64*: the same noise on every machine for a seed. */
static double uniform(uint64_t *state)
{
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  const uint64_t bits = (*state * 0x2545F4914F6CDD1Dull) >> 11;
  return (double)bits / 9007199254740992.0 * 2.0 - 1.0;  // [-1, 1)
}

static void make_noise(float *x, size_t n, uint64_t seed)
{
  uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ull;
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)uniform(&state);
  }
}

static void make_sine(float *x, size_t n, double frequency, double rate)
{
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)sin(2.0 * M_PI * frequency * (double)t / rate);
  }
}

/** Scales `x` so that its peak is at `level_db` dBFS. */
static void set_peak(float *x, size_t n, double level_db)
{
  float peak = 0.0f;
  for (size_t t = 0; t < n; ++t) {
    peak = fabsf(x[t]) > peak ? fabsf(x[t]) : peak;
  }
  const double gain = peak > 0.0f ? pow(10.0, level_db / 20.0) / peak : 0.0;
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)(x[t] * gain);
  }
}

static bool render_stimulus(const check_stimulus *stimulus, double rate,
                            float *x, size_t n)
{
  const char *kind = stimulus->kind;
  if (!strcmp(kind, "impulse")) {
    x[0] = 1.0f;
  } else if (!strcmp(kind, "sine")) {
    make_sine(x, n, stimulus->frequency, rate);
  } else if (!strcmp(kind, "sweep")) {
    guitar_add_sweep(x, n, rate, 20.0, fmin(20000.0, 0.45 * rate), 1.0);
  } else if (!strcmp(kind, "noise")) {
    make_noise(x, n, stimulus->seed);
  } else if (!guitar_render(x, n, rate, stimulus->seed)) {
    return false;
  }
  set_peak(x, n, stimulus->level_db);
  return true;
}

static bool read_input(const check_case *test, check_signal *input,
                       char *message, size_t size)
{
  double rate = 0.0;
  if (!check_signal_read(test->input_file, input, &rate, message, size)) {
    return false;
  }
  if (rate != test->rate) {
    snprintf(message, size, "%s: %g Hz, but the case runs at %g Hz (set "
             "\"rate\")", test->input_file, rate, test->rate);
    check_signal_free(input);
    return false;
  }
  return true;
}

bool check_input_make(const check_case *test, check_signal *input,
                      char *message, size_t size)
{
  if (test->input_file) {
    return read_input(test, input, message, size);
  }
  const size_t n = (size_t)(test->stimulus.seconds * test->rate + 0.5);
  if (!check_signal_alloc(input, 1, n ? n : 1) ||
      !render_stimulus(&test->stimulus, test->rate, input->channels[0],
                       input->n_frames)) {
    check_signal_free(input);
    snprintf(message, size, "out of memory for the stimulus");
    return false;
  }
  return true;
}
