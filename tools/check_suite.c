/*
  The suite file of `carry check`: JSON read with jansson into check_case
  values.  Every error names the file and the JSON path of the value.
*/

#include "check.h"

#include <jansson.h>

#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Where a parse is, for messages: "suite.json: cases[2].expect". */
typedef struct place {
  const char *file;
  char path[256];
  char *message;
  size_t size;
} place;

static bool fail(place *at, const char *key, const char *format, ...)
  __attribute__((format(printf, 3, 4)));

static bool fail(place *at, const char *key, const char *format, ...)
{
  char what[512];
  va_list args;
  va_start(args, format);
  vsnprintf(what, sizeof(what), format, args);
  va_end(args);
  snprintf(at->message, at->size, "%s: %s%s%s: %s", at->file, at->path,
           key && at->path[0] ? "." : "", key ? key : "", what);
  return false;
}

static char *copy_text(const char *text)
{
  char *copy = malloc(strlen(text) + 1);
  if (copy) {
    strcpy(copy, text);
  }
  return copy;
}

/** A path relative to the suite's directory made absolute (or as given,
    when already absolute). */
static char *resolve_path(const char *suite_path, const char *path)
{
  if (path[0] == '/') {
    return copy_text(path);
  }
  char *suite_copy = copy_text(suite_path);
  if (!suite_copy) {
    return NULL;
  }
  const char *dir = dirname(suite_copy);
  const size_t n = strlen(dir) + strlen(path) + 2;
  char *joined = malloc(n);
  if (joined) {
    snprintf(joined, n, "%s/%s", dir, path);
  }
  free(suite_copy);
  return joined;
}

/* ------------------------------------------------------------------------ */
/* Values */

static bool get_string(place *at, json_t *object, const char *key,
                       bool is_required, char **value)
{
  json_t *item = json_object_get(object, key);
  if (!item) {
    return !is_required || fail(at, key, "missing (expected a string)");
  }
  if (!json_is_string(item) || !json_string_length(item)) {
    return fail(at, key, "expected a non-empty string");
  }
  *value = copy_text(json_string_value(item));
  return *value || fail(at, key, "out of memory");
}

static bool get_number(place *at, json_t *object, const char *key,
                       double min, double max, double *value)
{
  json_t *item = json_object_get(object, key);
  if (!item) {
    return true;  // keeps the default
  }
  if (!json_is_number(item)) {
    return fail(at, key, "expected a number");
  }
  const double number = json_number_value(item);
  if (!(number >= min && number <= max)) {
    return fail(at, key, "expected a number from %g to %g, found %g", min,
                max, number);
  }
  *value = number;
  return true;
}

static bool get_true(place *at, json_t *object, const char *key, bool *value)
{
  json_t *item = json_object_get(object, key);
  if (!item) {
    return true;
  }
  if (!json_is_true(item)) {
    return fail(at, key, "expected true (leave it out to not check)");
  }
  *value = true;
  return true;
}

/** Fails on any key of `object` that is not in `known` (NULL-ended), so
    that a misspelt key is not silently ignored. */
static bool only_keys(place *at, json_t *object, const char *const *known)
{
  const char *key;
  json_t *value;
  json_object_foreach(object, key, value) {
    bool is_known = false;
    for (size_t k = 0; known[k]; ++k) {
      is_known = is_known || !strcmp(key, known[k]);
    }
    if (!is_known) {
      return fail(at, key, "unknown key");
    }
  }
  return true;
}

/* ------------------------------------------------------------------------ */
/* Parts of a case */

static bool parse_controls(place *at, json_t *object, check_case *test)
{
  json_t *controls = json_object_get(object, "controls");
  if (!controls) {
    return true;
  }
  if (!json_is_object(controls)) {
    return fail(at, "controls", "expected an object {symbol: value}");
  }
  test->controls = calloc(json_object_size(controls) + 1,
                          sizeof(check_control));
  if (!test->controls) {
    return fail(at, "controls", "out of memory");
  }
  const char *symbol;
  json_t *value;
  json_object_foreach(controls, symbol, value) {
    if (!json_is_number(value)) {
      char key[200];
      snprintf(key, sizeof(key), "controls.%s", symbol);
      return fail(at, key, "expected a number");
    }
    check_control *control = &test->controls[test->n_controls++];
    control->symbol = copy_text(symbol);
    control->value = (float)json_number_value(value);
    if (!control->symbol) {
      return fail(at, "controls", "out of memory");
    }
  }
  return true;
}

