/*
  Loading model files: reading the file, parsing the JSON, and telling the
  format from the content (never from the extension).
*/

#include "loaders.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* JSON syntax errors */

/** Where a non-finite literal that Python's json.dump writes (NaN,
    Infinity, -Infinity) starts, outside strings, at or before `limit`;
    SIZE_MAX if there is none. */
static size_t find_non_finite(const char *text, size_t size, size_t limit,
                              size_t *length)
{
  static const char *const literals[] = {"-Infinity", "Infinity", "NaN"};
  bool in_string = false;
  for (size_t k = 0; k < size && k <= limit; ++k) {
    if (in_string) {
      if (text[k] == '\\') {
        ++k; // the escaped character cannot end the string
      } else {
        in_string = text[k] != '"';
      }
      continue;
    }
    in_string = text[k] == '"';
    for (size_t n = 0; !in_string && n < 3; ++n) {
      const size_t len = strlen(literals[n]);
      if (len <= size - k && !memcmp(text + k, literals[n], len)) {
        *length = len;
        return k;
      }
    }
  }
  return SIZE_MAX;
}

/** The 1-based line and column of byte `offset`. */
static void locate(const char *text, size_t offset, int *line, int *column)
{
  *line = 1;
  size_t line_start = 0;
  for (size_t k = 0; k < offset; ++k) {
    if (text[k] == '\n') {
      ++*line;
      line_start = k + 1;
    }
  }
  *column = (int)(offset - line_start) + 1;
}

/** jansson quotes the bytes near an error, which may be binary: keep the
    message printable ASCII. */
static void printable(char *text)
{
  for (; *text; ++text) {
    const unsigned char c = (unsigned char)*text;
    *text = c < 0x20u || c >= 0x7fu ? '?' : *text;
  }
}

/** What a jansson error means for someone holding a model file. */
static const char *explain(const json_error_t *jerr)
{
  switch (json_error_code(jerr)) {
  case json_error_premature_end_of_input:
    return "the text ends too early, the file may be truncated";
  case json_error_invalid_utf8: return "the text is not valid UTF-8";
  case json_error_numeric_overflow:
    return "a number is out of range: weights must be finite";
  case json_error_stack_overflow: return "arrays or objects nest too deeply";
  case json_error_null_character:
    return "a string holds a NUL character (\\u0000)";
  case json_error_out_of_memory: return "out of memory";
  default: return "invalid JSON";
  }
}

static void report_syntax(const char *text, size_t size, const char *name,
                          const json_error_t *jerr, carry_error *err)
{
  size_t length = 0;
  const size_t at = find_non_finite(text, size, (size_t)jerr->position,
                                    &length);
  int line = jerr->line > 0 ? jerr->line : 1;
  int column = jerr->column > 0 ? jerr->column : 1;
  if (at != SIZE_MAX) {
    locate(text, at, &line, &column);
    carry_fail(err, CARRY_ERR_SYNTAX,
               "%s:%d:%d: found %.*s, but non-finite numbers are not valid "
               "JSON: weights must be finite", name, line, column,
               (int)length, text + at);
    return;
  }
  // jansson's own words add the token it stopped at, except where they
  // would only name one of its flags
  char detail[JSON_ERROR_TEXT_LENGTH + 3] = "";
  if (json_error_code(jerr) != json_error_null_character) {
    snprintf(detail, sizeof(detail), " (%s)", jerr->text);
    printable(detail);
  }
  carry_fail(err, json_error_code(jerr) == json_error_out_of_memory
                    ? CARRY_ERR_NO_MEMORY
                    : CARRY_ERR_SYNTAX,
             "%s:%d:%d: %s%s", name, line, column, explain(jerr), detail);
}

/* ------------------------------------------------------------------------ */
/* Telling formats apart */

/** A key that only one format has is enough to tell it: the reader then
    names whatever else is missing. */
