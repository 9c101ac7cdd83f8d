/*
  The bundle as LV2 tools see it, with the tools themselves:

  - `test_plugin_ttl lv2info`: lv2info (lilv-utils), with LV2_PATH holding
    only the specifications and the build tree, describes both plugins from
    the build tree's bundle: name, required features, extension data, the
    preset, and every port symbol in index order;
  - `test_plugin_ttl turtle`: serdi parses each of the bundle's .ttl files
    without a syntax error (sord_validate skips a file it cannot parse and
    still reports 0 errors), then sord_validate checks them against every
    LV2 specification file and must find 0 errors among all of them.

  A test whose tool is missing ($LV2INFO, $SERDI, $SORD_VALIDATE unset by
  meson) exits 77: meson reports it as skipped.
*/

#include "harness.h"

#include <glob.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SKIP 77
#define MAX_ARGS 256
#define PATH_SIZE 4096

typedef struct tool_run {
  int exit_status;  ///< -1 if it did not run or was killed
  char *out;        ///< stdout, to free()
  char *err;        ///< stderr, to free()
} tool_run;

/* ------------------------------------------------------------------------ */
/* Running a tool */

static char *read_all(int fd)
{
  size_t size = 0, capacity = 65536;
  char *text = malloc(capacity);
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while (text && (n = read(fd, text + size, capacity - size - 1)) > 0) {
    size += (size_t)n;
    if (capacity - size < 2) {
      char *grown = realloc(text, capacity *= 2);
      if (!grown) {
        free(text);
        return NULL;
      }
      text = grown;
    }
  }
  if (text) {
    text[size] = '\0';
  }
  return text;
}

static int temp_file(void)
{
  char name[] = "/tmp/carry-ttl-XXXXXX";
  const int fd = mkstemp(name);
  if (fd >= 0) {
    unlink(name);
  }
  return fd;
}

/** Runs argv[0] with its output and errors captured. */
static tool_run run_tool(const char *const *argv)
{
  tool_run run = {-1, NULL, NULL};
  const int out = temp_file(), err = temp_file();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err, STDERR_FILENO);
  pid_t child;
  if (out >= 0 && err >= 0 &&
      !posix_spawn(&child, argv[0], &actions, NULL, (char *const *)argv,
                   environ)) {
    int status = 0;
    waitpid(child, &status, 0);
    run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = read_all(out);
    run.err = read_all(err);
  }
  posix_spawn_file_actions_destroy(&actions);
  close(out);
  close(err);
  return run;
}

static void tool_run_free(tool_run *run)
{
  free(run->out);
  free(run->err);
}

/* ------------------------------------------------------------------------ */
/* lv2info */

/** The port symbols lv2info lists, in order, joined by spaces. */
static void listed_symbols(const char *text, char *symbols, size_t size)
{
  symbols[0] = '\0';
  for (const char *at = strstr(text, "Symbol:"); at;
       at = strstr(at + 1, "Symbol:")) {
    char symbol[64] = "";
    sscanf(at + strlen("Symbol:"), " %63s", symbol);
    const size_t used = strlen(symbols);
    snprintf(symbols + used, size - used, "%s%s", used ? " " : "", symbol);
  }
}

static void check_lv2info(const char *lv2info, const char *uri,
                          const char *name, const char *symbols,
                          const char *bundle_dir)
{
  const char *argv[] = {lv2info, uri, NULL};
  tool_run run = run_tool(argv);
  const char *out = run.out ? run.out : "";
  char line[PATH_SIZE + 64], listed[1024];
  CHECK(run.exit_status == 0, "lv2info %s: exit status %d: %s", uri,
        run.exit_status, run.err ? run.err : "");
  CHECK(!strncmp(out, uri, strlen(uri)), "lv2info names %s first", uri);
  snprintf(line, sizeof(line), "Name:              %s\n", name);
  CHECK(strstr(out, line) != NULL, "lv2info: the name is %s", name);
  snprintf(line, sizeof(line), "Bundle:            file://%s/", bundle_dir);
  CHECK(strstr(out, line) != NULL, "lv2info: the bundle is the build "
        "tree's %s", bundle_dir);
  CHECK(strstr(out, "Required Features: http://lv2plug.in/ns/ext/urid#map") &&
        strstr(out, "http://lv2plug.in/ns/ext/worker#schedule\n\tOptional"),
        "lv2info: requires urid:map and work:schedule, nothing more");
  CHECK(strstr(out, "http://lv2plug.in/ns/ext/state#interface") &&
        strstr(out, "http://lv2plug.in/ns/ext/worker#interface"),
        "lv2info: state and worker extension data");
  CHECK(strstr(out, "Soft clip (hand-built demo)") != NULL,
        "lv2info: the preset is listed");
  CHECK(strstr(out, "Has latency:       yes, reported by port 9") != NULL,
        "lv2info: latency reported by port 9");
  listed_symbols(out, listed, sizeof(listed));
  CHECK(!strcmp(listed, symbols), "lv2info %s ports:\n  listed   %s\n  "
        "expected %s", uri, listed, symbols);
  printf("lv2info %s: %s; ports %s\n", uri, name, listed);
  tool_run_free(&run);
}

