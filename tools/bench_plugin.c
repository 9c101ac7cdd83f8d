/*
  carry bench --plugin: what the LV2 plugin's run() costs over the bare
  core (issue 8, goal 5: at most 5% at block 128).

  The mono plugin is timed against one bare stream, the stereo plugin
  against two, all running the same model file at 48 kHz in the same
  rounds, plugin and core in turn (the order swapping every round).  Only
  the time inside run() counts: the host's audio hook brackets each call,
  and each bare block is bracketed by the same clock reads, so that the
  clock's own cost falls on both alike.  The overhead is the median over
  the rounds of each round's ratio.
*/

#include "bench.h"
#include "cli.h"
#include "plugin_setup.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MONO_URI PLUGIN_SETUP_CARRY_PREFIX "carry"
#define STEREO_URI PLUGIN_SETUP_CARRY_PREFIX "carry-stereo"
#define MAX_CHANNELS 2
#define GOAL_PERCENT 5.0  ///< The most run() may cost over the bare core

typedef struct {
  const char *uri;
  const char *label;
  int n_channels;
  lv2_host_instance *instance;
  carry_stream *streams[MAX_CHANNELS];  ///< The bare core, one per channel
  double entered_ns;                    ///< When run() was entered
  double in_run_ns;                     ///< Inside run() this round
  double plugin_ns[BENCH_MAX_ROUNDS];   ///< Per frame
  double core_ns[BENCH_MAX_ROUNDS];     ///< Per frame, every channel
  double overhead[BENCH_MAX_ROUNDS];    ///< plugin / core - 1
} plugin_case;

typedef struct {
  lv2_host *host;
  carry_model *model;       ///< The bare streams' copy of the model
  char dir[64];             ///< Temporary directory of a saved model, or ""
  char path[PATH_MAX];      ///< The model file the plugin loads
  const char *model_label;
  plugin_case cases[2];
  float *in;                ///< (T) the input of every channel
  float *out[MAX_CHANNELS]; ///< (T) per channel
  size_t n;                 ///< T: frames per round
} plugin_bench;

/* ------------------------------------------------------------------------ */
/* Set-up */

/** The first --model (made absolute), or the standard LSTM-32 saved to a
    temporary file. */
static int choose_model(const bench_options *opt, plugin_bench *b)
{
  if (opt->n_files) {
    if (!realpath(opt->files[0], b->path)) {
      return cli_error(CLI_EXIT_MODEL, "%s: cannot find it", opt->files[0]);
    }
    b->model_label = opt->files[0];
    return CLI_EXIT_OK;
  }
  carry_error err;
  carry_model *model = bench_random_model(CARRY_LAYER_LSTM, 32, 1, &err);
  snprintf(b->dir, sizeof(b->dir), "/tmp/carry-bench-XXXXXX");
  if (!model || !mkdtemp(b->dir)) {
    carry_model_free(model);
    b->dir[0] = '\0';
    return cli_error(CLI_EXIT_FAILED, "cannot make the LSTM-32 model file");
  }
  snprintf(b->path, sizeof(b->path), "%s/lstm-32.json", b->dir);
  const carry_status status = carry_model_save(model, b->path, &err);
  carry_model_free(model);
  b->model_label = "LSTM-32 (standard, random weights)";
  return status ? cli_error(CLI_EXIT_FAILED, "%s", err.message)
                : CLI_EXIT_OK;
}

static void on_audio(void *data, bool is_entering)
{
  plugin_case *c = (plugin_case *)data;
  const double now = bench_now_ns();
  if (is_entering) {
    c->entered_ns = now;
  } else {
    c->in_run_ns += now - c->entered_ns;
  }
}

