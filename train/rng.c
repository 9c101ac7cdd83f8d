/*
  The trainer's generator: splitmix64 (Steele, Lea & Flood 2014), whose
  whole state is one 64-bit number, so a checkpoint keeps it exactly and
  every machine draws the same numbers for a seed.
*/

#include "train_internal.h"

train_rng train_rng_new(uint64_t seed)
{
  train_rng rng = {seed};
  return rng;
}

uint64_t train_rng_next(train_rng *rng)
{
  uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double train_rng_unit(train_rng *rng)
{
  return (double)(train_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t train_rng_below(train_rng *rng, uint64_t n)
{
  // Rejects the top partial range, so every result is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = train_rng_next(rng);
  } while (x >= limit);
  return x % n;
}

void train_rng_shuffle(train_rng *rng, int *items, int n)
{
  for (int k = n - 1; k > 0; --k) {
    const int j = (int)train_rng_below(rng, (uint64_t)k + 1);
    const int swap = items[k];
    items[k] = items[j];
    items[j] = swap;
  }
}