static bool parse_stimulus(place *at, json_t *input, check_stimulus *stimulus)
{
  static const char *const keys[] = {"stimulus", "seconds", "frequency",
                                     "level_db", "seed", NULL};
  static const char *const kinds[] = {"impulse", "sine", "sweep", "noise",
                                      "guitar", NULL};
  const size_t length = strlen(at->path);
  snprintf(at->path + length, sizeof(at->path) - length, ".input");
  if (!only_keys(at, input, keys)) {
    return false;
  }
  json_t *kind = json_object_get(input, "stimulus");
  bool is_known = false;
  for (size_t k = 0; kinds[k] && json_is_string(kind); ++k) {
    is_known = is_known || !strcmp(json_string_value(kind), kinds[k]);
  }
  if (!is_known) {
    return fail(at, "stimulus", "expected \"impulse\", \"sine\", \"sweep\", "
                                "\"noise\" or \"guitar\"");
  }
  snprintf(stimulus->kind, sizeof(stimulus->kind), "%s",
           json_string_value(kind));
  stimulus->level_db = strcmp(stimulus->kind, "guitar") ? -6.0 : -3.0;
  double seed = 1.0;
  const bool is_valid =
    get_number(at, input, "seconds", 0.001, 600.0, &stimulus->seconds) &&
    get_number(at, input, "frequency", 1.0, 1e6, &stimulus->frequency) &&
    get_number(at, input, "level_db", -200.0, 0.0, &stimulus->level_db) &&
    get_number(at, input, "seed", 0.0, 9007199254740992.0, &seed);
  stimulus->seed = (uint64_t)seed;
  at->path[length] = '\0';
  return is_valid;
}

static bool parse_input(place *at, json_t *object, const char *suite_path,
                        check_case *test)
{
  json_t *input = json_object_get(object, "input");
  test->stimulus = (check_stimulus){"impulse", 1.0, 1000.0, -6.0, 1};
  if (!input) {
    return true;  // an impulse: the plugin's response
  }
  if (json_is_string(input)) {
    test->input_file = resolve_path(suite_path, json_string_value(input));
    return test->input_file || fail(at, "input", "out of memory");
  }
  if (!json_is_object(input)) {
    return fail(at, "input", "expected a file name or {\"stimulus\": ...}");
  }
  return parse_stimulus(at, input, &test->stimulus);
}

static bool parse_level(place *at, json_t *expect, check_case *test)
{
  json_t *level = json_object_get(expect, "level_db");
  if (!level) {
    return true;
  }
  if (!json_is_array(level) || json_array_size(level) != 2 ||
      !json_is_number(json_array_get(level, 0)) ||
      !json_is_number(json_array_get(level, 1))) {
    return fail(at, "level_db", "expected [min, max] in dBFS");
  }
  test->has_level = true;
  test->level_min_db = json_number_value(json_array_get(level, 0));
  test->level_max_db = json_number_value(json_array_get(level, 1));
  return test->level_min_db <= test->level_max_db ||
         fail(at, "level_db", "expected min <= max");
}

static bool parse_latency(place *at, json_t *expect, check_case *test)
{
  json_t *latency = json_object_get(expect, "latency");
  if (!latency) {
    return true;
  }
  if (!json_is_string(latency) ||
      strcmp(json_string_value(latency), "reported")) {
    return fail(at, "latency", "expected \"reported\"");
  }
  test->expects_latency = true;
  return true;
}

static bool parse_expect(place *at, json_t *object, const char *suite_path,
                         check_case *test)
{
  static const char *const keys[] = {"file", "max_abs", "esr", "finite",
                                     "no_denormals", "level_db", "latency",
                                     NULL};
  test->max_abs = test->esr = -1.0;
  json_t *expect = json_object_get(object, "expect");
  if (!expect || !json_is_object(expect)) {
    return fail(at, "expect", "expected an object (a file or properties)");
  }
  const size_t length = strlen(at->path);
  snprintf(at->path + length, sizeof(at->path) - length, ".expect");
  char *file = NULL;
  bool is_valid =
    only_keys(at, expect, keys) && get_string(at, expect, "file", false, &file) &&
    get_number(at, expect, "max_abs", 0.0, 1e9, &test->max_abs) &&
    get_number(at, expect, "esr", 0.0, 1e9, &test->esr) &&
    get_true(at, expect, "finite", &test->expects_finite) &&
    get_true(at, expect, "no_denormals", &test->expects_no_denormals) &&
    parse_level(at, expect, test) && parse_latency(at, expect, test);
  if (is_valid && file) {
    test->expect_file = resolve_path(suite_path, file);
    is_valid = test->expect_file || fail(at, "file", "out of memory");
  }
  if (is_valid && file && test->max_abs < 0.0 && test->esr < 0.0) {
    is_valid = fail(at, "file", "needs a tolerance: max_abs, esr or both");
  }
  if (is_valid && !file && (test->max_abs >= 0.0 || test->esr >= 0.0)) {
    is_valid = fail(at, "max_abs", "a tolerance needs an expected file");
  }
  free(file);
  at->path[length] = '\0';
  return is_valid;
}