static carry_model *read_document(const json_t *root, const char *name,
                                  const char *default_name, carry_error *err)
{
  const carry_json_path at = carry_json_path_root(name, err);
  if (!json_is_object(root)) {
    carry_json_fail(&at, CARRY_ERR_FORMAT,
                    "expected a JSON object at the top level, found %s",
                    carry_json_kind(root));
  } else if (json_object_get(root, "layers") ||
             json_object_get(root, "in_shape")) {
    return carry_keras_read(root, &at, default_name);
  } else if (json_object_get(root, "architecture")) {
    return carry_nam_read(root, &at, default_name);
  } else if (json_object_get(root, "model_data") ||
             json_object_get(root, "state_dict")) {
    return carry_pytorch_read(root, &at, default_name);
  } else {
    carry_json_fail(&at, CARRY_ERR_FORMAT,
                    "expected a model: \"layers\" (Keras, RTNeural, "
                    "AIDA-X), \"architecture\", \"config\" and \"weights\" "
                    "(Neural Amp Modeler) or \"model_data\" and "
                    "\"state_dict\" (PyTorch), found none of these keys");
  }
  return NULL;
}

/** The file's base name without its extension: the model's name when
    its metadata gives none. */
static void base_name(const char *path, char *name, size_t size)
{
  const char *slash = strrchr(path, '/');
  const char *start = slash ? slash + 1 : path;
  const char *dot = strrchr(start, '.');
  const size_t n = dot && dot > start ? (size_t)(dot - start) : strlen(start);
  char copy[CARRY_NAME_SIZE * 2];
  snprintf(copy, sizeof(copy), "%.*s", (int)(n < sizeof(copy) ? n : 0), start);
  carry_json_copy_utf8(name, size, copy);
}

static bool is_blank(const char *text, size_t size)
{
  for (size_t k = 0; k < size; ++k) {
    if (!strchr(" \t\r\n", text[k]) || !text[k]) {
      return false;
    }
  }
  return true;
}

/** An upper bound on the values in a JSON text: each one but the first
    follows a comma or opens an array or object. */
static size_t count_values(const char *text, size_t size)
{
  size_t n = 1;
  for (size_t k = 0; k < size; ++k) {
    n += text[k] == ',' || text[k] == '[' || text[k] == '{';
  }
  return n;
}

/** What can be refused before parsing: no text, too much, or none.  The
    parsed tree costs jansson some 50 bytes a value, so a hostile file of
    "0,0,0,..." would take 25 times its size in memory: the number of
    values is bounded too (the limit still holds two stacked LSTMs of
    1024 units). */
static carry_status check_text(const char *text, size_t size,
                               const char *name, carry_error *err)
{
  if (!text) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "%s: no text given", name);
  }
  if (size > CARRY_MAX_FILE_BYTES) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "%s: %zu bytes is more than the %u MiB a model file "
                      "may have", name, size, CARRY_MAX_FILE_BYTES >> 20);
  }
  if (count_values(text, size) > CARRY_MAX_FILE_VALUES) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "%s: more than %u million values, the most a model "
                      "file may hold", name, CARRY_MAX_FILE_VALUES / 1000000);
  }
  if (is_blank(text, size)) {
    return carry_fail(err, CARRY_ERR_SYNTAX,
                      "%s: the file is empty, expected a JSON model", name);
  }
  return CARRY_SUCCESS;
}

json_t *carry_json_parse_text(const char *text, size_t size, const char *name,
                              carry_error *err)
{
  if (check_text(text, size, name, err)) {
    return NULL;
  }
  // Windows editors may start a file with a byte order mark
  const size_t bom = size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
  json_error_t jerr;
  json_t *root = json_loadb(text + bom, size - bom, JSON_DECODE_ANY, &jerr);
  if (!root) {
    report_syntax(text + bom, size - bom, name, &jerr, err);
  }
  return root;
}

/** Reads the model in a parsed document, which it releases. */
static carry_model *load_document(json_t *root, const char *name,
                                  carry_error *err)
{
  if (!root) {
    return NULL;
  }
  char default_name[CARRY_NAME_SIZE];
  base_name(name, default_name, sizeof(default_name));
  carry_model *model = read_document(root, name, default_name, err);
  json_decref(root);
  return model;
}

carry_model *carry_model_load_string(const char *text, size_t size,
                                     const char *name, carry_error *err)
{
  name = name ? name : "(string)";
  return load_document(carry_json_parse_text(text, size, name, err), name,
                       err);
}

/* ------------------------------------------------------------------------ */
/* Files */

static carry_status fail_io(carry_error *err, const char *path, int errnum)
{
  char reason[128] = "unknown error";
  strerror_r(errnum, reason, sizeof(reason));
  return carry_fail(err, CARRY_ERR_IO, "%s: %s", path, reason);
}

