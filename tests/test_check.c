/*
  `carry check` through the built command: the shipped suite passes; a
  wrong expected file, a plugin whose output depends on the block size and
  a plugin whose state does not restore (tests/lv2/broken.lv2/) fail with
  the right message; broken suites and arguments are usage errors that name
  the place.

  Environment (tests/meson.build): CARRY_EXE, CARRY_SOURCE_ROOT, LV2_PATH
  (the LV2 specifications, the build tree's carry.lv2 and broken.lv2).
*/

#include "harness.h"
#include "subprocess.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEXT_SIZE 65536
#define PATH_SIZE 4096

static char temp_dir[256];  // short, so that any name fits a path

/** What a run of the command gave. */
typedef struct outcome {
  int status;  ///< Exit status, or -1 if it did not exit normally
  char out[TEXT_SIZE];
  char err[TEXT_SIZE];
} outcome;

static const char *temp_path(const char *name)
{
  static char paths[4][PATH_SIZE];
  static int next = 0;
  char *path = paths[next++ % 4];
  snprintf(path, PATH_SIZE, "%s/%s", temp_dir, name);
  return path;
}

static void write_text(const char *path, const char *text)
{
  FILE *file = fopen(path, "w");
  if (file) {
    fputs(text, file);
    fclose(file);
  }
}

/** Runs `carry check` with up to 8 arguments (NULL-ended). */
static outcome *run_check(const char *first, ...)
{
  static outcome result;
  char *argv[12] = {getenv("CARRY_EXE"), "check"};
  va_list args;
  va_start(args, first);
  int n = 2;
  for (const char *arg = first; arg && n < 11; arg = va_arg(args, const char *)) {
    argv[n++] = (char *)arg;
  }
  va_end(args);
  // Copied: temp_path's buffers rotate, and an argument may be in one.
  char out_path[PATH_SIZE], err_path[PATH_SIZE];
  snprintf(out_path, sizeof(out_path), "%s/stdout", temp_dir);
  snprintf(err_path, sizeof(err_path), "%s/stderr", temp_dir);
  const subprocess_files files = {.out = out_path, .err = err_path};
  result.status = subprocess_wait(subprocess_start(argv, &files));
  subprocess_read_text(out_path, result.out, sizeof(result.out));
  subprocess_read_text(err_path, result.err, sizeof(result.err));
  return &result;
}

static bool expect(const outcome *result, int status, const char *needle)
{
  const bool is_found = strstr(result->out, needle) ||
                        strstr(result->err, needle);
  return CHECK(result->status == status && is_found,
               "expected status %d and '%s'; got %d\nstdout:\n%s\nstderr:\n%s",
               status, needle, result->status, result->out, result->err);
}

/* ------------------------------------------------------------------------ */
/* Suites that must pass or fail */

static void test_shipped_suite(void)
{
  const char *junit = temp_path("presets.xml");
  outcome *result = run_check(test_source_path("tests/check/presets.json"),
                              "--junit", junit, NULL);
  expect(result, 0, "6 of 6 cases passed");
  CHECK(!strstr(result->out, "FAIL"), "a shipped case failed:\n%s",
        result->out);
  char xml[TEXT_SIZE];
  subprocess_read_text(junit, xml, sizeof(xml));
  CHECK(strstr(xml, "tests=\"6\" failures=\"0\"") &&
          strstr(xml, "name=\"diode-clipper\""),
        "JUnit report:\n%s", xml);
}

/* Carry resamples its 48 kHz model at 44.1 kHz (130 samples of latency)
   and delays the dry path as much: at mix 0 the output is the input that
   much later, and cross-correlation finds it. */
static void test_latency(void)
{
  outcome *result = run_check(test_source_path("tests/check/latency.json"),
                              "--blocks", "64,random", NULL);
  expect(result, 0, "2 of 2 cases passed");
}