/* ------------------------------------------------------------------------ */
/* Cases */

static bool parse_case(place *at, json_t *object, const char *suite_path,
                       check_case *test)
{
  static const char *const keys[] = {"name", "plugin", "preset", "model",
                                     "controls", "rate", "input", "expect",
                                     NULL};
  if (!json_is_object(object)) {
    return fail(at, NULL, "expected an object");
  }
  char *model = NULL;
  test->rate = 48000.0;
  bool is_valid =
    only_keys(at, object, keys) &&
    get_string(at, object, "name", true, &test->name) &&
    get_string(at, object, "plugin", true, &test->plugin) &&
    get_string(at, object, "preset", false, &test->preset) &&
    get_string(at, object, "model", false, &model) &&
    get_number(at, object, "rate", 8000.0, 768000.0, &test->rate) &&
    parse_controls(at, object, test) &&
    parse_input(at, object, suite_path, test) &&
    parse_expect(at, object, suite_path, test);
  if (is_valid && model) {
    test->model = resolve_path(suite_path, model);
    is_valid = test->model || fail(at, "model", "out of memory");
  }
  free(model);
  return is_valid;
}

static bool names_are_unique(place *at, const check_suite *suite)
{
  for (size_t i = 0; i < suite->n_cases; ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!strcmp(suite->cases[i].name, suite->cases[j].name)) {
        snprintf(at->path, sizeof(at->path), "cases[%zu]", i);
        return fail(at, "name", "\"%s\" is also the name of cases[%zu]",
                    suite->cases[i].name, j);
      }
    }
  }
  return true;
}

static bool parse_cases(place *at, json_t *root, check_suite *suite)
{
  json_t *cases = json_is_object(root) ? json_object_get(root, "cases")
                                       : NULL;
  if (!json_is_array(cases) || !json_array_size(cases)) {
    return fail(at, "cases", "expected a non-empty array of cases");
  }
  suite->cases = calloc(json_array_size(cases), sizeof(check_case));
  if (!suite->cases) {
    return fail(at, "cases", "out of memory");
  }
  for (size_t k = 0; k < json_array_size(cases); ++k) {
    snprintf(at->path, sizeof(at->path), "cases[%zu]", k);
    ++suite->n_cases;
    if (!parse_case(at, json_array_get(cases, k), suite->path,
                    &suite->cases[k])) {
      return false;
    }
  }
  return names_are_unique(at, suite);
}

bool check_suite_load(const char *path, check_suite *suite, char *message,
                      size_t size)
{
  memset(suite, 0, sizeof(*suite));
  place at = {path, "", message, size};
  json_error_t error;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
  if (!root) {
    snprintf(message, size, "%s: line %d, column %d: %s", path, error.line,
             error.column, error.text);
    return false;
  }
  suite->path = copy_text(path);
  const bool is_valid = suite->path && parse_cases(&at, root, suite);
  json_decref(root);
  if (!is_valid) {
    check_suite_free(suite);
  }
  return is_valid;
}

static void case_free(check_case *test)
{
  free(test->name);
  free(test->plugin);
  free(test->preset);
  free(test->model);
  for (size_t k = 0; k < test->n_controls; ++k) {
    free(test->controls[k].symbol);
  }
  free(test->controls);
  free(test->input_file);
  free(test->expect_file);
}

void check_suite_free(check_suite *suite)
{
  for (size_t k = 0; k < suite->n_cases; ++k) {
    case_free(&suite->cases[k]);
  }
  free(suite->cases);
  free(suite->path);
  memset(suite, 0, sizeof(*suite));
}

bool check_suite_select(check_suite *suite, const char *name)
{
  size_t found = suite->n_cases;
  for (size_t k = 0; k < suite->n_cases; ++k) {
    found = !strcmp(suite->cases[k].name, name) ? k : found;
  }
  if (found == suite->n_cases) {
    return false;
  }
  for (size_t k = 0; k < suite->n_cases; ++k) {
    if (k != found) {
      case_free(&suite->cases[k]);
    }
  }
  suite->cases[0] = suite->cases[found];
  suite->n_cases = 1;
  return true;
}
