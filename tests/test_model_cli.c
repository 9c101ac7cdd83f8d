/*
  `carry model` (info, verify, convert) and `carry process --normalize` as
  users run them: the built binary ($CARRY_EXE), with a table of bad
  argument lists, info in text and JSON checked against the library and
  the files, self-tests that pass and fail, conversions that round-trip to
  the same bytes and the same audio, and normalising gains checked on the
  output samples.
*/

#include "harness.h"
#include "subprocess.h"
#include "temp_files.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGS 32
#define PATH_SIZE 4096
#define OUTPUT_SIZE 65536
#define TEMP_DIR_SIZE 1024
#define MAX_MODELS 64

static char demo_model[PATH_SIZE];

/* ------------------------------------------------------------------------ */
/* Files */

/** A model under tests/models, in one of a few rotating buffers. */
static const char *model_path(const char *name)
{
  static char paths[4][PATH_SIZE];
  static int next = 0;
  char *path = paths[next++ % 4];
  char relative[PATH_SIZE];
  snprintf(relative, sizeof(relative), "tests/models/%s", name);
  snprintf(path, PATH_SIZE, "%s", test_source_path(relative));
  return path;
}

/** Mono samples of an audio file in the temporary directory, to free(). */
static float *read_mono(const char *name, size_t *n)
{
  SF_INFO info;
  memset(&info, 0, sizeof(info));
  SNDFILE *file = sf_open(temp_files_path(name), SFM_READ, &info);
  *n = 0;
  if (!file || info.channels != 1) {
    if (file) {
      sf_close(file);
    }
    return NULL;
  }
  float *samples = malloc(((size_t)info.frames + 1) * sizeof(float));
  if (samples && sf_readf_float(file, samples, info.frames) == info.frames) {
    *n = (size_t)info.frames;
  }
  sf_close(file);
  return samples;
}

/* ------------------------------------------------------------------------ */
/* Running the command */

typedef struct run_result {
  int status;                ///< Exit code, or -1 if it did not exit
  char stdout_text[OUTPUT_SIZE];
  char stderr_text[OUTPUT_SIZE];
} run_result;

/** Splits `command` at spaces into argv.  "@name" stands for a file in the
    temporary directory, "&name" for one in tests/models, "%M" for the
    demo model. */
static void split_args(char *command, char **argv, char storage[][PATH_SIZE])
{
  int argc = 0;
  argv[argc++] = getenv("CARRY_EXE");
  for (char *word = strtok(command, " "); word && argc < MAX_ARGS - 1;
       word = strtok(NULL, " ")) {
    char *arg = storage[argc];
    if (word[0] == '@') {
      snprintf(arg, PATH_SIZE, "%s/%s", temp_files_dir(), word + 1);
    } else if (word[0] == '&') {
      snprintf(arg, PATH_SIZE, "%s", model_path(word + 1));
    } else if (!strcmp(word, "%M")) {
      snprintf(arg, PATH_SIZE, "%s", demo_model);
    } else {
      snprintf(arg, PATH_SIZE, "%s", word);
    }
    argv[argc++] = arg;
  }
  argv[argc] = NULL;
}

/** Runs `carry` with the words of `command` (printf-style), its output
    going to files in the temporary directory, and collects the result. */
static run_result *run(const char *format, ...)
  __attribute__((format(printf, 1, 2)));

static run_result *run(const char *format, ...)
{
  static run_result result;
  static char storage[MAX_ARGS][PATH_SIZE];
  char command[2048];
  va_list args;
  va_start(args, format);
  vsnprintf(command, sizeof(command), format, args);
  va_end(args);
  char *argv[MAX_ARGS];
  split_args(command, argv, storage);
  const subprocess_files files = {.out = temp_files_path(".stdout"),
                                  .err = temp_files_path(".stderr")};
  result.status = subprocess_wait(subprocess_start(argv, &files));
  subprocess_read_text(files.out, result.stdout_text, OUTPUT_SIZE);
  subprocess_read_text(files.err, result.stderr_text, OUTPUT_SIZE);
  unlink(files.out);
  unlink(files.err);
  return &result;
}

/** Runs and checks that it exited with `status`. */
static const run_result *run_expect(int status, const char *command)
{
  const run_result *r = run("%s", command);
  CHECK(r->status == status, "'%s' exited %d, expected %d: %s", command,
        r->status, status, r->stderr_text);
  return r;
}

/* ------------------------------------------------------------------------ */
/* Bad argument lists */

typedef struct bad_case {
  const char *command;
  int status;
  const char *message;  ///< Expected in stderr
} bad_case;