static void test_wrong_expected_file(void)
{
  const char *plots = temp_path("plots");
  outcome *result = run_check(
    test_source_path("tests/check/wrong-expected.json"), "--plot", plots,
    "--junit", temp_path("wrong.xml"), NULL);
  expect(result, 1, "FAIL: max abs error");
  expect(result, 1, "0 of 1 cases passed");
  char png[16];
  subprocess_read_text(temp_path("plots/diode-clipper-vs-fuzz.png"), png, sizeof(png));
  CHECK(!memcmp(png, "\x89PNG", 4), "no PNG written for the failing case");
  char xml[TEXT_SIZE];
  subprocess_read_text(temp_path("wrong.xml"), xml, sizeof(xml));
  CHECK(strstr(xml, "failures=\"1\"") && strstr(xml, "<failure message=\"max"),
        "JUnit report:\n%s", xml);
}

static void test_block_size_dependence(void)
{
  const char *suite = test_source_path("tests/check/broken-blocks.json");
  expect(run_check(suite, NULL), 1,
         "FAIL: output depends on the block size: block 64 differs from "
         "block 1");
  // A control: the same block size twice agrees with itself.
  expect(run_check(suite, "--blocks", "256,256", NULL), 0,
         "1 of 1 cases passed");
}

static void test_state_that_does_not_restore(void)
{
  // The level range holds only with the preset's gain of one half, so the
  // runs before the restore did use the preset.
  expect(run_check(test_source_path("tests/check/broken-state.json"), NULL),
         1, "FAIL: state does not restore: a fresh instance restored from "
            "the saved state differs");
}

/* ------------------------------------------------------------------------ */
/* Recording */

static void test_record(void)
{
  const char *suite = temp_path("record.json");
  write_text(suite,
             "{\"cases\": [{\"name\": \"soft\", \"plugin\": "
             "\"https://carry.audio/lv2/carry\", \"preset\": "
             "\"https://carry.audio/lv2/presets/soft-clip\", \"controls\": "
             "{\"output_gain\": -6}, \"input\": {\"stimulus\": \"sweep\", "
             "\"seconds\": 0.3}, \"expect\": {\"file\": \"new/soft.wav\", "
             "\"max_abs\": 0}}]}");
  expect(run_check(suite, "--blocks", "64,random", NULL), 1,
         "--record writes it");
  expect(run_check(suite, "--record", "--blocks", "64", NULL), 0,
         "pass: recorded");
  expect(run_check(suite, "--blocks", "64,random,4096", NULL), 0,
         "1 of 1 cases passed");
}

/* ------------------------------------------------------------------------ */
/* Bad suites and arguments */

typedef struct bad_suite {
  const char *json;
  const char *message;  ///< After "bad.json: "
} bad_suite;

static void test_bad_suites(void)
{
  static const bad_suite cases[] = {
    {"{\"cases\": [{\"name\": \"a\", \"plugin\": \"urn:x\", \"expect\": "
     "{\"file\": \"a.wav\", \"esr\": \"small\"}}]}",
     "cases[0].expect.esr: expected a number"},
    {"{\"cases\": [{\"name\": \"a\", \"expect\": {\"finite\": true}}]}",
     "cases[0].plugin: missing (expected a string)"},
    {"{\"cases\": [{\"name\": \"a\", \"plugin\": \"urn:x\", \"expect\": "
     "{\"finit\": true}}]}",
     "cases[0].expect.finit: unknown key"},
    {"{\"cases\": [{\"name\": \"a\", \"plugin\": \"urn:x\", \"input\": "
     "{\"stimulus\": \"pink\"}, \"expect\": {\"finite\": true}}]}",
     "cases[0].input.stimulus: expected \"impulse\""},
    {"{\"cases\": [{\"name\": \"a\", \"plugin\": \"urn:x\", \"expect\": "
     "{\"file\": \"a.wav\"}}]}",
     "cases[0].expect.file: needs a tolerance"},
    {"{\"cases\": [{\"name\": \"a\", \"plugin\": \"urn:x\", \"expect\": "
     "{\"finite\": true}}, {\"name\": \"a\", \"plugin\": \"urn:x\", "
     "\"expect\": {\"finite\": true}}]}",
     "cases[1].name: \"a\" is also the name of cases[0]"},
    {"{\"cases\": []}", "cases: expected a non-empty array"},
    {"{\"cases\": [", "line 1"},
  };
  const char *suite = temp_path("bad.json");
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    write_text(suite, cases[k].json);
    char message[512];
    snprintf(message, sizeof(message), "bad.json: %s", cases[k].message);
    expect(run_check(suite, NULL), 2, message);
  }
}

