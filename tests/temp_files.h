/*
  What the command-line tests share: a temporary directory for the files
  they make and the command writes, and reading those files back.
*/

#ifndef CARRY_TEST_TEMP_FILES_H
#define CARRY_TEST_TEMP_FILES_H

#include <sndfile.h>
#include <stdbool.h>
#include <stddef.h>

/** Makes $TMPDIR (or /tmp)/carry-NAME-XXXXXX; false (after saying why) if
    it cannot. */
bool temp_files_make(const char *name);

/** The directory made. */
const char *temp_files_dir(void);

/** A path in it, in one of a few rotating static buffers so that several
    can be live in one expression. */
const char *temp_files_path(const char *name);

/** Whether `name` exists in the directory. */
bool temp_files_exists(const char *name);

/** Removes every file in the directory, then the directory. */
void temp_files_remove(void);

/** The whole file at `path` in a NUL-terminated buffer to free(), or NULL;
    `size` gets its size. */
char *temp_files_read_bytes(const char *path, size_t *size);

/** Whether two files hold the same bytes (false if either is missing). */
bool temp_files_same_bytes(const char *path_a, const char *path_b);

/** A whole audio file as interleaved float frames to free(), with its
    description in `info`; NULL if unreadable. */
float *temp_files_read_frames(const char *path, SF_INFO *info);

#endif