static const bad_case bad_cases[] = {
  {"model", 2, "carry model: missing verb (info, verify or convert)"},
  {"model frobnicate", 2,
   "carry model: unknown verb 'frobnicate' (info, verify or convert)"},
  {"model --frobnicate", 2, "unrecognized option '--frobnicate'"},
  {"model info", 2, "carry model info: missing model FILE"},
  {"model info %M %M", 2, "too many arguments"},
  {"model info --frobnicate %M", 2,
   "carry model info: unrecognized option '--frobnicate'"},
  {"model info @missing.json", 3, "missing.json: No such file"},
  {"model info --max-block 0 %M", 2, "--max-block must be 1 to 65536, not '0'"},
  {"model info --max-block 65537 %M", 2, "--max-block must be 1 to 65536"},
  {"model info --channels 3 %M", 2, "--channels must be 1 or 2, not '3'"},
  {"model info %M --channels", 2, "requires an argument"},
  {"model verify", 2, "carry model verify: missing model FILE"},
  {"model verify %M %M", 2, "too many arguments"},
  {"model verify --tolerance -1 %M", 2, "--tolerance must be"},
  {"model verify --tolerance abc %M", 2, "not 'abc'"},
  {"model verify --tolerance nan %M", 2, "not 'nan'"},
  {"model verify %M --tolerance", 2, "requires an argument"},
  {"model verify @missing.json", 3, "missing.json"},
  {"model convert", 2, "missing model IN and output OUT.json"},
  {"model convert %M", 2, "missing output file OUT.json"},
  {"model convert %M @a.json @b.json", 2, "too many arguments"},
  {"model convert --frobnicate %M @out.json", 2,
   "carry model convert: unrecognized option"},
  {"model convert @missing.json @out.json", 3, "missing.json"},
  {"model convert %M @no_dir/out.json", 4, "no_dir/out.json"},
  {"model convert %M %M", 2, "is the input file"},
  {"process --model %M --normalize=yes @dry.wav @out.wav", 2,
   "doesn't allow an argument"},
};

static void test_bad_arguments(void)
{
  for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); ++k) {
    const bad_case *c = &bad_cases[k];
    const run_result *r = run("%s", c->command);
    CHECK(r->status == c->status, "'%s' exited %d, expected %d; stderr: %s",
          c->command, r->status, c->status, r->stderr_text);
    CHECK(strstr(r->stderr_text, c->message) != NULL,
          "'%s': expected '%s' in stderr, found: %s", c->command, c->message,
          r->stderr_text);
    CHECK(!r->stdout_text[0], "'%s' printed on stdout: %s", c->command,
          r->stdout_text);
    struct stat info;
    CHECK(stat(temp_files_path("out.json"), &info) != 0 &&
            stat(temp_files_path("out.wav"), &info) != 0,
          "'%s' left an output behind", c->command);
  }
}

static void test_help(void)
{
  static const char *const commands[] = {
    "model --help", "model info --help", "model verify --help",
    "model convert --help", "--help",
  };
  for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); ++k) {
    const run_result *r = run_expect(0, commands[k]);
    CHECK(strstr(r->stdout_text, "Usage: carry") != NULL,
          "'%s' printed no usage: %s", commands[k], r->stdout_text);
  }
  const run_result *r = run("model --help");
  CHECK(strstr(r->stdout_text, "info") && strstr(r->stdout_text, "verify") &&
          strstr(r->stdout_text, "convert"),
        "model --help does not list the verbs: %s", r->stdout_text);
  r = run("model verify --help");
  CHECK(strstr(r->stdout_text, "default 0.0001") != NULL,
        "verify --help does not state the default tolerance: %s",
        r->stdout_text);
  r = run("--help");
  CHECK(strstr(r->stdout_text, "model") != NULL,
        "carry --help does not list model: %s", r->stdout_text);
  r = run("process --help");
  CHECK(strstr(r->stdout_text, "--normalize") != NULL,
        "process --help does not list --normalize: %s", r->stdout_text);
}

