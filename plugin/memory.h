/*
  What one instance of the Carry plugin costs in memory with a model
  loaded (issue 8, goal 6), worked out from the very records and sizes the
  plugin allocates: `carry model info` prints it, and
  tests/test_plugin_memory.c checks it against the bytes an instance
  really allocates.  Needs no LV2 host.
*/

#ifndef CARRY_PLUGIN_MEMORY_H
#define CARRY_PLUGIN_MEMORY_H

#include "carry.h"

#include <stddef.h>

/** Bytes, as asked of malloc (its own bookkeeping, some 16 bytes an
    allocation, left out). */
typedef struct carry_plugin_memory {
  size_t instance;  ///< The instance record: the dry delay lines
                    ///< (CARRY_DRY_RING samples per channel), a grid
                    ///< cell's scratch, paths and status lines
  size_t engine;    ///< The engine record: path, name, status, knob map
  size_t weights;   ///< The model (carry_model_memory())
  size_t state;     ///< Every channel's stream state
  size_t scratch;   ///< Every channel's stream buffers and records
  size_t total;     ///< One instance running one model: all the above
  size_t total_changing;  ///< While a new model fades in over the old
                          ///< one: a second engine (record, weights,
                          ///< state, scratch) beside the first
} carry_plugin_memory;

/** The figures for `model` in an instance of `n_channels` channels (1 or
    2) at a host running at the model's own rate (no resampling).  Nothing
    here grows with the host's maximum block: run() works through any
    block in grid cells of CARRY_GRID samples and the streams in chunks
    of CARRY_CHUNK_SIZE.  Thread: any.  No allocation. */
carry_plugin_memory carry_plugin_memory_of(const carry_model *model,
                                           int n_channels);

#endif /* CARRY_PLUGIN_MEMORY_H */
