/*
  Helpers shared by Carry's JSON model readers (not part of the API).

  A carry_json_path names the value a reader is looking at, such as
  `layers[1].weights[0][3]`.  Paths live on the stack and point to their
  parent, so descending costs no allocation and the text is only built when
  a message needs it.  Every getter checks one value and, on failure,
  writes `FILE: PATH: expected X, found Y` into the path's carry_error.

  Getters whose output pointer is NULL only check: readers use that to
  validate a whole file before they allocate anything.
*/

#ifndef CARRY_JSON_PATH_H
#define CARRY_JSON_PATH_H

#include "internal.h"

#include <jansson.h>

/** The largest file a reader accepts (bigger ones are refused unread). */
#define CARRY_MAX_FILE_BYTES (64u * 1024u * 1024u)

/** The most values (numbers, strings, arrays, objects) a file may hold. */
#define CARRY_MAX_FILE_VALUES 10000000u

/** Where in a file a reader is. */
typedef struct carry_json_path {
  const struct carry_json_path *parent;  ///< NULL at the top level
  const char *key;    ///< Member name, or NULL for an array element
  size_t index;       ///< Element index when `key` is NULL
  const char *file;   ///< The name messages start with
  carry_error *err;   ///< Receives failures; may be NULL
} carry_json_path;

/** The top level of `file`. */
carry_json_path carry_json_path_root(const char *file, carry_error *err);

/** The member `key` of the object at `parent`; `key` must outlive it. */
carry_json_path carry_json_path_key(const carry_json_path *parent,
                                    const char *key);

/** Element `index` of the array at `parent`. */
carry_json_path carry_json_path_index(const carry_json_path *parent,
                                      size_t index);

/** Writes the path ("layers[1].weights[0]", "" at the top) into `text`.
    A key that is not a plain name is quoted: `state_dict."lin.bias"[0]`. */
void carry_json_path_format(const carry_json_path *at, char *text,
                            size_t size);

/** Fails with `FILE: PATH: ` followed by the formatted text. */
carry_status carry_json_fail(const carry_json_path *at, carry_status status,
                             const char *format, ...)
  __attribute__((format(printf, 3, 4)));

/** The kind of a value for messages: "a string", "an array", "null"... */
const char *carry_json_kind(const json_t *value);

/** A value for messages with its content where short: `the string "x"`,
    `1e+06`, `an array of 3`. */
void carry_json_describe(const json_t *value, char *text, size_t size);

/** A short, one-line quotation of a string from a file (`"WaveNet"`):
    control characters would break the message, and a long string would
    bury it, so they become '?' and "...". */
void carry_json_quote(const char *src, char *text, size_t size);

/** Copies `src` into `dst` (of `size` bytes), cutting at a UTF-8 character
    boundary so a long name never ends in half a character. */
void carry_json_copy_utf8(char *dst, size_t size, const char *src);

/** Parses a whole string as a decimal number in the C locale, whatever
    the process locale is.  Returns false if it is not one. */
bool carry_json_parse_number(const char *text, double *value);

/* ------------------------------------------------------------------------ */
/* Getters: each checks the value at `at` */

/** Checks that `value` is an object. */
carry_status carry_json_object(const carry_json_path *at, const json_t *value);

/** The member `key` of `object`, or NULL if it is absent or null: Python
    exporters write None for what they do not know. */
const json_t *carry_json_optional(const json_t *object, const char *key);

/** The member `key` of `object`, or a FORMAT failure naming it. */
carry_status carry_json_require(const carry_json_path *at,
                                const json_t *object, const char *key,
                                const json_t **member);

/** A string. */
carry_status carry_json_string(const carry_json_path *at, const json_t *value,
                               const char **out);

/** A number within [lo, hi]; outside, a VALUE failure "expected `what`". */
carry_status carry_json_number(const carry_json_path *at, const json_t *value,
                               double lo, double hi, const char *what,
                               double *out);

/** Like carry_json_number, but also a string holding a number ("48000"),
    as some exporters write. */
carry_status carry_json_numeric(const carry_json_path *at, const json_t *value,
                                double lo, double hi, const char *what,
                                double *out);

/** A number that is finite as a float.  `out` may be NULL. */
carry_status carry_json_float(const carry_json_path *at, const json_t *value,
                              float *out);

/** A whole number of `unit` within [lo, hi]; outside, `range_status` with
    "expected LO to HI UNIT". */
carry_status carry_json_int(const carry_json_path *at, const json_t *value,
                            int lo, int hi, const char *unit,
                            carry_status range_status, int *out);

/** true, false, 0 or 1. */
carry_status carry_json_flag(const carry_json_path *at, const json_t *value,
                             bool *out);

/** An array of exactly `n` elements; `what` names them in the message
    ("rows (the hidden size)"). */
carry_status carry_json_array(const carry_json_path *at, const json_t *value,
                              size_t n, const char *what);

/** An array of `n` floats into `out` (may be NULL). */
carry_status carry_json_vector(const carry_json_path *at, const json_t *value,
                               size_t n, const char *what, float *out);

/** A (n_rows, n_cols) array of arrays of floats into `out` (row-major; may
    be NULL). */
carry_status carry_json_matrix(const carry_json_path *at, const json_t *value,
                               size_t n_rows, const char *rows_what,
                               size_t n_cols, const char *cols_what,
                               float *out);

#endif /* CARRY_JSON_PATH_H */