/** A model the loader refuses: exit 3 and the loader's own message. */
static void test_bad_model(void)
{
  static const char *const files[] = {"bad_kernel_rows.json", "bad_nam.nam",
                                      "bad_truncated.json"};
  for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); ++k) {
    carry_error err;
    carry_model *model = carry_model_load(model_path(files[k]), &err);
    CHECK(!model, "%s loads", files[k]);
    carry_model_free(model);
    static const char *const verbs[] = {"info", "info --json", "verify"};
    for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); ++v) {
      const run_result *r = run("model %s &%s", verbs[v], files[k]);
      CHECK(r->status == 3 && strstr(r->stderr_text, err.message),
            "model %s %s: exit %d, expected 3 and the loader's message "
            "'%s', found: %s", verbs[v], files[k], r->status, err.message,
            r->stderr_text);
      CHECK(!r->stdout_text[0], "model %s %s printed: %s", verbs[v],
            files[k], r->stdout_text);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* info in text */

typedef struct info_case {
  const char *file;          ///< Under tests/models; NULL for the demo
  const char *lines[8];      ///< Each expected in the output
} info_case;

static const info_case info_cases[] = {
  {NULL,
   {"format:         RTNeural/AIDA-X Keras JSON\n",
    "layers:         LSTM 5 \u2192 dense 1\n",
    "inputs:         2 (audio and 1 knob)\n",
    "knobs:          asymmetry [0, 1], default 0\n",
    "sample rate:    48000 Hz\n", "(measured by Carry)\n",
    "author:         Carry project\n", "multiply-adds:  145 per sample\n"}},
  {"gru_unit.json",
   {"name:           GRU test\n",
    "layers:         GRU 1 \u2192 dense 1 (no bias)\n",
    "sample rate:    96000 Hz\n", "author:         Carry tests\n",
    "initial state:  zero\n", "inputs:         1 (audio)\n"}},
  {"dense_tanh.json",
   {"name:           Tanh Drive\n", "layers:         dense 1 \u2192 tanh\n",
    "sample rate:    48000 Hz\n", "skip:           no\n"}},
  {"gains_skip.json",
   {"skip:           yes", "gains:          in +6 dB, out -3 dB\n",
    "sample rate:    22050 Hz\n"}},
  {"dense_linear.json",
   {"sample rate:    unknown\n", "layers:         dense 1\n",
    "weights:        2\n"}},
  {"lstm_state.json", {"initial state:  stored\n"}},
  {"cli_nam.nam",
   {"format:         Neural Amp Modeler .nam\n",
    "name:           CLI capture\n",
    "loudness:       -14.25 dB (from the file)\n",
    "normalizing:    -3.75 dB (to -18 dB)\n", "author:         Carry tests\n",
    "gear:           Marshall JCM800 (amp)\n",
    "input level:    12.2 dBu at 0 dBFS\n", "initial state:  stored\n"}},
  {"cli_pytorch.json",
   {"format:         GuitarML/Automated-GuitarAmpModelling JSON\n",
    "layers:         GRU 3 \u2192 dense 1\n",
    "knobs:          Drive [0, 10], default 5\n", "skip:           yes",
    "sample rate:    44100 Hz\n", "(measured by Carry)\n"}},
  {"cli_metadata.json",
   {"author:         Someone ?[31mRed\n",
    "gear:           Fender Deluxe Reverb (amp)\n",
    "input level:    18.3 dBu at 0 dBFS\n",
    "output level:   12 dBu at 0 dBFS\n",
    "loudness:       -20.00 dB (from the file)\n",
    "normalizing:    +2.00 dB (to -18 dB)\n",
    "layers:         dense 1 (tanh)\n"}},
};

static void test_info_text(void)
{
  for (size_t k = 0; k < sizeof(info_cases) / sizeof(info_cases[0]); ++k) {
    const info_case *c = &info_cases[k];
    const char *file = c->file ? c->file : "the demo model";
    const run_result *r = c->file ? run("model info &%s", c->file)
                                  : run("model info %%M");
    CHECK(r->status == 0, "info %s exited %d: %s", file, r->status,
          r->stderr_text);
    for (int l = 0; l < 8 && c->lines[l]; ++l) {
      CHECK(strstr(r->stdout_text, c->lines[l]) != NULL,
            "info %s: expected '%s' in:\n%s", file, c->lines[l],
            r->stdout_text);
    }
    CHECK(strstr(r->stdout_text, "% of one core in real time at 48 kHz") &&
            strstr(r->stdout_text, "ns/sample"),
          "info %s: no CPU share: %s", file, r->stdout_text);
  }
}

/* ------------------------------------------------------------------------ */
/* info --json */

/** Every key `info --json` promises (carry.1 documents them). */
static const char *const json_keys[] = {
  "file", "name", "format", "format_name", "layers", "inputs", "knobs",
  "skip", "in_gain_db", "out_gain_db", "sample_rate", "loudness_db",
  "loudness_source", "normalize_gain_db", "author", "gear",
  "input_level_dbu", "output_level_dbu", "initial_state", "macs_per_sample",
  "weights", "kernels", "ns_per_sample", "cpu_percent", "cpu_rounds",
  "cpu_seconds_per_round", "memory",
};

/** Runs info --json on `path` (a source path or "%M") and parses it. */
static json_t *info_json(const char *path)
{
  const run_result *r = run("model info --json %s", path);
  json_error_t jerr;
  json_t *info = json_loads(r->stdout_text, 0, &jerr);
  CHECK(r->status == 0 && json_is_object(info),
        "info --json %s: exit %d, %s (%s): %s", path, r->status,
        r->stderr_text, jerr.text, r->stdout_text);
  for (size_t k = 0; info && k < sizeof(json_keys) / sizeof(json_keys[0]);
       ++k) {
    CHECK(json_object_get(info, json_keys[k]) != NULL,
          "info --json %s: no \"%s\"", path, json_keys[k]);
  }
  return info;
}

static const char *get_string(const json_t *o, const char *key)
{
  const char *text = json_string_value(json_object_get(o, key));
  return text ? text : "(not a string)";
}

static double get_number(const json_t *o, const char *key)
{
  const json_t *value = json_object_get(o, key);
  return json_is_number(value) ? json_number_value(value) : NAN;
}

static bool is_null(const json_t *o, const char *key)
{
  return json_is_null(json_object_get(o, key));
}

/** What the JSON says against what the library says of the same file. */
static void check_against_library(const json_t *info, const char *path)
{
  carry_error err;
  carry_model *model = carry_model_load(path, &err);
  CHECK(model && !carry_model_measure_loudness(model, &err),
        "%s: %s", path, err.message);
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(get_number(info, "macs_per_sample") ==
          (double)carry_model_macs(model) &&
          get_number(info, "weights") == (double)carry_model_n_weights(model),
        "%s: multiply-adds %g, weights %g; the library says %zu, %zu", path,
        get_number(info, "macs_per_sample"), get_number(info, "weights"),
        carry_model_macs(model), carry_model_n_weights(model));
  CHECK((float)get_number(info, "loudness_db") == spec->loudness_db &&
          (float)get_number(info, "normalize_gain_db") ==
            carry_model_normalize_gain_db(model),
        "%s: loudness %g, gain %g; the library says %g, %g", path,
        get_number(info, "loudness_db"), get_number(info, "normalize_gain_db"),
        (double)spec->loudness_db,
        (double)carry_model_normalize_gain_db(model));
  CHECK(!strcmp(get_string(info, "loudness_source"),
                spec->is_loudness_measured ? "measured" : "file"),
        "%s: loudness_source %s", path, get_string(info, "loudness_source"));
  CHECK(get_number(info, "inputs") == spec->n_inputs &&
          json_array_size(json_object_get(info, "layers")) ==
            (size_t)spec->n_layers &&
          json_array_size(json_object_get(info, "knobs")) ==
            (size_t)spec->n_inputs - 1,
        "%s: inputs, layers or knobs miscounted", path);
  carry_model_free(model);
}

/** The CPU share is ns/sample times 48000 samples, in percent. */
static void check_cpu(const json_t *info, const char *path)
{
  const double ns = get_number(info, "ns_per_sample");
  const double percent = get_number(info, "cpu_percent");
  CHECK(ns > 0.0 && fabs(percent - ns * 48000.0 / 1e9 * 100.0) <=
                      1e-3 * percent,
        "%s: %g ns/sample but %g%% of a core", path, ns, percent);
  CHECK(get_number(info, "cpu_rounds") >= 3 &&
          get_number(info, "cpu_seconds_per_round") > 0.0,
        "%s: %g rounds of %g s", path, get_number(info, "cpu_rounds"),
        get_number(info, "cpu_seconds_per_round"));
}

static void test_info_json_demo(void)
{
  json_t *info = info_json(demo_model);
  const json_t *layers = json_object_get(info, "layers");
  const json_t *lstm = json_array_get(layers, 0);
  const json_t *head = json_array_get(layers, 1);
  const json_t *knob = json_array_get(json_object_get(info, "knobs"), 0);
  CHECK(!strcmp(get_string(info, "format"), "keras") &&
          !strcmp(get_string(info, "format_name"),
                  "RTNeural/AIDA-X Keras JSON"),
        "demo: format %s", get_string(info, "format"));
  CHECK(!strcmp(get_string(lstm, "type"), "lstm") &&
          get_number(lstm, "units") == 5 &&
          !strcmp(get_string(head, "type"), "dense") &&
          get_number(head, "units") == 1 &&
          !strcmp(get_string(head, "activation"), "linear"),
        "demo: layers are not LSTM 5, dense 1");
  CHECK(!strcmp(get_string(knob, "name"), "asymmetry") &&
          get_number(knob, "min") == 0.0 && get_number(knob, "max") == 1.0 &&
          get_number(knob, "default") == 0.0,
        "demo: knob %s [%g, %g] %g", get_string(knob, "name"),
        get_number(knob, "min"), get_number(knob, "max"),
        get_number(knob, "default"));
  CHECK(get_number(info, "sample_rate") == 48000.0 &&
          json_is_false(json_object_get(info, "skip")) &&
          !strcmp(get_string(info, "loudness_source"), "measured") &&
          !strcmp(get_string(info, "author"), "Carry project") &&
          is_null(info, "gear") && is_null(info, "input_level_dbu") &&
          !strcmp(get_string(info, "initial_state"), "zero"),
        "demo: rate, skip, loudness source, author, gear or state wrong");
  check_against_library(info, demo_model);
  check_cpu(info, demo_model);
  json_decref(info);
}

/** One memory figure of info --json on the overdrive preset's LSTM-32. */
static double memory_figure(const char *options, const char *key)
{
  const run_result *r = run("model info --json %s %s", options,
                            test_source_path("presets/overdrive.json"));
  json_t *info = json_loads(r->stdout_text, 0, NULL);
  const double value =
    get_number(json_object_get(info, "memory"), key);
  CHECK(r->status == 0 && value > 0.0, "info --json %s: no memory.%s: %s",
        options, key, r->stderr_text);
  json_decref(info);
  return value;
}

/** The plugin's memory: the parts add up, weights and state are the
    core's own figures, nothing grows with the host's block, and a mono
    LSTM-32 instance fits in 256 KiB even while changing models (issue 8,
    goal 6; tests/test_plugin_memory.c checks the figures against what an
    instance allocates). */
static void test_info_memory(void)
{
  const char *path = test_source_path("presets/overdrive.json");
  json_t *info = info_json(path);
  const json_t *m = json_object_get(info, "memory");
  const double engine = get_number(m, "plugin_engine") +
                        get_number(m, "weights") + get_number(m, "state") +
                        get_number(m, "scratch");
  const double total = get_number(m, "total");
  const double mono_state = get_number(m, "state");
  CHECK(get_number(m, "max_block") == 4096 && get_number(m, "channels") == 1,
        "info: memory at a maximum block of 4096, mono by default");
  CHECK(total == get_number(m, "plugin_instance") + engine &&
          get_number(m, "total_changing") == total + engine,
        "info: the memory figures do not add up");
  CHECK(get_number(m, "total_changing") <= 256 * 1024,
        "info: a mono LSTM-32 instance needs %g bytes while changing",
        get_number(m, "total_changing"));
  carry_error err;
  carry_model *model = carry_model_load(path, &err);
  if (CHECK(model && !carry_model_measure_loudness(model, &err), "%s",
            err.message)) {
    const carry_memory stream =
      carry_stream_memory(model, 64, CARRY_KERNELS_AUTO);
    CHECK(get_number(m, "weights") == (double)carry_model_memory(model) &&
            get_number(m, "state") == (double)stream.state,
          "info: weights or state differ from the core's");
  }
  carry_model_free(model);
  json_decref(info);
  CHECK(memory_figure("--channels 2", "state") == 2 * mono_state,
        "info --channels 2: twice the state");
  CHECK(memory_figure("--max-block 1", "total") == total &&
          memory_figure("--max-block 65536", "total") == total,
        "info: the memory grows with the host's block");
  const run_result *r = run("model info --channels 2 %s", path);
  CHECK(r->status == 0 &&
          strstr(r->stdout_text, "memory:         one stereo plugin "
                                 "instance, host blocks up to 4096") &&
          strstr(r->stdout_text, "\n  total ") &&
          strstr(r->stdout_text, "\n  changing "),
        "info --channels 2: %s", r->stdout_text);
}

static void test_info_json_nam(void)
{
  const char *path = model_path("cli_nam.nam");
  json_t *info = info_json(path);
  CHECK(!strcmp(get_string(info, "format"), "nam") &&
          get_number(info, "loudness_db") == -14.25 &&
          !strcmp(get_string(info, "loudness_source"), "file") &&
          get_number(info, "normalize_gain_db") == -3.75 &&
          get_number(info, "sample_rate") == 48000.0,
        "nam: format %s, loudness %g from %s, gain %g, rate %g",
        get_string(info, "format"), get_number(info, "loudness_db"),
        get_string(info, "loudness_source"),
        get_number(info, "normalize_gain_db"),
        get_number(info, "sample_rate"));
  CHECK(!strcmp(get_string(info, "author"), "Carry tests") &&
          !strcmp(get_string(info, "gear"), "Marshall JCM800 (amp)") &&
          get_number(info, "input_level_dbu") == 12.2 &&
          get_number(info, "output_level_dbu") == 6.5 &&
          !strcmp(get_string(info, "initial_state"), "stored"),
        "nam: author %s, gear %s, levels or state wrong",
        get_string(info, "author"), get_string(info, "gear"));
  check_against_library(info, path);
  json_decref(info);
}

static void test_info_json_others(void)
{
  const char *path = model_path("cli_pytorch.json");
  json_t *info = info_json(path);
  const json_t *knob = json_array_get(json_object_get(info, "knobs"), 0);
  const json_t *gru = json_array_get(json_object_get(info, "layers"), 0);
  CHECK(!strcmp(get_string(info, "format"), "pytorch") &&
          json_is_true(json_object_get(info, "skip")) &&
          !strcmp(get_string(gru, "type"), "gru") &&
          get_number(gru, "units") == 3 &&
          !strcmp(get_string(knob, "name"), "Drive") &&
          get_number(knob, "max") == 10.0 &&
          get_number(knob, "default") == 5.0 &&
          is_null(info, "output_level_dbu"),
        "pytorch: format %s, knob %s", get_string(info, "format"),
        get_string(knob, "name"));
  check_against_library(info, path);
  json_decref(info);

  path = model_path("dense_linear.json");
  info = info_json(path);
  CHECK(is_null(info, "sample_rate") && is_null(info, "author") &&
          json_array_size(json_object_get(info, "knobs")) == 0,
        "dense_linear: a sample rate, author or knobs out of nothing");
  check_against_library(info, path);
  json_decref(info);

  path = model_path("cli_metadata.json");
  info = info_json(path);
  CHECK(!strcmp(get_string(info, "gear"), "Fender Deluxe Reverb (amp)") &&
          !strcmp(get_string(info, "author"), "Someone \x1b[31mRed") &&
          get_number(info, "input_level_dbu") == 18.3 &&
          get_number(info, "output_level_dbu") == 12.0 &&
          get_number(info, "normalize_gain_db") == 2.0,
        "cli_metadata: gear %s, author %s", get_string(info, "gear"),
        get_string(info, "author"));
  json_decref(info);

  path = model_path("gains_skip.json");
  info = info_json(path);
  CHECK(get_number(info, "in_gain_db") == 6.0 &&
          get_number(info, "out_gain_db") == -3.0 &&
          get_number(info, "sample_rate") == 22050.0,
        "gains_skip: gains %g, %g, rate %g", get_number(info, "in_gain_db"),
        get_number(info, "out_gain_db"), get_number(info, "sample_rate"));
  json_decref(info);
}

/* ------------------------------------------------------------------------ */
/* verify */

/** The "max |error|" a verify run printed, or NaN. */
static double max_error(const char *text)
{
  const char *at = strstr(text, "max |error|: ");
  return at ? strtod(at + strlen("max |error|: "), NULL) : NAN;
}

static void test_verify(void)
{
  /* From PyTorch (tests/models/verify_make.py): as close as the golden
     tests demand, although verify passes at 1e-4. */
  static const char *const passing[] = {"verify_lstm_knob.json",
                                        "verify_gru_stack.json"};
  for (size_t k = 0; k < sizeof(passing) / sizeof(passing[0]); ++k) {
    const run_result *r = run("model verify &%s", passing[k]);
    CHECK(r->status == 0 && strstr(r->stdout_text, "pass:") &&
            max_error(r->stdout_text) <= 1e-5,
          "verify %s: exit %d, stdout %s, stderr %s", passing[k], r->status,
          r->stdout_text, r->stderr_text);
  }
  const run_result *r = run("model verify &verify_dense_exact.json");
  CHECK(r->status == 0 && max_error(r->stdout_text) == 0.0 &&
          strstr(r->stdout_text, "RMS error:   0\n"),
        "verify_dense_exact (computed by hand): %s", r->stdout_text);

  r = run("model verify &verify_off.json");
  CHECK(r->status == 1 && strstr(r->stdout_text, "FAIL") &&
          strstr(r->stdout_text, "at sample 123 ") &&
          fabs(max_error(r->stdout_text) - 0.01) < 1e-4,
        "verify_off: exit %d: %s", r->status, r->stdout_text);
  r = run("model verify --tolerance 0.02 &verify_off.json");
  CHECK(r->status == 0 && strstr(r->stdout_text, "pass:"),
        "verify_off with a tolerance of 0.02: exit %d: %s", r->status,
        r->stdout_text);
  r = run("model verify -t 0 &verify_off.json");
  CHECK(r->status == 1, "verify_off with a tolerance of 0: exit %d",
        r->status);
}

typedef struct verify_error_case {
  const char *file;
  const char *message;
} verify_error_case;

static const verify_error_case verify_errors[] = {
  {"lstm_unit.json", "lstm_unit.json: no self-test: expected \"input_batch\" "
                     "and \"output_batch\""},
  {"cli_nam.nam", "cli_nam.nam: no self-test"},
  {"verify_bad_counts.json",
   "verify_bad_counts.json: input_batch holds 5 numbers and output_batch 4"},
  {"verify_bad_value.json",
   "verify_bad_value.json: input_batch[0][12]: expected a number, found the "
   "string \"loud\""},
  {"verify_bad_half.json",
   "verify_bad_half.json: expected an \"output_batch\" key beside "
   "\"input_batch\", found none"},
};

static void test_verify_errors(void)
{
  for (size_t k = 0; k < sizeof(verify_errors) / sizeof(verify_errors[0]);
       ++k) {
    const verify_error_case *c = &verify_errors[k];
    const run_result *r = run("model verify &%s", c->file);
    CHECK(r->status == 3 && strstr(r->stderr_text, c->message) &&
            !r->stdout_text[0],
          "verify %s: exit %d, expected 3 and '%s', found: %s", c->file,
          r->status, c->message, r->stderr_text);
  }
}

/* ------------------------------------------------------------------------ */
/* convert */

/** Runs `model` (a full path) over the dry signal into `out`, from the
    model's own initial state: settling could hide a lost initial state. */
static bool process(const char *model, const char *out)
{
  // As it is, not resampled: these tests compare the model's own output.
  const run_result *r = run("process --no-settle --rate-mode off --model %s "
                            "@dry.wav @%s", model, out);
  return CHECK(r->status == 0, "process %s: %s", model, r->stderr_text);
}

static bool same_audio(const char *name_a, const char *name_b)
{
  size_t n_a = 0, n_b = 0;
  float *a = read_mono(name_a, &n_a), *b = read_mono(name_b, &n_b);
  const bool same = a && b && n_a && n_a == n_b &&
                    !memcmp(a, b, n_a * sizeof(float));
  free(a);
  free(b);
  return same;
}

/** X -> a.json -> b.json: a and b are the same bytes, and X, a and b give
    the same samples. */
static void check_round_trip(const char *path, const char *label)
{
  const run_result *r = run("model convert %s @a.json", path);
  CHECK(r->status == 0 && strstr(r->stderr_text, "wrote '") &&
          strstr(r->stderr_text, "\u2192 RTNeural/AIDA-X Keras JSON"),
        "convert %s: exit %d: %s", label, r->status, r->stderr_text);
  r = run("model convert @a.json @b.json");
  CHECK(r->status == 0, "convert %s again: %s", label, r->stderr_text);
  CHECK(temp_files_same_bytes(temp_files_path("a.json"), temp_files_path("b.json")),
        "%s: converting the converted file changed its bytes", label);
  if (process(path, "x.wav") && process(temp_files_path("a.json"), "a.wav") &&
      process(temp_files_path("b.json"), "b.wav")) {
    CHECK(same_audio("x.wav", "a.wav") && same_audio("x.wav", "b.wav"),
          "%s: the converted model sounds different", label);
  }
}

static bool is_model_file(const char *name)
{
  const char *dot = strrchr(name, '.');
  return strncmp(name, "bad_", 4) && dot &&
         (!strcmp(dot, ".json") || !strcmp(dot, ".nam") ||
          !strcmp(dot, ".aidax"));
}

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/** Every good model under tests/models, whatever its format, and the
    demo. */
static void test_convert_round_trips(void)
{
  char path[PATH_SIZE];
  snprintf(path, sizeof(path), "%s", model_path(""));
  DIR *dir = opendir(path);
  char *names[MAX_MODELS];
  size_t n = 0;
  for (struct dirent *e = dir ? readdir(dir) : NULL; e && n < MAX_MODELS;
       e = readdir(dir)) {
    if (is_model_file(e->d_name)) {
      names[n++] = strdup(e->d_name);
    }
  }
  if (dir) {
    closedir(dir);
  }
  qsort(names, n, sizeof(names[0]), compare_names);
  CHECK(n >= 10, "only %zu good models found in %s", n, path);
  for (size_t k = 0; k < n; ++k) {
    check_round_trip(model_path(names[k]), names[k]);
    free(names[k]);
  }
  check_round_trip(demo_model, "the demo model");
  printf("convert: %zu model files and the demo round-trip\n", n);
}

/** What convert says and keeps: formats named, the self-test kept, a NAM
    file's loudness, calibration and initial state carried over. */
static void test_convert_keeps(void)
{
  const run_result *r = run("model convert &cli_nam.nam @nam.json");
  CHECK(r->status == 0 &&
          strstr(r->stderr_text, "\"CLI capture\", Neural Amp Modeler .nam "
                                 "\u2192 RTNeural/AIDA-X Keras JSON"),
        "convert nam: %s", r->stderr_text);
  json_t *info = info_json(temp_files_path("nam.json"));
  CHECK(!strcmp(get_string(info, "format"), "keras") &&
          get_number(info, "loudness_db") == -14.25 &&
          !strcmp(get_string(info, "loudness_source"), "file") &&
          get_number(info, "input_level_dbu") == 12.2 &&
          !strcmp(get_string(info, "gear"), "Marshall JCM800 (amp)") &&
          !strcmp(get_string(info, "initial_state"), "stored"),
        "the converted NAM model lost its loudness, calibration or state");
  json_decref(info);

  r = run("model convert &verify_lstm_knob.json @knob.json");
  CHECK(r->status == 0 && strstr(r->stderr_text, "self-test of 600"),
        "convert verify_lstm_knob: %s", r->stderr_text);
  r = run("model verify @knob.json");
  CHECK(r->status == 0 && max_error(r->stdout_text) <= 1e-5,
        "the converted self-test does not pass: %s %s", r->stdout_text,
        r->stderr_text);

  r = run("model convert &verify_bad_value.json @bad_test.json");
  CHECK(r->status == 0 && strstr(r->stderr_text, "warning: the self-test "
                                 "is not kept: "),
        "a broken self-test should be dropped with a warning: %s",
        r->stderr_text);
  r = run("model verify @bad_test.json");
  CHECK(r->status == 3 && strstr(r->stderr_text, "no self-test"),
        "the dropped self-test: %s", r->stderr_text);
}

/** IN is never replaced, whatever name OUT gives it. */
static void test_convert_refuses_input(void)
{
  run_expect(0, "model convert %M @in.json");
  size_t size = 0;
  char *before = temp_files_read_bytes(temp_files_path("in.json"), &size);
  CHECK(link(temp_files_path("in.json"), temp_files_path("linked.json")) == 0,
        "cannot link in.json");
  static const char *const outs[] = {"@in.json", "@./in.json",
                                     "@linked.json"};
  for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); ++k) {
    const run_result *r = run("model convert @in.json %s", outs[k]);
    CHECK(r->status == 2 && strstr(r->stderr_text, "is the input file"),
          "convert in.json %s: exit %d: %s", outs[k], r->status,
          r->stderr_text);
  }
  char *after = temp_files_read_bytes(temp_files_path("in.json"), &size);
  CHECK(before && after && !strcmp(before, after), "in.json was changed");
  free(before);
  free(after);
  unlink(temp_files_path("linked.json"));
}

