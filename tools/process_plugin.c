/*
  carry process --plugin / --preset: audio files through an LV2 plugin in
  the lilv host of host/, instead of the bare core.

  Every file gets fresh instances, set up as `carry check` sets them up
  (plugin_setup.c), so its output does not depend on -j or on the other
  files.  A plugin with as many audio inputs and outputs as the file has
  channels takes them together; a mono plugin runs once per channel.
*/

#include "process.h"

#include "audio_job.h"
#include "cli.h"
#include "plugin_setup.h"

#include <lilv/lilv.h>
#include <lv2/core/lv2.h>
#include <lv2/presets/presets.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES 8     ///< Plugins a preset may apply to
#define MAX_PLUGIN_CHANNELS 8
#define SYMBOL_LIST_SIZE 2048

/** A plugin the files may run through, with its audio ports. */
typedef struct candidate {
  char *uri;
  uint32_t n_inputs;
  uint32_t n_outputs;
} candidate;

/** Shared by the workers of a batch.  lilv's world is not thread-safe
    (instantiating and applying a preset load and unload its data), so
    `lock` guards every use of it; running instances needs no lock. */
typedef struct process_plugin {
  lv2_host *host;
  pthread_mutex_t lock;
  candidate candidates[MAX_CANDIDATES];  ///< --plugin, or the preset's
  int n_candidates;
  char *model_path;                      ///< Absolute, or NULL
} process_plugin;

/** One file's run. */
typedef struct plugin_job {
  process_plugin *shared;     ///< Its lock is taken, so not const
  const candidate *chosen;
  lv2_host_instance *instances[MAX_PLUGIN_CHANNELS];  ///< One, or one per
                                                      ///< channel
  int n_instances;
  float *planar;              ///< (C, T) channels apart, processed in place
  uint32_t reported_latency;  ///< What the plugin reports, in frames
  audio_job audio;
  atomic_uint_least64_t *meter;
} plugin_job;

/* ------------------------------------------------------------------------ */
/* The plugin, found once */

static void count_audio_ports(lv2_host *host, const LilvPlugin *plugin,
                              candidate *c)
{
  LilvWorld *world = lv2_host_world(host);
  LilvNode *audio = lilv_new_uri(world, LV2_CORE__AudioPort);
  LilvNode *input = lilv_new_uri(world, LV2_CORE__InputPort);
  LilvNode *output = lilv_new_uri(world, LV2_CORE__OutputPort);
  c->n_inputs = lilv_plugin_get_num_ports_of_class(plugin, audio, input,
                                                   NULL);
  c->n_outputs = lilv_plugin_get_num_ports_of_class(plugin, audio, output,
                                                    NULL);
  lilv_node_free(audio);
  lilv_node_free(input);
  lilv_node_free(output);
}

static int add_candidate(process_plugin *p, const char *uri)
{
  const LilvPlugin *plugin = lv2_host_find_plugin(p->host, uri);
  if (!plugin) {
    return cli_error(CLI_EXIT_USAGE, "unknown plugin '%s': no LV2 plugin of "
                     "that URI on LV2_PATH (%s)", uri,
                     getenv("LV2_PATH") ? getenv("LV2_PATH")
                                        : "not set: lilv's default");
  }
  if (p->n_candidates == MAX_CANDIDATES) {
    return CLI_EXIT_OK;  // enough to choose from
  }
  candidate *c = &p->candidates[p->n_candidates];
  c->uri = strdup(uri);
  if (!c->uri) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  ++p->n_candidates;
  count_audio_ports(p->host, plugin, c);
  return CLI_EXIT_OK;
}

/** The plugins the preset says it applies to (lv2:appliesTo). */
static LilvNodes *preset_plugins(process_plugin *p, const char *preset_uri)
{
  LilvWorld *world = lv2_host_world(p->host);
  LilvNode *preset = lilv_new_uri(world, preset_uri);
  LilvNode *applies_to = lilv_new_uri(world, LV2_CORE__appliesTo);
  LilvNodes *plugins = NULL;
  if (preset && applies_to) {
    lilv_world_load_resource(world, preset);
    plugins = lilv_world_find_nodes(world, preset, applies_to, NULL);
  }
  lilv_node_free(applies_to);
  lilv_node_free(preset);
  return plugins;
}

