/*
  An audio file run through one processor per channel and written in the
  input's format: what `carry process` (a model's streams) and `carry
  reference` (an effect's instances) share.
*/

#ifndef CARRY_AUDIO_JOB_H
#define CARRY_AUDIO_JOB_H

#include "cli.h"

#include <sndfile.h>
#include <stdbool.h>
#include <stdint.h>

/** Processes `n` samples of one channel in place. */
typedef void (*audio_job_channel_fn)(void *context, int channel,
                                     float *samples, uint32_t n);

/** Processes `n` interleaved frames of every channel in place, for a
    processor that takes the channels together (a stereo plugin). */
typedef int (*audio_job_frames_fn)(void *context, float *frames,
                                   uint32_t n);

/** The files, buffers and figures of a run; zero it before use. */
typedef struct audio_job {
  const char *in_path;
  const char *out_path;
  SNDFILE *in;
  SNDFILE *out;
  SF_INFO in_info;
  SF_INFO out_info;
  int out_type;           ///< SF_FORMAT_WAV ...: --format, or 0: IN's
  int out_subtype;        ///< SF_FORMAT_PCM_16 ...: --bits, or 0: IN's
  cli_output output;
  bool counts_clipping;   ///< Integer output: libsndfile clips
  int n_channels;         ///< C
  uint32_t block;         ///< T: frames per read
  float *frames;          ///< (T, C) interleaved
  float *channel;         ///< (T) one channel, processed in place
  uint32_t latency;       ///< Frames the processing delays by: dropped
                          ///< from the start, and run on silence at the end
  uint32_t to_drop;       ///< Of the latency, not yet dropped
  sf_count_t tail;        ///< Frames of silence run after the input
                          ///< (--tail), added to the output
  sf_count_t n_frames;    ///< Written so far
  float peak;             ///< Of the output so far
  size_t n_clipped;       ///< Output samples beyond full scale
  double seconds_spent;   ///< In audio_job_run
} audio_job;

/** Opens the input (sets in_info and n_channels); reports and returns
    CLI_EXIT_FILE if it cannot be read. */
int audio_job_open_input(audio_job *job, const char *in_path);

/** Allocates the buffers for blocks of `block` frames. */
int audio_job_allocate(audio_job *job, uint32_t block);

/** Opens the output under a temporary name, in `out_type` and
    `out_subtype` where set (a combination libsndfile cannot write is an
    error), else in the input's format if libsndfile writes it, else WAV
    with the same sample type, else float WAV (with a warning). */
int audio_job_open_output(audio_job *job, const char *out_path);

/** Reads, processes every channel with `process` and writes, block by
    block, until the input ends or Ctrl-C; with a `latency`, the output
    starts that much later in the processing and is as long as the input
    (plus the `tail`, rendered from silence). */
int audio_job_run(audio_job *job, audio_job_channel_fn process,
                  void *context);

/** The same with a processor of whole frames; a non-zero return of
    `process` (an exit code, already reported) stops the run. */
int audio_job_run_frames(audio_job *job, audio_job_frames_fn process,
                         void *context);

/** Writes the `n_frames` processed frames in `frames`, less what is still
    to drop of the latency, and measures them: for a caller that drives
    the reading and processing itself (process_lockstep.c). */
int audio_job_write_block(audio_job *job, uint32_t n_frames);

/** Closes both files (the output's header is written now) and moves the
    output into place. */
int audio_job_finish(audio_job *job);

/** "N frames, C channels, S s in W s (Rx real time), peak P dBFS" and the
    clipped samples, for the closing report. */
void audio_job_describe(const audio_job *job, char *text, size_t size);

/** Closes and frees what is still open; a temporary output is removed. */
void audio_job_free(audio_job *job);

#endif /* CARRY_AUDIO_JOB_H */
