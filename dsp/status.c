/*
  Status codes and error messages.
*/

#include "internal.h"

#include <stdio.h>

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

carry_status carry_fail(carry_error *err, carry_status status,
                        const char *format, ...)
{
  if (err) {
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof(err->message), format, args);
    va_end(args);
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
