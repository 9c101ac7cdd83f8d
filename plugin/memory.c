/*
  The memory an instance costs: what instantiate() and an engine load
  allocate (carry_lv2.c, engine.c), counted from the same types.
*/

#include "memory.h"

#include "plugin.h"

carry_plugin_memory carry_plugin_memory_of(const carry_model *model,
                                           int n_channels)
{
  const carry_memory stream =
    carry_rate_stream_memory(model, CARRY_ENGINE_MAX_BLOCK);
  carry_plugin_memory m = {
    .instance = carry_plugin_size(n_channels),
    .engine = sizeof(carry_engine),
    .weights = carry_model_memory(model),
    .state = (size_t)n_channels * stream.state,
    .scratch = (size_t)n_channels * stream.scratch,
  };
  const size_t engine = m.engine + m.weights + m.state + m.scratch;
  m.total = m.instance + engine;
  m.total_changing = m.total + engine;
  return m;
}