static carry_status fail_too_big(carry_error *err, const char *path)
{
  return carry_fail(err, CARRY_ERR_LIMIT,
                    "%s: the file is larger than the %u MiB a model file may "
                    "have", path, CARRY_MAX_FILE_BYTES >> 20);
}

static carry_status grow(char **buffer, size_t *capacity, const char *path,
                         carry_error *err)
{
  const size_t most = CARRY_MAX_FILE_BYTES + 1;
  const size_t bigger = *capacity < most / 2 ? *capacity * 2 : most;
  char *moved = realloc(*buffer, bigger);
  if (!moved) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY,
                      "%s: out of memory for the file", path);
  }
  *buffer = moved;
  *capacity = bigger;
  return CARRY_SUCCESS;
}

/** Reads what is left of `file` into a buffer grown from `hint` bytes,
    stopping one byte past the limit, so neither a file that grows while
    it is read nor a pipe can make it allocate more. */
static carry_status read_rest(FILE *file, const char *path, size_t hint,
                              char **text, size_t *size, carry_error *err)
{
  const size_t most = CARRY_MAX_FILE_BYTES + 1;
  size_t capacity = hint < 4096 ? 4096 : hint < most ? hint + 1 : most;
  size_t used = 0;
  char *buffer = malloc(capacity);
  carry_status st = buffer ? CARRY_SUCCESS
                           : carry_fail(err, CARRY_ERR_NO_MEMORY,
                                        "%s: out of memory for the file",
                                        path);
  while (!st) {
    const size_t n = fread(buffer + used, 1, capacity - used, file);
    used += n;
    if (ferror(file)) {
      st = fail_io(err, path, errno);
    } else if (used > CARRY_MAX_FILE_BYTES) {
      st = fail_too_big(err, path);
    } else if (n == 0) {
      break; // end of file
    } else if (used == capacity) {
      st = grow(&buffer, &capacity, path, err);
    }
  }
  if (st) {
    free(buffer);
    return st;
  }
  *text = buffer;
  *size = used;
  return CARRY_SUCCESS;
}

/** Reads a whole file, refusing one over the limit before reading it. */
static carry_status read_file(FILE *file, const char *path, char **text,
                              size_t *size, carry_error *err)
{
  struct stat info;
  const bool is_regular = fstat(fileno(file), &info) == 0 &&
                          S_ISREG(info.st_mode);
  if (is_regular && (uintmax_t)info.st_size > CARRY_MAX_FILE_BYTES) {
    return fail_too_big(err, path);
  }
  return read_rest(file, path, is_regular ? (size_t)info.st_size : 0, text,
                   size, err);
}

json_t *carry_json_parse_file(const char *path, const char *name,
                              carry_error *err)
{
  FILE *file = fopen(path, "rb");
  if (!file) {
    fail_io(err, name, errno);
    return NULL;
  }
  char *text = NULL;
  size_t size = 0;
  carry_status st = read_file(file, name, &text, &size, err);
  fclose(file);
  if (st) {
    return NULL;
  }
  json_t *root = carry_json_parse_text(text, size, name, err);
  free(text);
  return root;
}

carry_model *carry_model_load_as(const char *path, const char *name,
                                 carry_error *err)
{
  if (!path) {
    carry_fail(err, CARRY_ERR_BAD_ARG, "no model file given");
    return NULL;
  }
  name = name ? name : path;
  return load_document(carry_json_parse_file(path, name, err), name, err);
}

/** The most of a path a message names: the other half of the message is
    for the place in the file and what was wrong there. */
#define MAX_NAMED_PATH (CARRY_MESSAGE_SIZE / 2)

carry_model *carry_model_load(const char *path, carry_error *err)
{
  if (!path || strlen(path) <= MAX_NAMED_PATH) {
    return carry_model_load_as(path, path, err);
  }
  const char *tail = path + strlen(path) - (MAX_NAMED_PATH - 3);
  while (((unsigned char)*tail & 0xC0u) == 0x80u) {
    ++tail; // start on a whole character
  }
  char name[MAX_NAMED_PATH + 1];
  snprintf(name, sizeof(name), "...%s", tail);
  return carry_model_load_as(path, name, err);
}
