/*
  JSON paths and typed getters for the model readers (see json_path.h).
*/

#include "json_path.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Paths */

carry_json_path carry_json_path_root(const char *file, carry_error *err)
{
  return (carry_json_path){NULL, NULL, 0, file, err};
}

carry_json_path carry_json_path_key(const carry_json_path *parent,
                                    const char *key)
{
  return (carry_json_path){parent, key, 0, parent->file, parent->err};
}

carry_json_path carry_json_path_index(const carry_json_path *parent,
                                      size_t index)
{
  return (carry_json_path){parent, NULL, index, parent->file, parent->err};
}

/** Whether a key reads unambiguously after a dot: PyTorch names such as
    "rec.weight_ih_l0" hold dots themselves, so they are quoted. */
static bool is_plain_key(const char *key)
{
  return key[0] && strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789_-") ==
                     strlen(key);
}

/** Appends `at` after its ancestors; returns the length it would have. */
static size_t format_into(const carry_json_path *at, char *text, size_t size)
{
  if (!at->parent) {
    return 0;
  }
  const size_t used = format_into(at->parent, text, size);
  if (used >= size) {
    return used;
  }
  const char *dot = used ? "." : "";
  const int n = !at->key ? snprintf(text + used, size - used, "[%zu]",
                                    at->index)
                : is_plain_key(at->key)
                  ? snprintf(text + used, size - used, "%s%s", dot, at->key)
                  : snprintf(text + used, size - used, "%s\"%s\"", dot,
                             at->key);
  return used + (n > 0 ? (size_t)n : 0);
}

void carry_json_path_format(const carry_json_path *at, char *text, size_t size)
{
  if (size > 0) {
    text[0] = '\0';
    format_into(at, text, size);
  }
}

carry_status carry_json_fail(const carry_json_path *at, carry_status status,
                             const char *format, ...)
{
  char where[256];
  char what[CARRY_MESSAGE_SIZE];
  va_list args;
  va_start(args, format);
  vsnprintf(what, sizeof(what), format, args);
  va_end(args);
  carry_json_path_format(at, where, sizeof(where));
  if (where[0]) {
    return carry_fail(at->err, status, "%s: %s: %s", at->file, where, what);
  }
  return carry_fail(at->err, status, "%s: %s", at->file, what);
}

/* ------------------------------------------------------------------------ */
/* Text for messages */

const char *carry_json_kind(const json_t *value)
{
  switch (value ? json_typeof(value) : JSON_NULL) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  case JSON_NULL: return value ? "null" : "nothing";
  }
  return "an unknown value";
}