/** --preset without --plugin: each plugin it applies to (a file then runs
    through the one whose ports match it); with --plugin, the preset must
    apply to it. */
static int add_preset_candidates(process_plugin *p, const process_args *args)
{
  LilvNodes *plugins = preset_plugins(p, args->preset_uri);
  int status = CLI_EXIT_OK;
  if (!plugins || lilv_nodes_size(plugins) == 0) {
    status = cli_error(CLI_EXIT_USAGE, "unknown preset '%s': no preset of "
                       "that URI with an lv2:appliesTo on LV2_PATH",
                       args->preset_uri);
  }
  bool applies = false;
  LILV_FOREACH (nodes, i, plugins) {
    const char *uri = lilv_node_as_uri(lilv_nodes_get(plugins, i));
    applies = applies || (args->plugin_uri && !strcmp(uri, args->plugin_uri));
    if (status == CLI_EXIT_OK && !args->plugin_uri) {
      status = add_candidate(p, uri);
    }
  }
  if (status == CLI_EXIT_OK && args->plugin_uri && !applies) {
    status = cli_error(CLI_EXIT_USAGE, "preset '%s' does not apply to "
                       "plugin '%s' (see its lv2:appliesTo)",
                       args->preset_uri, args->plugin_uri);
  }
  lilv_nodes_free(plugins);
  return status;
}

/** The control inputs' symbols, for an error message. */
static void list_controls(const LilvPlugin *plugin, LilvNode *control,
                          LilvNode *input, char *text, size_t size)
{
  size_t used = 0;
  text[0] = '\0';
  for (uint32_t k = 0; k < lilv_plugin_get_num_ports(plugin); ++k) {
    const LilvPort *port = lilv_plugin_get_port_by_index(plugin, k);
    if (lilv_port_is_a(plugin, port, control) &&
        lilv_port_is_a(plugin, port, input) && used < size) {
      used += (size_t)snprintf(text + used, size - used, "%s%s",
                               used ? ", " : "",
                               lilv_node_as_string(
                                 lilv_port_get_symbol(plugin, port)));
    }
  }
}

/** A value outside the port's lv2:minimum and lv2:maximum is refused. */
static int check_range(const LilvPlugin *plugin, const LilvPort *port,
                       const plugin_control *control)
{
  LilvNode *min = NULL, *max = NULL;
  lilv_port_get_range(plugin, port, NULL, &min, &max);
  int status = CLI_EXIT_OK;
  if (min && max && lilv_node_is_float(min) && lilv_node_is_float(max) &&
      (control->value < lilv_node_as_float(min) ||
       control->value > lilv_node_as_float(max))) {
    status = cli_usage_error("--control %s: %g is outside the port's range "
                             "[%g, %g]", control->symbol,
                             (double)control->value,
                             (double)lilv_node_as_float(min),
                             (double)lilv_node_as_float(max));
  }
  lilv_node_free(min);
  lilv_node_free(max);
  return status;
}

static int check_control(process_plugin *p, const candidate *c,
                         const plugin_control *control)
{
  LilvWorld *world = lv2_host_world(p->host);
  const LilvPlugin *plugin = lv2_host_find_plugin(p->host, c->uri);
  LilvNode *symbol = lilv_new_string(world, control->symbol);
  LilvNode *kind = lilv_new_uri(world, LV2_CORE__ControlPort);
  LilvNode *input = lilv_new_uri(world, LV2_CORE__InputPort);
  const LilvPort *port = lilv_plugin_get_port_by_symbol(plugin, symbol);
  int status = CLI_EXIT_OK;
  if (!port || !lilv_port_is_a(plugin, port, kind) ||
      !lilv_port_is_a(plugin, port, input)) {
    char symbols[SYMBOL_LIST_SIZE];
    list_controls(plugin, kind, input, symbols, sizeof(symbols));
    status = cli_usage_error("--control %s: plugin '%s' has no control "
                             "input of that symbol; it has: %s",
                             control->symbol, c->uri, symbols);
  } else {
    status = check_range(plugin, port, control);
  }
  lilv_node_free(symbol);
  lilv_node_free(kind);
  lilv_node_free(input);
  return status;
}