static int test_lv2info(const char *bundle_dir)
{
  const char *lv2info = getenv("LV2INFO");
  if (!lv2info) {
    printf("lv2info not found (package lilv-utils): skipped\n");
    return SKIP;
  }
  const char *common = "control notify input_gain output_gain mix knob1 "
                       "knob2 knob3 enabled latency normalize";
  char mono[512], stereo[512];
  snprintf(mono, sizeof(mono), "%s in out rate_mode quality", common);
  snprintf(stereo, sizeof(stereo),
           "%s in_l out_l in_r out_r rate_mode quality", common);
  check_lv2info(lv2info, "https://carry.audio/lv2/carry", "Carry", mono,
                bundle_dir);
  check_lv2info(lv2info, "https://carry.audio/lv2/carry-stereo",
                "Carry Stereo", stereo, bundle_dir);
  return test_finish("plugin_lv2info");
}

/* ------------------------------------------------------------------------ */
/* Turtle */

static size_t bundle_ttl_files(const char *bundle_dir, glob_t *files)
{
  char pattern[PATH_SIZE + 8];
  snprintf(pattern, sizeof(pattern), "%s/*.ttl", bundle_dir);
  return glob(pattern, 0, NULL, files) == 0 ? files->gl_pathc : 0;
}

static void check_syntax(const char *serdi, const glob_t *files)
{
  for (size_t k = 0; k < files->gl_pathc; ++k) {
    const char *argv[] = {serdi, "-i", "turtle", "-o", "ntriples",
                          files->gl_pathv[k], NULL};
    tool_run run = run_tool(argv);
    CHECK(run.exit_status == 0 && run.err && !run.err[0],
          "serdi %s: exit status %d: %s", files->gl_pathv[k],
          run.exit_status, run.err ? run.err : "");
    printf("serdi %s: exit status %d\n", files->gl_pathv[k], run.exit_status);
    tool_run_free(&run);
  }
}

/** sord_validate over every specification and the bundle's files. */
static void check_validation(const char *validate, const char *schemas,
                             const glob_t *bundle)
{
  char pattern[PATH_SIZE], expected[128];
  glob_t specs;
  if ((size_t)snprintf(pattern, sizeof(pattern), "%s/*.lv2/*.ttl", schemas) >=
      sizeof(pattern)) {
    pattern[0] = '\0';
  }
  const size_t n_specs = glob(pattern, 0, NULL, &specs) ? 0 : specs.gl_pathc;
  CHECK(n_specs > 10, "LV2 specification files under %s: %zu", schemas,
        n_specs);
  const char *argv[MAX_ARGS] = {validate};
  size_t n = 1;
  for (size_t k = 0; k < n_specs && n < MAX_ARGS - 16; ++k) {
    argv[n++] = specs.gl_pathv[k];
  }
  for (size_t k = 0; k < bundle->gl_pathc && n < MAX_ARGS - 1; ++k) {
    argv[n++] = bundle->gl_pathv[k];
  }
  argv[n] = NULL;
  tool_run run = run_tool(argv);
  snprintf(expected, sizeof(expected), "Found 0 errors among %zu files",
           n - 1);
  CHECK(run.exit_status == 0 && run.out && strstr(run.out, expected) &&
        run.err && !run.err[0],
        "sord_validate: exit status %d, expected '%s':\n%s%s",
        run.exit_status, expected, run.out ? run.out : "",
        run.err ? run.err : "");
  printf("sord_validate: %s", run.out ? run.out : "(no output)\n");
  tool_run_free(&run);
  if (n_specs) {
    globfree(&specs);
  }
}

static int test_turtle(const char *bundle_dir)
{
  const char *serdi = getenv("SERDI"), *validate = getenv("SORD_VALIDATE");
  const char *schemas = getenv("CARRY_LV2_SCHEMAS");
  if (!serdi || !validate || !schemas) {
    printf("serdi or sord_validate not found (packages serdi, sordi): "
           "skipped\n");
    return SKIP;
  }
  glob_t files;
  const size_t n_files = bundle_ttl_files(bundle_dir, &files);
  CHECK(n_files == 3, "the bundle has manifest.ttl, carry.ttl and "
        "presets.ttl: found %zu .ttl files", n_files);
  if (n_files) {
    check_syntax(serdi, &files);
    check_validation(validate, schemas, &files);
    globfree(&files);
  }
  return test_finish("plugin_turtle");
}

int main(int argc, char **argv)
{
  const char *bundle_dir = getenv("CARRY_BUNDLE_DIR");
  char real[PATH_SIZE];
  if (argc != 2 || !bundle_dir || !realpath(bundle_dir, real)) {
    fprintf(stderr, "usage: test_plugin_ttl lv2info|turtle, with "
            "CARRY_BUNDLE_DIR set to the built bundle\n");
    return 99;
  }
  if (!strcmp(argv[1], "lv2info")) {
    return test_lv2info(real);
  }
  if (!strcmp(argv[1], "turtle")) {
    return test_turtle(real);
  }
  fprintf(stderr, "unknown check '%s'\n", argv[1]);
  return 99;
}