static void test_failures_at_run_time(void)
{
  const char *suite = temp_path("runtime.json");
  write_text(suite, "{\"cases\": [{\"name\": \"nope\", \"plugin\": "
                    "\"urn:carry:test:no-such-plugin\", \"expect\": "
                    "{\"finite\": true}}]}");
  expect(run_check(suite, NULL), 1, "FAIL: plugin urn:carry:test:no-such-"
                                    "plugin: not found");
  write_text(suite, "{\"cases\": [{\"name\": \"knob\", \"plugin\": "
                    "\"urn:carry:test:forgetful\", \"controls\": "
                    "{\"volume\": 1}, \"expect\": {\"finite\": true}}]}");
  expect(run_check(suite, NULL), 1, "FAIL: controls.volume: "
                                    "urn:carry:test:forgetful has no control");
  write_text(suite, "{\"cases\": [{\"name\": \"late\", \"plugin\": "
                    "\"urn:carry:test:forgetful\", \"expect\": "
                    "{\"latency\": \"reported\"}}]}");
  expect(run_check(suite, NULL), 1, "FAIL: latency: the plugin reports none");
  // A model Carry refuses: the case fails with the plugin's own status.
  char json[1024];
  snprintf(json, sizeof(json),
           "{\"cases\": [{\"name\": \"broken-model\", \"plugin\": "
           "\"https://carry.audio/lv2/carry\", \"model\": \"%s\", "
           "\"expect\": {\"finite\": true}}]}",
           test_source_path("tests/models/bad_kernel_rows.json"));
  write_text(suite, json);
  expect(run_check(suite, "--blocks", "64", NULL), 1,
         "FAIL: the plugin says error: bad_kernel_rows.json: layers[1]");
}

static void test_bad_arguments(void)
{
  const char *suite = test_source_path("tests/check/broken-blocks.json");
  expect(run_check(NULL), 2, "missing the suite file");
  expect(run_check(suite, "--blocks", "0,64", NULL), 2,
         "--blocks: expected sizes from 1 to 1048576 or 'random', not '0'");
  expect(run_check(suite, "--case", "nothing", NULL), 2,
         "no case named 'nothing'");
  expect(run_check(suite, "--plot-all", NULL), 2, "--plot-all needs --plot");
  expect(run_check(temp_path("missing.json"), NULL), 2, "missing.json");
}

int main(void)
{
  snprintf(temp_dir, sizeof(temp_dir), "/tmp/carry-test-check-XXXXXX");
  if (!mkdtemp(temp_dir) || !getenv("CARRY_EXE")) {
    fprintf(stderr, "no temporary directory or no CARRY_EXE\n");
    return 1;
  }
  test_shipped_suite();
  test_latency();
  test_wrong_expected_file();
  test_block_size_dependence();
  test_state_that_does_not_restore();
  test_record();
  test_bad_suites();
  test_failures_at_run_time();
  test_bad_arguments();
  char command[PATH_SIZE + 16];
  snprintf(command, sizeof(command), "rm -rf '%s'", temp_dir);
  if (test_failures == 0 && system(command) != 0) {
    fprintf(stderr, "could not remove %s\n", temp_dir);
  }
  return test_finish("check");
}
