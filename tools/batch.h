/*
  The list of a batch: which input files, and where each one's output goes.
  Folders are searched recursively and mirrored under the output folder;
  the list is sorted, so that it and its shards are the same on every
  machine that is given the same inputs.
*/

#ifndef CARRY_BATCH_H
#define CARRY_BATCH_H

#include <stdbool.h>
#include <stddef.h>

/** One file of the batch. */
typedef struct batch_item {
  char *in_path;
  char *out_path;      ///< Under the output folder
  bool is_skipped;     ///< The output exists and --force was not given
} batch_item;

/** How to make the list. */
typedef struct batch_options {
  const char *out_dir;
  const char *list_path;   ///< One input per line, "-" for stdin; or NULL
  const char *pattern;     ///< A glob on names found in folders; or NULL
                           ///< for the common audio extensions
  bool is_forced;          ///< Existing outputs are overwritten
  long shard_index;        ///< K of --shard K/N, from 0
  long n_shards;           ///< N of --shard K/N (1: everything)
} batch_options;

/** The files to process, sorted by input path. */
typedef struct batch_plan {
  batch_item *items;
  size_t n_items;
  size_t capacity;
  size_t n_found;          ///< Before sharding
  size_t n_skipped;
  size_t n_unreadable;     ///< Folders or list files that could not be
                           ///< read (already reported)
} batch_plan;

/** Builds the plan from `inputs` (files and folders) and the list file:
    collects, sorts, drops repeated inputs, refuses two inputs that would
    be written to one output, takes the shard and marks existing outputs
    skipped.  Reports problems itself; returns the exit code. */
int batch_plan_build(batch_plan *plan, const batch_options *options,
                     int n_inputs, char **inputs);

/** Frees the plan; a zeroed plan is fine. */
void batch_plan_free(batch_plan *plan);

/** Creates the folders above `path` that are missing (mkdir -p of its
    parent).  Reports and returns CLI_EXIT_FILE on failure.  Thread: any. */
int batch_make_parents(const char *path);

#endif /* CARRY_BATCH_H */