/* ------------------------------------------------------------------------ */
/* process --normalize */

/** Processing with --normalize scales every sample by exactly the gain
    `info --json` states, and the report says so. */
static void check_normalize(const char *path, const char *label,
                            const char *source)
{
  json_t *info = info_json(path);
  const double gain_db = get_number(info, "normalize_gain_db");
  json_decref(info);
  const double expected = pow(10.0, gain_db / 20.0);
  process(path, "plain.wav");
  const run_result *r = run("process --no-settle --rate-mode off "
                            "--normalize --model %s @dry.wav @normal.wav",
                            path);
  char report[96];
  snprintf(report, sizeof(report), "normalized by %+.2f dB", gain_db);
  CHECK(r->status == 0 && strstr(r->stderr_text, report) &&
          strstr(r->stderr_text, source),
        "%s: expected '%s' (%s) in the report: %s", label, report, source,
        r->stderr_text);
  size_t n_plain = 0, n_normal = 0, n_compared = 0;
  float *plain = read_mono("plain.wav", &n_plain);
  float *normal = read_mono("normal.wav", &n_normal);
  double worst = 0.0;
  for (size_t t = 0; plain && normal && t < n_plain && t < n_normal; ++t) {
    if (fabsf(plain[t]) > 1e-4f) {
      const double ratio = (double)normal[t] / (double)plain[t];
      worst = fmax(worst, fabs(ratio / expected - 1.0));
      ++n_compared;
    }
  }
  CHECK(n_plain == n_normal && n_compared > n_plain / 4 && worst <= 1e-5,
        "%s: the level changed by a ratio up to %g off %g dB (%zu samples "
        "compared)", label, worst, gain_db, n_compared);
  free(plain);
  free(normal);
}

