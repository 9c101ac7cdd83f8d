/*
  Self-tests in model files: the "input_batch" and "output_batch" arrays
  that AIDA-X exports put beside a Keras model (FORMATS.md, section 1).

  Exporters nest the arrays differently ([T][1][N], [1][T][N], flat...),
  so they are read as flat lists of numbers in order.  Like the model
  readers, the reader walks the document twice: once to check every value
  and count them, allocating nothing, then to store them.
*/

#include "loaders.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Flattening the arrays */

/** Checks that `value` is a finite number or an array of such (nested to
    any depth) and stores its numbers in order at `out` (if not NULL),
    counting them in `n`. */
static carry_status flatten(const carry_json_path *at, const json_t *value,
                            float *out, size_t *n)
{
  if (json_is_number(value)) {
    carry_status st = carry_json_float(at, value, out ? out + *n : NULL);
    *n += !st;
    return st;
  }
  if (!json_is_array(value)) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(at, CARRY_ERR_FORMAT, "expected %s, found %s",
                           at->key ? "an array of numbers" : "a number",
                           found);
  }
  carry_status st = CARRY_SUCCESS;
  for (size_t k = 0; !st && k < json_array_size(value); ++k) {
    const carry_json_path element = carry_json_path_index(at, k);
    st = flatten(&element, json_array_get(value, k), out, n);
  }
  return st;
}

/** The numbers of the member `key`, checked and counted (out NULL) or
    stored. */
static carry_status read_batch(const carry_json_path *root, const json_t *doc,
                               const char *key, float *out, size_t *n)
{
  const carry_json_path at = carry_json_path_key(root, key);
  *n = 0;
  return flatten(&at, json_object_get(doc, key), out, n);
}

/** An absent or null member: Python exporters write None for "nothing". */
static bool is_absent(const json_t *doc, const char *key)
{
  const json_t *value = json_object_get(doc, key);
  return !value || json_is_null(value);
}

/** Checks that the file has both arrays or neither; sets `has_test`. */
static carry_status check_keys(const carry_json_path *at, const json_t *doc,
                               bool *has_test)
{
  const bool has_input = !is_absent(doc, "input_batch");
  const bool has_output = !is_absent(doc, "output_batch");
  *has_test = has_input && has_output;
  if (has_input != has_output) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected an \"%s\" key beside \"%s\", found none",
                           has_input ? "output_batch" : "input_batch",
                           has_input ? "input_batch" : "output_batch");
  }
  return CARRY_SUCCESS;
}

/** Checks the counts against each other: N inputs per output. */
static carry_status check_counts(const carry_json_path *at, size_t n_in,
                                 size_t n_out, int n_inputs)
{
  if (n_out == 0) {
    return carry_json_fail(at, CARRY_ERR_SHAPE,
                           "expected at least one number in output_batch, "
                           "found none");
  }
  if (n_in / (size_t)n_inputs != n_out || n_in % (size_t)n_inputs) {
    return carry_json_fail(at, CARRY_ERR_SHAPE,
                           "input_batch holds %zu numbers and output_batch "
                           "%zu: expected %d input%s per output (%zu in "
                           "input_batch)", n_in, n_out, n_inputs,
                           n_inputs == 1 ? "" : "s", n_out * (size_t)n_inputs);
  }
  return CARRY_SUCCESS;
}

static carry_self_test *new_test(size_t n_samples, int n_inputs)
{
  carry_self_test *test = calloc(1, sizeof(*test));
  if (test && n_samples) {
    test->input = malloc(n_samples * (size_t)n_inputs * sizeof(float));
    test->expected = malloc(n_samples * sizeof(float));
    if (!test->input || !test->expected) {
      carry_self_test_free(test);
      return NULL;
    }
  }
  if (test) {
    test->n_inputs = n_inputs;
    test->n_samples = n_samples;
  }
  return test;
}

