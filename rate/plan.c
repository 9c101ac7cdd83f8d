/*
  The latency plan: why the chain's delay is a whole number of host
  samples, and why the FIFO never runs dry.

  Let H and M be the host and model rates and h = H / g, m = M / g with
  g = gcd(H, M): h host samples span exactly m model samples.

  speexdsp's resampler is a symmetric (linear-phase) FIR filter of even
  length L.  Fed from silence, its output k stands for the input at
  k * in / out - L / 2 input samples, and it makes output k as soon as
  input floor(k * in / out) has arrived.  So after n inputs it has made
  ceil(n * out / in) outputs, whatever the blocks were, and its delay is
  exactly L / 2 input samples (speex_resampler_get_input_latency()).

  Chain: the "into" resampler, host to model rate (delay U host
  samples), the model (no delay: output t answers input t), the "back"
  resampler, model to host rate (delay D model samples).  The delay is
  U + D * H / M host samples, seldom whole: at 44.1 kHz, D = 44 adds
  40.425.  Dropping the first q model samples the "into" resampler makes
  shifts the model's time base q model samples earlier, which takes
  q * H / M off the delay; with q = D mod m, D - q is a multiple of m and the delay
  U + (D - q) / m * h is whole.  q < m, and q <= D, so no more is dropped
  than the "back" resampler's delay, and nothing of the signal is lost:
  what is dropped is the start-up of the model-rate signal, before the
  input's first sample has reached the middle of the "into" filter.

  FIFO: each call pushes the chain's output for its n inputs and pops n.
  After N host samples in all the chain has given out(N) = B(max(0,
  I(N) - q)) host samples (I, B: the two resamplers' counts above), so
  the FIFO holds F + out(N) - N, where F is the silence it starts with.
  It never runs dry for any split of the signal into calls iff
  F >= N - out(N) for every N (blocks of one sample reach every N).
  N - out(N) repeats with period h once I(N) >= q (h more host samples
  give m more model samples and those h more host samples back), so its
  largest value is found by looking at N up to that point plus one
  period (the loop's cost, at most h + q * h / m steps, is paid once at
  create), and F is set to exactly that: the least that works.  The total
  latency is F + U + (D - q) / m * h host samples, whole.  The most the
  FIFO holds is F + max(out(N) - N) plus the block being pushed, which
  sizes it.
*/

#include "rate_internal.h"

static uint32_t gcd(uint32_t a, uint32_t b)
{
  while (b) {
    const uint32_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
  return (a + b - 1) / b;
}

uint64_t rate_plan_into_model(const rate_plan *plan, uint64_t n_host)
{
  return ceil_div(n_host * plan->model_step, plan->host_step);
}

uint64_t rate_plan_back_to_host(const rate_plan *plan, uint64_t n_model)
{
  return ceil_div(n_model * plan->host_step, plan->model_step);
}

uint64_t rate_plan_chain_out(const rate_plan *plan, uint64_t n_host)
{
  const uint64_t made = rate_plan_into_model(plan, n_host);
  const uint64_t kept = made > plan->n_dropped ? made - plan->n_dropped : 0;
  return rate_plan_back_to_host(plan, kept);
}

/** The largest shortfall N - out(N) and lead out(N) - N over every N. */
static void find_extremes(rate_plan *plan)
{
  const uint64_t start = ceil_div((uint64_t)plan->n_dropped * plan->host_step,
                                  plan->model_step) + 1;
  const uint64_t end = start + plan->host_step + 1;
  int64_t short_most = 0, ahead_most = 0;
  for (uint64_t n = 0; n <= end; ++n) {
    const int64_t gap = (int64_t)n - (int64_t)rate_plan_chain_out(plan, n);
    short_most = gap > short_most ? gap : short_most;
    ahead_most = -gap > ahead_most ? -gap : ahead_most;
  }
  plan->prefill = (uint32_t)short_most;
  plan->most_ahead = (uint32_t)ahead_most;
}

void rate_plan_make(rate_plan *plan, uint32_t host_rate, uint32_t model_rate,
                    uint32_t into_delay, uint32_t back_delay)
{
  const uint32_t g = gcd(host_rate, model_rate);
  plan->host_rate = host_rate;
  plan->model_rate = model_rate;
  plan->host_step = host_rate / g;
  plan->model_step = model_rate / g;
  plan->into_delay = into_delay;
  plan->back_delay = back_delay;
  plan->n_dropped = back_delay % plan->model_step;
  find_extremes(plan);
  plan->latency = plan->prefill + into_delay +
                  (back_delay - plan->n_dropped) / plan->model_step *
                    plan->host_step;
}