void carry_json_copy_utf8(char *dst, size_t size, const char *src)
{
  if (size > 0) {
    const size_t n = carry_utf8_prefix(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
  }
}

void carry_json_quote(const char *src, char *text, size_t size)
{
  enum { MAX_QUOTED = 40 };
  char excerpt[MAX_QUOTED + 1];
  carry_json_copy_utf8(excerpt, sizeof(excerpt), src);
  for (char *c = excerpt; *c; ++c) {
    *c = ((unsigned char)*c < 0x20u || *c == 0x7f) ? '?' : *c;
  }
  snprintf(text, size, "\"%s%s\"", excerpt,
           strlen(src) > strlen(excerpt) ? "..." : "");
}

void carry_json_describe(const json_t *value, char *text, size_t size)
{
  char quoted[64];
  switch (value ? json_typeof(value) : JSON_NULL) {
  case JSON_STRING:
    carry_json_quote(json_string_value(value), quoted, sizeof(quoted));
    snprintf(text, size, "the string %s", quoted);
    break;
  case JSON_INTEGER:
    snprintf(text, size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    break;
  case JSON_REAL: snprintf(text, size, "%g", json_real_value(value)); break;
  case JSON_ARRAY:
    snprintf(text, size, "an array of %zu", json_array_size(value));
    break;
  default: snprintf(text, size, "%s", carry_json_kind(value)); break;
  }
}

bool carry_json_parse_number(const char *text, double *value)
{
  // Only plain decimal numbers: strtod alone would also take "nan", "inf",
  // hexadecimal and leading spaces.
  if (!text[0] || strspn(text, "0123456789+-.eE") != strlen(text)) {
    return false;
  }
  locale_t c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!c_numeric) {
    return false;
  }
  const locale_t previous = uselocale(c_numeric);
  char *end = NULL;
  *value = strtod(text, &end);
  uselocale(previous);
  freelocale(c_numeric);
  return end != text && *end == '\0';
}

/* ------------------------------------------------------------------------ */
/* Getters */

const json_t *carry_json_optional(const json_t *object, const char *key)
{
  const json_t *value = json_object_get(object, key);
  return json_is_null(value) ? NULL : value;
}

carry_status carry_json_object(const carry_json_path *at, const json_t *value)
{
  if (!json_is_object(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected an object, found %s",
                           carry_json_kind(value));
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_require(const carry_json_path *at,
                                const json_t *object, const char *key,
                                const json_t **member)
{
  *member = json_object_get(object, key);
  if (!*member) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a \"%s\" key, found none", key);
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_string(const carry_json_path *at, const json_t *value,
                               const char **out)
{
  if (!json_is_string(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a string, found %s",
                           carry_json_kind(value));
  }
  *out = json_string_value(value);
  return CARRY_SUCCESS;
}

static carry_status check_range(const carry_json_path *at, const json_t *value,
                                double number, double lo, double hi,
                                const char *what)
{
  if (!(number >= lo && number <= hi)) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(at, CARRY_ERR_VALUE, "expected %s, found %s", what,
                           found);
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_number(const carry_json_path *at, const json_t *value,
                               double lo, double hi, const char *what,
                               double *out)
{
  if (!json_is_number(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a number, found %s",
                           carry_json_kind(value));
  }
  *out = json_number_value(value);
  return check_range(at, value, *out, lo, hi, what);
}

carry_status carry_json_numeric(const carry_json_path *at, const json_t *value,
                                double lo, double hi, const char *what,
                                double *out)
{
  if (json_is_number(value)) {
    return carry_json_number(at, value, lo, hi, what, out);
  }
  if (!json_is_string(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a number or a numeric string, found %s",
                           carry_json_kind(value));
  }
  if (!carry_json_parse_number(json_string_value(value), out)) {
    *out = NAN; // fails the range check, which names the string
  }
  return check_range(at, value, *out, lo, hi, what);
}

carry_status carry_json_float(const carry_json_path *at, const json_t *value,
                              float *out)
{
  if (!json_is_number(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a number, found %s",
                           carry_json_kind(value));
  }
  const float number = (float)json_number_value(value);
  if (!isfinite(number)) {
    return carry_json_fail(at, CARRY_ERR_VALUE,
                           "expected a number within float range "
                           "(+/-3.4e38), found %g",
                           json_number_value(value));
  }
  if (out) {
    *out = number;
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_int(const carry_json_path *at, const json_t *value,
                            int lo, int hi, const char *unit,
                            carry_status range_status, int *out)
{
  const double number = json_number_value(value);
  if (!json_is_number(value) || number != floor(number)) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a whole number of %s, found %s", unit,
                           found);
  }
  if (number < lo || number > hi) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(at, range_status, "expected %d to %d %s, found %s",
                           lo, hi, unit, found);
  }
  *out = (int)number;
  return CARRY_SUCCESS;
}

carry_status carry_json_flag(const carry_json_path *at, const json_t *value,
                             bool *out)
{
  const double number = json_number_value(value);
  if (json_is_boolean(value)) {
    *out = json_is_true(value);
  } else if (json_is_number(value) && (number == 0.0 || number == 1.0)) {
    *out = number == 1.0;
  } else {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(at, CARRY_ERR_VALUE,
                           "expected 0, 1, true or false, found %s", found);
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_array(const carry_json_path *at, const json_t *value,
                              size_t n, const char *what)
{
  if (!json_is_array(value)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected an array of %zu %s, found %s", n, what,
                           carry_json_kind(value));
  }
  if (json_array_size(value) != n) {
    return carry_json_fail(at, CARRY_ERR_SHAPE, "expected %zu %s, found %zu",
                           n, what, json_array_size(value));
  }
  return CARRY_SUCCESS;
}

carry_status carry_json_vector(const carry_json_path *at, const json_t *value,
                               size_t n, const char *what, float *out)
{
  carry_status st = carry_json_array(at, value, n, what);
  for (size_t k = 0; !st && k < n; ++k) {
    const carry_json_path element = carry_json_path_index(at, k);
    st = carry_json_float(&element, json_array_get(value, k),
                          out ? out + k : NULL);
  }
  return st;
}

carry_status carry_json_matrix(const carry_json_path *at, const json_t *value,
                               size_t n_rows, const char *rows_what,
                               size_t n_cols, const char *cols_what,
                               float *out)
{
  carry_status st = carry_json_array(at, value, n_rows, rows_what);
  for (size_t r = 0; !st && r < n_rows; ++r) {
    const carry_json_path row = carry_json_path_index(at, r);
    st = carry_json_vector(&row, json_array_get(value, r), n_cols, cols_what,
                           out ? out + r * n_cols : NULL);
  }
  return st;
}