static carry_self_test *read_test(const json_t *doc, const carry_json_path *at,
                                  int n_inputs)
{
  bool has_test = false;
  size_t n_in = 0, n_out = 0;
  carry_status st = carry_json_object(at, doc);
  if (!st) st = check_keys(at, doc, &has_test);
  if (!st && has_test) st = read_batch(at, doc, "input_batch", NULL, &n_in);
  if (!st && has_test) st = read_batch(at, doc, "output_batch", NULL, &n_out);
  if (!st && has_test) st = check_counts(at, n_in, n_out, n_inputs);
  if (st) {
    return NULL;
  }
  carry_self_test *test = new_test(n_out, n_inputs);
  if (!test) {
    carry_json_fail(at, CARRY_ERR_NO_MEMORY,
                    "out of memory for a self-test of %zu samples", n_out);
    return NULL;
  }
  if (has_test) {
    read_batch(at, doc, "input_batch", test->input, &n_in);
    read_batch(at, doc, "output_batch", test->expected, &n_out);
  }
  return test;
}

carry_self_test *carry_self_test_load(const char *path, int n_inputs,
                                      carry_error *err)
{
  if (!path || n_inputs < 1 || n_inputs > CARRY_MAX_INPUTS) {
    carry_fail(err, CARRY_ERR_BAD_ARG, "no file, or %d inputs", n_inputs);
    return NULL;
  }
  json_t *doc = carry_json_parse_file(path, path, err);
  if (!doc) {
    return NULL;
  }
  const carry_json_path at = carry_json_path_root(path, err);
  carry_self_test *test = read_test(doc, &at, n_inputs);
  json_decref(doc);
  if (test) {
    carry_succeed(err);
  }
  return test;
}

void carry_self_test_free(carry_self_test *test)
{
  if (test) {
    free(test->input);
    free(test->expected);
    free(test);
  }
}

/* ------------------------------------------------------------------------ */
/* Writing the arrays back */

/** A growing text that remembers a failed allocation. */
typedef struct {
  char *data;
  size_t length;
  size_t capacity;
  bool is_out_of_memory;
} text_buffer;

static void put(text_buffer *b, const char *text)
{
  const size_t n = strlen(text);
  if (b->is_out_of_memory || b->length + n + 1 <= b->capacity) {
    if (!b->is_out_of_memory) {
      memcpy(b->data + b->length, text, n + 1);
      b->length += n;
    }
    return;
  }
  size_t capacity = b->capacity ? b->capacity : 4096;
  while (capacity < b->length + n + 1) {
    capacity *= 2;
  }
  char *bigger = realloc(b->data, capacity);
  if (!bigger) {
    b->is_out_of_memory = true;
    return;
  }
  b->data = bigger;
  b->capacity = capacity;
  put(b, text);
}

/** The shortest decimal that reads back to exactly `value`, so that a
    converted file keeps its self-test bit for bit. */
static void put_float(text_buffer *b, float value)
{
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {
    snprintf(text, sizeof(text), "%.*g", digits, (double)value);
    if (strtof(text, NULL) == value) {
      break;
    }
  }
  put(b, text);
}

/** `values` as a JSON array, `per_row` numbers to an inner array when it
    is above 1, eight numbers or rows to a line. */
static void put_array(text_buffer *b, const float *values, size_t n_rows,
                      int per_row)
{
  put(b, "[");
  for (size_t r = 0; r < n_rows; ++r) {
    put(b, r == 0 ? "" : r % 8 ? ", " : ",\n    ");
    put(b, per_row > 1 ? "[" : "");
    for (int k = 0; k < per_row; ++k) {
      put(b, k ? ", " : "");
      put_float(b, values[r * (size_t)per_row + (size_t)k]);
    }
    put(b, per_row > 1 ? "]" : "");
  }
  put(b, "]");
}

static void put_test(text_buffer *b, const carry_self_test *test)
{
  put(b, "\"input_batch\": ");
  put_array(b, test->input, test->n_samples, test->n_inputs);
  put(b, ",\n  \"output_batch\": ");
  put_array(b, test->expected, test->n_samples, 1);
}

char *carry_self_test_to_json(const carry_self_test *test, carry_error *err)
{
  if (!test || !test->n_samples) {
    carry_fail(err, CARRY_ERR_BAD_ARG, "no self-test given");
    return NULL;
  }
  locale_t c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!c_numeric) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a locale");
    return NULL;
  }
  const locale_t previous = uselocale(c_numeric);
  text_buffer b = {NULL, 0, 0, false};
  put_test(&b, test);
  uselocale(previous);
  freelocale(c_numeric);
  if (b.is_out_of_memory) {
    free(b.data);
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory writing a self-test");
    return NULL;
  }
  carry_succeed(err);
  return b.data;
}
