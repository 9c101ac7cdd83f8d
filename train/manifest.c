/*
  Manifests: the training pairs of a run listed in a small JSON file,

    {"pairs": [{"dry": "dry.wav", "target": "drive-0.wav",
                "knobs": {"drive": 0.0}}, ...],
     "validation": [{"dry": ..., "target": ..., "knobs": {...}}, ...],
     "knob_ranges": {"drive": [0, 1]}}

  "validation" and "knob_ranges" are optional; the knobs are named by the
  first pair and every pair gives a value for each.  Every error names the
  file and the JSON path of the fault.
*/

#include "train_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct manifest_reader {
  const char *path;        ///< The manifest, for messages
  char directory[4096];    ///< Where relative file names start
  carry_train_manifest *manifest;
  carry_error *err;
} manifest_reader;

/** "FILE: WHERE: message" with CARRY_ERR_FORMAT. */
static carry_status fail_at(manifest_reader *r, const char *where,
                            const char *format, ...)
  __attribute__((format(printf, 3, 4)));

static carry_status fail_at(manifest_reader *r, const char *where,
                            const char *format, ...)
{
  char text[CARRY_MESSAGE_SIZE];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  return carry_fail(r->err, CARRY_ERR_FORMAT, "%s: %s: %s", r->path, where,
                    text);
}

