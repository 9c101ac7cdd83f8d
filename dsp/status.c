/*
  Status codes and error messages.
*/

#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *carry_strerror(carry_status status)
{
  switch (status) {
  case CARRY_SUCCESS: return "success";
  case CARRY_ERR_BAD_ARG: return "invalid argument";
  case CARRY_ERR_NO_MEMORY: return "out of memory";
  case CARRY_ERR_IO: return "file error";
  case CARRY_ERR_SYNTAX: return "JSON syntax error";
  case CARRY_ERR_FORMAT: return "unexpected structure";
  case CARRY_ERR_SHAPE: return "array size mismatch";
  case CARRY_ERR_VALUE: return "invalid value";
  case CARRY_ERR_UNSUPPORTED: return "unsupported feature";
  case CARRY_ERR_LIMIT: return "size beyond limits";
  }
  return "unknown status";
}

size_t carry_utf8_prefix(const char *text, size_t max_bytes)
{
  size_t n = strnlen(text, max_bytes);
  if (n == max_bytes) {
    while (n > 0 && ((unsigned char)text[n] & 0xC0u) == 0x80u) {
      --n; // text[n] continues a character: cut before that character
    }
  }
  return n;
}

carry_status carry_fail(carry_error *err, carry_status status,
                        const char *format, ...)
{
  if (err) {
    char full[2 * CARRY_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(full, sizeof(full), format, args);
    va_end(args);
    const size_t n = carry_utf8_prefix(full, sizeof(err->message) - 1);
    memcpy(err->message, full, n);
    err->message[n] = '\0';
    err->status = status;
  }
  return status;
}

carry_status carry_succeed(carry_error *err)
{
  if (err) {
    err->status = CARRY_SUCCESS;
    err->message[0] = '\0';
  }
  return CARRY_SUCCESS;
}