static void test_normalize(void)
{
  check_normalize(model_path("cli_nam.nam"), "cli_nam", "from the file");
  check_normalize(model_path("cli_pytorch.json"), "cli_pytorch", "measured");
  check_normalize(model_path("cli_metadata.json"), "cli_metadata",
                  "from the file");
  check_normalize(demo_model, "the demo model", "measured");
}

/* ------------------------------------------------------------------------ */

static bool set_up(void)
{
  const char *exe = getenv("CARRY_EXE");
  if (!exe || access(exe, X_OK) != 0) {
    fprintf(stderr, "CARRY_EXE does not name the built carry\n");
    return false;
  }
  snprintf(demo_model, sizeof(demo_model), "%s",
           test_source_path("presets/demo/soft-clip.json"));
  if (!temp_files_make("model-cli")) {
    return false;
  }
  return run_expect(0, "signal --seconds 1 --float @dry.wav")->status == 0;
}

int main(void)
{
  if (!set_up()) {
    return 1;
  }
  test_help();
  test_bad_arguments();
  test_bad_model();
  test_info_text();
  test_info_json_demo();
  test_info_json_nam();
  test_info_memory();
  test_info_json_others();
  test_verify();
  test_verify_errors();
  test_convert_round_trips();
  test_convert_keeps();
  test_convert_refuses_input();
  test_normalize();
  temp_files_remove();
  return test_finish("model_cli");
}