/** A plugin instance with the model loaded and settled, restarted. */
static int open_instance(const bench_options *opt, plugin_bench *b,
                         plugin_case *c)
{
  const lv2_host_config config = {.plugin_uri = c->uri,
                                   .sample_rate = BENCH_RATE,
                                   .max_block = (uint32_t)opt->block,
                                   .is_quiet = true};
  lv2_host_status status = lv2_host_instance_new(b->host, &config,
                                                 &c->instance);
  if (status) {
    return cli_error(CLI_EXIT_FAILED, "plugin %s (on LV2_PATH?): %s", c->uri,
                     lv2_host_strerror(status));
  }
  const plugin_setup setup = {c->uri, NULL, NULL, 0, b->path};
  size_t bad = 0;
  char message[512];
  if (plugin_setup_configure(c->instance, &setup, &bad) ||
      !plugin_setup_settle(c->instance, &setup, message, sizeof(message))) {
    return cli_error(CLI_EXIT_MODEL, "plugin %s cannot load %s", c->uri,
                     b->path);
  }
  lv2_host_set_audio_hook(c->instance, on_audio, c);
  return CLI_EXIT_OK;
}

/** The bare core: a stream per channel, settled as the plugin's are. */
static int open_streams(const bench_options *opt, plugin_bench *b,
                        plugin_case *c)
{
  for (int ch = 0; ch < c->n_channels; ++ch) {
    carry_error err;
    c->streams[ch] = carry_stream_create(b->model, (uint32_t)opt->block, &err);
    if (!c->streams[ch]) {
      return cli_error(CLI_EXIT_FAILED, "%s", err.message);
    }
    carry_stream_settle(c->streams[ch], NULL, CARRY_SETTLE_SAMPLES);
  }
  return CLI_EXIT_OK;
}