static const char *type_name(const json_t *value)
{
  switch (json_typeof(value)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "something else";
}

/* ------------------------------------------------------------------------ */
/* File names */

static void set_directory(manifest_reader *r)
{
  const char *slash = strrchr(r->path, '/');
  if (!slash) {
    snprintf(r->directory, sizeof(r->directory), ".");
  } else {
    snprintf(r->directory, sizeof(r->directory), "%.*s",
             (int)(slash - r->path), r->path);
  }
}

/** `name` as given when absolute, else under the manifest's directory. */
static char *resolve(const manifest_reader *r, const char *name)
{
  if (name[0] == '/' || !r->directory[0]) {
    return strdup(name);
  }
  const size_t n = strlen(r->directory) + strlen(name) + 2;
  char *path = malloc(n);
  if (path) {
    snprintf(path, n, "%s/%s", r->directory, name);
  }
  return path;
}

static carry_status read_file_name(manifest_reader *r, const json_t *pair,
                                   const char *where, const char *key,
                                   char **path)
{
  const json_t *value = json_object_get(pair, key);
  char place[128];
  snprintf(place, sizeof(place), "%s.%s", where, key);
  if (!value) {
    return fail_at(r, where, "missing \"%s\" (a file name)", key);
  }
  if (!json_is_string(value) || !json_string_value(value)[0]) {
    return fail_at(r, place, "expected a file name, found %s",
                   json_is_string(value) ? "an empty string"
                                         : type_name(value));
  }
  *path = resolve(r, json_string_value(value));
  return *path ? CARRY_SUCCESS
               : carry_fail(r->err, CARRY_ERR_NO_MEMORY, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* Knobs */

/** The first pair names the knobs, in its order. */
static carry_status name_knobs(manifest_reader *r, const json_t *knobs,
                               const char *where)
{
  carry_train_manifest *m = r->manifest;
  const char *name;
  const json_t *value;
  json_object_foreach((json_t *)knobs, name, value) {
    (void)value;
    if (m->n_knobs == CARRY_MAX_KNOBS) {
      return fail_at(r, where, "more than %d knobs", CARRY_MAX_KNOBS);
    }
    if (!name[0] || strlen(name) >= CARRY_NAME_SIZE) {
      return fail_at(r, where, "a knob name must have 1 to %d bytes",
                     CARRY_NAME_SIZE - 1);
    }
    snprintf(m->knob_names[m->n_knobs++], CARRY_NAME_SIZE, "%s", name);
  }
  return CARRY_SUCCESS;
}

static int find_knob(const carry_train_manifest *m, const char *name)
{
  for (int k = 0; k < m->n_knobs; ++k) {
    if (!strcasecmp(m->knob_names[k], name)) {
      return k;
    }
  }
  return -1;
}

static carry_status read_knob_value(manifest_reader *r, const json_t *value,
                                    const char *where, const char *name,
                                    float *knob)
{
  char place[256];
  snprintf(place, sizeof(place), "%s.%s", where, name);
  if (!json_is_number(value) || !isfinite(json_number_value(value)) ||
      fabs(json_number_value(value)) > 1e30) {
    return fail_at(r, place, "expected a number, found %s",
                   json_is_number(value) ? "one out of range"
                                         : type_name(value));
  }
  *knob = (float)json_number_value(value);
  return CARRY_SUCCESS;
}

/** The pair's knob values, one for every knob and no other. */
static carry_status read_knobs(manifest_reader *r, const json_t *pair,
                               const char *where,
                               carry_train_manifest_pair *out)
{
  carry_train_manifest *m = r->manifest;
  const json_t *knobs = json_object_get(pair, "knobs");
  char place[128];
  snprintf(place, sizeof(place), "%s.knobs", where);
  if (knobs && !json_is_object(knobs)) {
    return fail_at(r, place, "expected an object of NAME: VALUE, found %s",
                   type_name(knobs));
  }
  if (knobs && m->n_pairs == 0 && name_knobs(r, knobs, place)) {
    return r->err->status;
  }
  const size_t given = knobs ? json_object_size(knobs) : 0;
  bool seen[CARRY_MAX_KNOBS] = {false};
  const char *name;
  const json_t *value;
  json_object_foreach((json_t *)knobs, name, value) {
    const int k = find_knob(m, name);
    if (k < 0) {
      return fail_at(r, place, "knob '%s' is not one the first pair names; "
                     "every pair gives the same knobs", name);
    }
    seen[k] = true;
    if (read_knob_value(r, value, place, name, &out->knobs[k])) {
      return r->err->status;
    }
  }
  for (int k = 0; given < (size_t)m->n_knobs && k < m->n_knobs; ++k) {
    if (!seen[k]) {
      return fail_at(r, place, "no value for knob '%s'; every pair gives a "
                     "value for every knob", m->knob_names[k]);
    }
  }
  return CARRY_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Pairs */

static carry_status read_pair(manifest_reader *r, const json_t *pair,
                              const char *where, bool is_validation)
{
  carry_train_manifest *m = r->manifest;
  carry_train_manifest_pair *out = &m->pairs[m->n_pairs];
  memset(out, 0, sizeof(*out));
  out->is_validation = is_validation;
  if (!json_is_object(pair)) {
    return fail_at(r, where, "expected an object {\"dry\", \"target\", "
                   "\"knobs\"}, found %s", type_name(pair));
  }
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)pair, key, value) {
    if (strcmp(key, "dry") && strcmp(key, "target") && strcmp(key, "knobs")) {
      return fail_at(r, where, "unknown key \"%s\" (a pair has \"dry\", "
                     "\"target\" and \"knobs\")", key);
    }
  }
  carry_status st = read_file_name(r, pair, where, "dry", &out->dry);
  if (!st) {
    st = read_file_name(r, pair, where, "target", &out->target);
  }
  if (!st) {
    st = read_knobs(r, pair, where, out);
  }
  m->n_pairs += 1;  // counted even when broken, so that its names are freed
  return st;
}

static carry_status read_pairs(manifest_reader *r, const json_t *root,
                               const char *key, bool is_required)
{
  const json_t *pairs = json_object_get(root, key);
  if (!pairs && !is_required) {
    return CARRY_SUCCESS;
  }
  if (!json_is_array(pairs) || json_array_size(pairs) == 0) {
    return fail_at(r, key, "expected a non-empty array of pairs, found %s",
                   pairs ? (json_is_array(pairs) ? "an empty array"
                                                 : type_name(pairs))
                         : "nothing");
  }
  for (size_t k = 0; k < json_array_size(pairs); ++k) {
    char where[64];
    snprintf(where, sizeof(where), "%s[%zu]", key, k);
    if (read_pair(r, json_array_get(pairs, k), where,
                  !strcmp(key, "validation"))) {
      return r->err->status;
    }
  }
  return CARRY_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Ranges */

static carry_status read_range(manifest_reader *r, const char *name,
                               const json_t *range)
{
  carry_train_manifest *m = r->manifest;
  char place[256];
  snprintf(place, sizeof(place), "knob_ranges.%s", name);
  const int k = find_knob(m, name);
  if (k < 0) {
    return fail_at(r, place, "no pair has a knob called '%s'", name);
  }
  const json_t *lo = json_array_get(range, 0), *hi = json_array_get(range, 1);
  if (!json_is_array(range) || json_array_size(range) != 2 ||
      !json_is_number(lo) || !json_is_number(hi) ||
      !(json_number_value(lo) <= json_number_value(hi)) ||
      !isfinite(json_number_value(hi) - json_number_value(lo))) {
    return fail_at(r, place, "expected [MIN, MAX] with MIN <= MAX");
  }
  m->has_range[k] = true;
  m->range_min[k] = (float)json_number_value(lo);
  m->range_max[k] = (float)json_number_value(hi);
  return CARRY_SUCCESS;
}

static carry_status read_ranges(manifest_reader *r, const json_t *root)
{
  const json_t *ranges = json_object_get(root, "knob_ranges");
  if (ranges && !json_is_object(ranges)) {
    return fail_at(r, "knob_ranges", "expected an object of NAME: [MIN, "
                   "MAX], found %s", type_name(ranges));
  }
  const char *name;
  const json_t *range;
  json_object_foreach((json_t *)ranges, name, range) {
    if (read_range(r, name, range)) {
      return r->err->status;
    }
  }
  return CARRY_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* The document */

static size_t count_pairs(const json_t *root)
{
  const json_t *pairs = json_object_get(root, "pairs");
  const json_t *validation = json_object_get(root, "validation");
  return json_array_size(pairs) + json_array_size(validation);
}

static carry_status check_keys(manifest_reader *r, const json_t *root)
{
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)root, key, value) {
    if (strcmp(key, "pairs") && strcmp(key, "validation") &&
        strcmp(key, "knob_ranges")) {
      return carry_fail(r->err, CARRY_ERR_FORMAT, "%s: unknown key \"%s\" "
                        "(a manifest has \"pairs\", \"validation\" and "
                        "\"knob_ranges\")", r->path, key);
    }
  }
  return CARRY_SUCCESS;
}

static carry_status read_document(manifest_reader *r, const json_t *root)
{
  if (!json_is_object(root)) {
    return carry_fail(r->err, CARRY_ERR_FORMAT, "%s: expected a JSON object "
                      "with \"pairs\", found %s", r->path, type_name(root));
  }
  r->manifest->pairs = calloc(count_pairs(root) + 1,
                              sizeof(carry_train_manifest_pair));
  if (!r->manifest->pairs) {
    return carry_fail(r->err, CARRY_ERR_NO_MEMORY, "out of memory");
  }
  carry_status st = check_keys(r, root);
  if (!st) {
    st = read_pairs(r, root, "pairs", true);
  }
  if (!st) {
    st = read_pairs(r, root, "validation", false);
  }
  return st ? st : read_ranges(r, root);
}

static json_t *parse(const manifest_reader *r)
{
  json_error_t error;
  json_t *root = json_load_file(r->path, JSON_REJECT_DUPLICATES, &error);
  if (!root && error.line < 0) {
    carry_fail(r->err, CARRY_ERR_IO, "cannot read manifest: %s", error.text);
  } else if (!root) {
    carry_fail(r->err, CARRY_ERR_SYNTAX, "%s: line %d, column %d: %s",
               r->path, error.line, error.column, error.text);
  }
  return root;
}

carry_train_manifest *carry_train_manifest_load(const char *path,
                                                carry_error *err)
{
  carry_error local;
  err = err ? err : &local;
  manifest_reader r = {path, "", calloc(1, sizeof(carry_train_manifest)),
                       err};
  if (!r.manifest) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory");
    return NULL;
  }
  set_directory(&r);
  json_t *root = parse(&r);
  carry_status st = root ? read_document(&r, root) : err->status;
  json_decref(root);
  if (st) {
    carry_train_manifest_free(r.manifest);
    return NULL;
  }
  carry_succeed(err);
  return r.manifest;
}

void carry_train_manifest_free(carry_train_manifest *manifest)
{
  if (manifest) {
    for (int p = 0; p < manifest->n_pairs; ++p) {
      free(manifest->pairs[p].dry);
      free(manifest->pairs[p].target);
    }
    free(manifest->pairs);
    free(manifest);
  }
}