static int check_controls(process_plugin *p, const process_args *args)
{
  int status = CLI_EXIT_OK;
  for (int c = 0; c < p->n_candidates && status == CLI_EXIT_OK; ++c) {
    for (int k = 0; k < args->n_controls && status == CLI_EXIT_OK; ++k) {
      status = check_control(p, &p->candidates[c], &args->controls[k]);
    }
  }
  return status;
}

/** --model goes to Carry's plugin as an absolute path, as a host sends
    it; a missing file is reported here rather than by the plugin. */
static int check_model(process_plugin *p, const process_args *args)
{
  if (!args->model_path) {
    return CLI_EXIT_OK;
  }
  for (int c = 0; c < p->n_candidates; ++c) {
    if (!plugin_setup_is_carry(p->candidates[c].uri)) {
      return cli_usage_error("--model works with Carry's plugins only; "
                             "'%s' takes no model file",
                             p->candidates[c].uri);
    }
  }
  p->model_path = realpath(args->model_path, NULL);
  if (!p->model_path) {
    return cli_error(CLI_EXIT_MODEL, "cannot load model: cannot open '%s'",
                     args->model_path);
  }
  return CLI_EXIT_OK;
}

static int find_plugin(process_plugin *p, const process_args *args)
{
  int status = args->plugin_uri ? add_candidate(p, args->plugin_uri)
                                : CLI_EXIT_OK;
  if (status == CLI_EXIT_OK && args->preset_uri) {
    status = add_preset_candidates(p, args);
  }
  if (status == CLI_EXIT_OK) {
    status = check_controls(p, args);
  }
  if (status == CLI_EXIT_OK) {
    status = check_model(p, args);
  }
  return status;
}

int process_plugin_prepare(process_model *prepared, const process_args *args)
{
  process_plugin *p = calloc(1, sizeof(*p));
  if (!p) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  prepared->plugin = p;
  pthread_mutex_init(&p->lock, NULL);
  p->host = lv2_host_new(NULL, NULL);
  if (!p->host) {
    return cli_error(CLI_EXIT_FAILED, "cannot start the LV2 host: out of "
                     "memory");
  }
  return find_plugin(p, args);
}

void process_plugin_free(process_plugin *plugin)
{
  if (!plugin) {
    return;
  }
  for (int c = 0; c < plugin->n_candidates; ++c) {
    free(plugin->candidates[c].uri);
  }
  free(plugin->model_path);
  lv2_host_free(plugin->host);
  pthread_mutex_destroy(&plugin->lock);
  free(plugin);
}

/* ------------------------------------------------------------------------ */
/* One file's instances */

/** The candidate whose ports match the file's channels, else a mono one
    to run per channel; NULL if none fits. */
static const candidate *choose_candidate(const process_plugin *p,
                                         int n_channels)
{
  const uint32_t n = (uint32_t)n_channels;
  for (int c = 0; c < p->n_candidates; ++c) {
    if (p->candidates[c].n_inputs == n && p->candidates[c].n_outputs == n) {
      return &p->candidates[c];
    }
  }
  for (int c = 0; c < p->n_candidates; ++c) {
    if (p->candidates[c].n_inputs == 1 && p->candidates[c].n_outputs == 1) {
      return &p->candidates[c];
    }
  }
  return NULL;
}

static int no_fitting_plugin(const plugin_job *job)
{
  const candidate *c = &job->shared->candidates[0];
  return cli_error(CLI_EXIT_FILE, "cannot run '%s' (%d channels) through "
                   "'%s': it has %u audio inputs and %u outputs (it takes "
                   "files of as many channels, or any file if it is mono)",
                   job->audio.in_path, job->audio.n_channels, c->uri,
                   c->n_inputs, c->n_outputs);
}

static plugin_setup job_setup(const plugin_job *job,
                              const process_args *args)
{
  const plugin_setup setup = {job->chosen->uri, args->preset_uri,
                              args->controls, (size_t)args->n_controls,
                              job->shared->model_path};
  return setup;
}