static int set_up(const bench_options *opt, plugin_bench *b)
{
  int code = choose_model(opt, b);
  carry_error err;
  if (!code && !(b->model = carry_model_load(b->path, &err))) {
    code = cli_error(CLI_EXIT_MODEL, "%s", err.message);
  }
  if (!code && !(b->host = lv2_host_new(NULL, NULL))) {
    code = cli_error(CLI_EXIT_FAILED, "cannot make an LV2 host");
  }
  b->cases[0] = (plugin_case){.uri = MONO_URI, .label = "mono",
                              .n_channels = 1};
  b->cases[1] = (plugin_case){.uri = STEREO_URI, .label = "stereo",
                              .n_channels = 2};
  for (int k = 0; k < 2 && !code; ++k) {
    code = open_instance(opt, b, &b->cases[k]);
    code = code ? code : open_streams(opt, b, &b->cases[k]);
  }
  b->n = (size_t)(opt->seconds * BENCH_RATE);
  b->in = malloc(b->n * sizeof(float));
  for (int ch = 0; ch < MAX_CHANNELS; ++ch) {
    b->out[ch] = malloc(b->n * sizeof(float));
  }
  if (!code && !(b->in && b->out[0] && b->out[1])) {
    code = cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  if (!code) {
    bench_make_input(b->in, b->n);
  }
  return code;
}

static void tear_down(plugin_bench *b)
{
  for (int k = 0; k < 2; ++k) {
    lv2_host_instance_free(b->cases[k].instance);
    for (int ch = 0; ch < MAX_CHANNELS; ++ch) {
      carry_stream_free(b->cases[k].streams[ch]);
    }
  }
  lv2_host_free(b->host);
  carry_model_free(b->model);
  if (b->dir[0]) {
    unlink(b->path);
    rmdir(b->dir);
  }
  free(b->in);
  for (int ch = 0; ch < MAX_CHANNELS; ++ch) {
    free(b->out[ch]);
  }
}

/* ------------------------------------------------------------------------ */
/* Timing */

/** ns per frame inside the plugin's run(), at `block` frames a call. */
static double time_plugin(plugin_bench *b, plugin_case *c, uint32_t block)
{
  const float *in[MAX_CHANNELS] = {b->in, b->in};
  c->in_run_ns = 0.0;
  lv2_host_process(c->instance, in, b->out, b->n, block);
  return c->in_run_ns / (double)b->n;
}

/** ns per frame of the bare streams, every channel, `block` frames a
    call, each block bracketed by clock reads as run() is. */
static double time_core(plugin_bench *b, plugin_case *c, uint32_t block)
{
  double total = 0.0;
  for (size_t t = 0; t < b->n; t += block) {
    const uint32_t n = b->n - t < block ? (uint32_t)(b->n - t) : block;
    const double start = bench_now_ns();
    for (int ch = 0; ch < c->n_channels; ++ch) {
      carry_stream_process(c->streams[ch], b->in + t, NULL, b->out[ch] + t,
                           n);
    }
    total += bench_now_ns() - start;
  }
  return total / (double)b->n;
}

static void run_rounds(const bench_options *opt, plugin_bench *b)
{
  const uint32_t block = (uint32_t)opt->block;
  for (int k = 0; k < 2; ++k) { // warm up
    time_plugin(b, &b->cases[k], block);
    time_core(b, &b->cases[k], block);
  }
  for (int r = 0; r < opt->n_rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      plugin_case *c = &b->cases[k];
      if (r % 2) {
        c->core_ns[r] = time_core(b, c, block);
        c->plugin_ns[r] = time_plugin(b, c, block);
      } else {
        c->plugin_ns[r] = time_plugin(b, c, block);
        c->core_ns[r] = time_core(b, c, block);
      }
      c->overhead[r] = c->plugin_ns[r] / c->core_ns[r] - 1.0;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Report */

static void print_table(const bench_options *opt, const plugin_bench *b)
{
  printf("plugin run() against the bare core (carry_stream_process, one "
         "stream per channel)\nmodel %s, block %d, %.3g s of 48 kHz audio "
         "per round, median of %d rounds,\nexact quality, %s kernels\n\n",
         b->model_label, opt->block, opt->seconds, opt->n_rounds,
         carry_kernels_name(carry_stream_kernels(b->cases[0].streams[0])));
  printf("%-8s %18s %18s %9s %6s\n", "plugin", "core ns/frame",
         "run() ns/frame", "overhead", "goal");
  for (int k = 0; k < 2; ++k) {
    const plugin_case *c = &b->cases[k];
    const double overhead = 100.0 * bench_median(c->overhead, opt->n_rounds);
    printf("%-8s %18.1f %18.1f %8.1f%% %5.0f%% %s\n", c->label,
           bench_median(c->core_ns, opt->n_rounds),
           bench_median(c->plugin_ns, opt->n_rounds), overhead, GOAL_PERCENT,
           overhead <= GOAL_PERCENT ? "met" : "MISSED");
  }
}

static void print_json(const bench_options *opt, const plugin_bench *b)
{
  printf("{\"model\": ");
  bench_print_json_string(b->model_label);
  printf(", \"block\": %d, \"seconds\": %g, \"rounds\": %d, "
         "\"plugins\": [", opt->block, opt->seconds, opt->n_rounds);
  for (int k = 0; k < 2; ++k) {
    const plugin_case *c = &b->cases[k];
    const double overhead = 100.0 * bench_median(c->overhead, opt->n_rounds);
    printf("%s\n  {\"plugin\": \"%s\", \"channels\": %d, "
           "\"core_ns_per_frame\": %.2f, \"run_ns_per_frame\": %.2f, "
           "\"overhead_percent\": %.2f, \"goal_percent\": %.0f, "
           "\"goal_met\": %s}",
           k ? "," : "", c->uri, c->n_channels,
           bench_median(c->core_ns, opt->n_rounds),
           bench_median(c->plugin_ns, opt->n_rounds), overhead, GOAL_PERCENT,
           overhead <= GOAL_PERCENT ? "true" : "false");
  }
  printf("\n]}\n");
}

int bench_plugin(const bench_options *opt)
{
  plugin_bench b;
  memset(&b, 0, sizeof(b));
  const int code = set_up(opt, &b);
  if (!code) {
    run_rounds(opt, &b);
    (opt->is_json ? print_json : print_table)(opt, &b);
  }
  tear_down(&b);
  return code;
}
