/*
  Running a command from the tests, as a user's shell would: its standard
  streams from and to files, its exit code collected.  What every
  command-line test shares.
*/

#ifndef CARRY_TEST_SUBPROCESS_H
#define CARRY_TEST_SUBPROCESS_H

#include <stddef.h>
#include <sys/types.h>

/** Where a command's standard streams go. */
typedef struct subprocess_files {
  const char *in;   ///< stdin from this file, or NULL to inherit the tests'
  const char *out;  ///< stdout into this file (made or emptied), or NULL
                    ///< for /dev/null
  const char *err;  ///< stderr likewise
  int err_flags;    ///< open() flags for `err`; 0 to make or empty a file
} subprocess_files;

/** Starts argv[0] with the NULL-ended argv; returns its process id, or -1
    if it could not start. */
pid_t subprocess_start(char *const argv[], const subprocess_files *files);

/** Waits for `pid`: its exit code, or -1 if it never started or did not
    exit normally (a signal, say). */
int subprocess_wait(pid_t pid);

/** Reads the start of the file at `path` into `text`: at most size - 1
    bytes, NUL-ended; "" if it cannot be read. */
void subprocess_read_text(const char *path, char *text, size_t size);

#endif