static int setup_refused(const plugin_job *job, const process_args *args,
                         plugin_setup_failure failure)
{
  const char *uri = job->chosen->uri;
  if (failure == PLUGIN_SETUP_BAD_PRESET) {
    return cli_error(CLI_EXIT_FAILED, "cannot apply preset '%s' to '%s' "
                     "for '%s'", args->preset_uri, uri, job->audio.in_path);
  }
  if (failure == PLUGIN_SETUP_BAD_MODEL) {
    return cli_error(CLI_EXIT_FAILED, "cannot send the model '%s' to '%s' "
                     "for '%s'", job->shared->model_path, uri,
                     job->audio.in_path);
  }
  return cli_error(CLI_EXIT_FAILED, "'%s' refused a --control for '%s'",
                   uri, job->audio.in_path);
}

/** Instantiates and configures under the world's lock; an instance the
    set-up refused is freed. */
static int open_instance(plugin_job *job, const process_args *args,
                         lv2_host_instance **instance)
{
  process_plugin *p = job->shared;
  const lv2_host_config config = {
    .plugin_uri = job->chosen->uri,
    .sample_rate = job->audio.in_info.samplerate,
    .max_block = args->block, .is_quiet = true};
  const plugin_setup setup = job_setup(job, args);
  size_t bad_control = 0;
  pthread_mutex_lock(&p->lock);
  const lv2_host_status status = lv2_host_instance_new(p->host, &config,
                                                       instance);
  const plugin_setup_failure failure =
    status ? PLUGIN_SETUP_OK
           : plugin_setup_configure(*instance, &setup, &bad_control);
  if (failure != PLUGIN_SETUP_OK) {
    lv2_host_instance_free(*instance);
    *instance = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (status) {
    return cli_error(CLI_EXIT_FAILED, "cannot run '%s' through '%s' at %d "
                     "Hz: %s", job->audio.in_path, config.plugin_uri,
                     job->audio.in_info.samplerate,
                     lv2_host_strerror(status));
  }
  return failure == PLUGIN_SETUP_OK ? CLI_EXIT_OK
                                    : setup_refused(job, args, failure);
}

/** Waits for the plugin's worker (Carry loading its model) and restarts
    it, so that every file starts from the same state. */
static int settle_instance(plugin_job *job, const process_args *args,
                           lv2_host_instance *instance)
{
  const plugin_setup setup = job_setup(job, args);
  char message[1024];
  if (!plugin_setup_settle(instance, &setup, message, sizeof(message))) {
    return cli_error(CLI_EXIT_MODEL, "'%s' through '%s': %s",
                     job->audio.in_path, setup.plugin_uri, message);
  }
  return CLI_EXIT_OK;
}

/** The plugin's reported latency is dropped from the output, as the
    core's is, unless --keep-latency. */
static void take_latency(plugin_job *job, const process_args *args)
{
  const float latency = plugin_setup_latency(job->shared->host,
                                             job->instances[0],
                                             job->chosen->uri);
  if (latency > 0.0f && latency < (float)INT32_MAX) {
    job->reported_latency = (uint32_t)lrintf(latency);
  }
  if (!args->keeps_latency) {
    job->audio.latency = job->reported_latency;
  }
}

static int create_instances(plugin_job *job, const process_args *args)
{
  const int n_channels = job->audio.n_channels;
  job->chosen = choose_candidate(job->shared, n_channels);
  if (!job->chosen || n_channels > MAX_PLUGIN_CHANNELS) {
    return no_fitting_plugin(job);
  }
  const int n_instances = job->chosen->n_inputs == (uint32_t)n_channels
                            ? 1 : n_channels;
  int status = CLI_EXIT_OK;
  for (int k = 0; k < n_instances && status == CLI_EXIT_OK; ++k) {
    status = open_instance(job, args, &job->instances[k]);
    job->n_instances += status == CLI_EXIT_OK;
    if (status == CLI_EXIT_OK) {
      status = settle_instance(job, args, job->instances[k]);
    }
  }
  if (status == CLI_EXIT_OK) {
    take_latency(job, args);
    status = audio_job_allocate(&job->audio, args->block);
  }
  job->planar = malloc((size_t)args->block * (size_t)n_channels *
                       sizeof(float));
  return status != CLI_EXIT_OK || job->planar
           ? status : cli_error(CLI_EXIT_FAILED, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* Processing */

static void deinterleave(const float *frames, int n_channels, uint32_t n,
                         float *planar, uint32_t stride)
{
  for (int c = 0; c < n_channels; ++c) {
    for (uint32_t t = 0; t < n; ++t) {
      planar[(size_t)c * stride + t] = frames[(size_t)t * (size_t)n_channels +
                                              (size_t)c];
    }
  }
}

static void interleave(const float *planar, int n_channels, uint32_t n,
                       uint32_t stride, float *frames)
{
  for (int c = 0; c < n_channels; ++c) {
    for (uint32_t t = 0; t < n; ++t) {
      frames[(size_t)t * (size_t)n_channels + (size_t)c] =
        planar[(size_t)c * stride + t];
    }
  }
}

/** One block through the instances (audio_job_frames_fn): a channel
    each, or all channels through one.  The host copies the inputs into
    its port buffers before run(), so processing in place is safe. */
static int process_frames(void *context, float *frames, uint32_t n)
{
  plugin_job *job = context;
  const int n_channels = job->audio.n_channels;
  const uint32_t stride = job->audio.block;
  float *channels[MAX_PLUGIN_CHANNELS];
  deinterleave(frames, n_channels, n, job->planar, stride);
  for (int c = 0; c < n_channels; ++c) {
    channels[c] = job->planar + (size_t)c * stride;
  }
  const bool is_per_channel = job->n_instances > 1 || n_channels == 1;
  for (int k = 0; k < job->n_instances; ++k) {
    float *const *io = is_per_channel ? &channels[k] : channels;
    const lv2_host_status status =
      lv2_host_run(job->instances[k], (const float *const *)io, io, n);
    if (status) {
      return cli_error(CLI_EXIT_FAILED, "running '%s' on '%s': %s",
                       job->chosen->uri, job->audio.in_path,
                       lv2_host_strerror(status));
    }
  }
  interleave(job->planar, n_channels, n, stride, frames);
  if (job->meter) {
    const double rate = job->audio.in_info.samplerate;
    atomic_fetch_add_explicit(job->meter, (uint_least64_t)(1e6 * n / rate),
                              memory_order_relaxed);
  }
  return CLI_EXIT_OK;
}

static void free_job(plugin_job *job)
{
  process_plugin *p = job->shared;
  pthread_mutex_lock(&p->lock);
  for (int k = 0; k < job->n_instances; ++k) {
    lv2_host_instance_free(job->instances[k]);
  }
  pthread_mutex_unlock(&p->lock);
  free(job->planar);
  audio_job_free(&job->audio);
}

static void describe_run(const plugin_job *job, char *text, size_t size)
{
  char summary[256];
  audio_job_describe(&job->audio, summary, sizeof(summary));
  snprintf(text, size, "%s; %s%s, %d Hz, latency %u samples%s", summary,
           job->chosen->uri, job->n_instances > 1 ? " (one per channel)" : "",
           job->audio.in_info.samplerate, job->reported_latency,
           job->audio.latency ? " (compensated)" : "");
}

static int run_file(plugin_job *job, const process_args *args,
                    const char *out_path)
{
  process_audio_options(&job->audio, args);
  int status = create_instances(job, args);
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_output(&job->audio, out_path);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_run_frames(&job->audio, process_frames, job);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_finish(&job->audio);
  }
  return status;
}

int process_plugin_file(process_plugin *plugin,
                        const process_args *args, const char *in_path,
                        const char *out_path, atomic_uint_least64_t *meter,
                        process_outcome *outcome)
{
  plugin_job job;
  memset(&job, 0, sizeof(job));
  job.shared = plugin;
  job.meter = meter;
  int status = audio_job_open_input(&job.audio, in_path);
  if (status == CLI_EXIT_OK) {
    status = run_file(&job, args, out_path);
  }
  if (status == CLI_EXIT_OK) {
    outcome->seconds_of_audio = (double)job.audio.n_frames /
                                job.audio.in_info.samplerate;
    outcome->seconds_spent = job.audio.seconds_spent;
    describe_run(&job, outcome->summary, sizeof(outcome->summary));
  }
  free_job(&job);
  return status;
}
