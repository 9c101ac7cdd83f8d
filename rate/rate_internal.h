/*
  Inside the rate library: the latency plan, shared by rate/plan.c and
  rate/stream.c and checked by tests/test_rate.c.
*/

#ifndef CARRY_RATE_INTERNAL_H
#define CARRY_RATE_INTERNAL_H

#include "carry_rate.h"

#include <stdbool.h>
#include <stdint.h>

/** How the two resamplers, the model and the FIFO line up, worked out from
    the rates and the resamplers' delays alone (see rate/plan.c). */
typedef struct rate_plan {
  uint32_t host_rate, model_rate;  ///< Hz, whole numbers
  uint32_t host_step;   ///< host_rate / gcd: this many host samples ...
  uint32_t model_step;  ///< ... span exactly this many model samples
  uint32_t into_delay;    ///< Host samples: the host-to-model resampler's delay
  uint32_t back_delay;  ///< Model samples: the model-to-host resampler's delay
  uint32_t n_dropped;   ///< Model samples dropped from the start of the model-rate signal
  uint32_t prefill;     ///< Host samples of silence the FIFO starts with
  uint32_t most_ahead;  ///< Most host samples the chain's output runs
                        ///< ahead of its input
  uint32_t latency;     ///< Host samples from input to output
} rate_plan;

/** Works out the plan for resamplers whose delays (half their filter
    lengths) are `into_delay` host samples and `back_delay` model
    samples. */
void rate_plan_make(rate_plan *plan, uint32_t host_rate, uint32_t model_rate,
                    uint32_t into_delay, uint32_t back_delay);

/** Model samples the host-to-model resampler has made after `n_host` host samples. */
uint64_t rate_plan_into_model(const rate_plan *plan, uint64_t n_host);

/** Host samples the model-to-host resampler has made after `n_model` model samples. */
uint64_t rate_plan_back_to_host(const rate_plan *plan, uint64_t n_model);

/** Host samples out of the chain (before the FIFO) after `n_host` in. */
uint64_t rate_plan_chain_out(const rate_plan *plan, uint64_t n_host);

#endif
