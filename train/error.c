/*
  The trainer's error helper: a status and a one-line message cut between
  UTF-8 characters, as dsp/status.c does for the core.
*/

#include "train_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

carry_status train_fail(carry_error *err, carry_status status,
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

carry_status train_succeed(carry_error *err)
{
  if (err) {
    err->status = CARRY_SUCCESS;
    err->message[0] = '\0';
  }
  return CARRY_SUCCESS;
}
