/*
  The audio path is real-time safe, proven rather than promised:

  - an interposer (interposer.c) replaces malloc, calloc, realloc, free,
    aligned_alloc, posix_memalign, memalign and the pthread lock functions
    for the whole process and counts calls made while carry_stream_process
    (and its stereo and lockstep forms, carry_stream_process_pair and
    carry_batch_process, in both qualities) runs (after a warm-up): there
    must be none;
  - the processing then runs again in a child process under a seccomp
    filter that kills it on any system call but exit: if it survives, the
    audio path made no system call at all.

  Not built under the sanitizers, whose runtimes own malloc themselves.
*/

#define _GNU_SOURCE

#include "harness.h"
#include "interposer.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* The work: several models, kernels and block sizes, two channels; plain
   and sample-rate-corrected streams */

enum { N_SAMPLES = 12000, MAX_BLOCK = 512 };

typedef struct {
  carry_model *model;
  carry_stream *left, *right;
  carry_batch *batch;  ///< Three lanes of the model; NULL where refused
} channel_pair;

static float in[N_SAMPLES], out[N_SAMPLES];

static void process_all(channel_pair *pairs, int n_pairs, uint64_t seed)
{
  test_rng rng = test_rng_new(seed);
  const float knobs[2] = {0.2f, 0.7f};
  for (int p = 0; p < n_pairs; ++p) {
    for (size_t t = 0; t < N_SAMPLES;) {
      size_t n = (size_t)test_rng_int(&rng, 0, 3 * MAX_BLOCK);
      n = n > N_SAMPLES - t ? N_SAMPLES - t : n;
      carry_stream_process(pairs[p].left, in + t, knobs, out + t, (uint32_t)n);
      carry_stream_process(pairs[p].right, in + t, NULL, out + t, (uint32_t)n);
      carry_stream_reset(pairs[p].right);
      const carry_quality q = t % 2 ? CARRY_QUALITY_FAST : CARRY_QUALITY_EXACT;
      carry_stream_set_quality(pairs[p].left, q);
      carry_stream_set_quality(pairs[p].right, q);
      carry_stream_process_pair(pairs[p].left, pairs[p].right, in + t, in + t,
                                knobs, out + t, out + t, (uint32_t)n);
      if (pairs[p].batch) {
        const float *lanes_in[3] = {in + t, NULL, in + t};
        float *lanes_out[3] = {out + t, out + t, out + t};
        carry_batch_set_quality(pairs[p].batch, q);
        carry_batch_process(pairs[p].batch, lanes_in, knobs, lanes_out,
                            (uint32_t)n);
        carry_batch_reset_lane(pairs[p].batch, 2, pairs[p].left, NULL);
      }
      t += n;
    }
  }
}

static int make_pairs(channel_pair *pairs)
{
  test_rng rng = test_rng_new(3);
  const carry_kernels kernels[] = {CARRY_KERNELS_AUTO, CARRY_KERNELS_PORTABLE,
                                   CARRY_KERNELS_REFERENCE};
  int n = 0;
  for (int k = 0; k < 3; ++k) {
    carry_model *models[] = {
      test_random_model(CARRY_LAYER_LSTM, 32, 1, 1, true, &rng),
      test_random_model(CARRY_LAYER_GRU, 20, 2, 3, false, &rng),
      test_random_model(CARRY_LAYER_LSTM, 40, 1, 2, false, &rng),
    };
    for (int m = 0; m < 3; ++m, ++n) {
      pairs[n].model = models[m];
      pairs[n].left = carry_stream_create_with(models[m], MAX_BLOCK, kernels[k],
                                               NULL);
      pairs[n].right = carry_stream_create_with(models[m], MAX_BLOCK,
                                                kernels[k], NULL);
      pairs[n].batch = carry_batch_create(models[m], 3, kernels[k], NULL);
    }
  }
  return n;
}

/** Sample-rate-corrected streams, at whole and fractional ratios, with
    each interpolation and with the reference kernels. */
static int make_corrected_pairs(channel_pair *pairs)
{
  test_rng rng = test_rng_new(4);
  const struct {
    carry_layer_type type;
    int n_stacked;
    double ratio;
    carry_kernels kernels;
    carry_interpolation interpolation;
  } set[] = {
    {CARRY_LAYER_LSTM, 1, 2.0, CARRY_KERNELS_AUTO, CARRY_INTERP_CUBIC},
    {CARRY_LAYER_GRU, 2, 1.8375, CARRY_KERNELS_AUTO, CARRY_INTERP_CUBIC},
    {CARRY_LAYER_LSTM, 2, 1.8375, CARRY_KERNELS_PORTABLE,
     CARRY_INTERP_LINEAR},
    {CARRY_LAYER_LSTM, 1, 4.37, CARRY_KERNELS_REFERENCE, CARRY_INTERP_CUBIC},
  };
  const int n = (int)(sizeof(set) / sizeof(set[0]));
  for (int k = 0; k < n; ++k) {
    carry_model *model = test_random_model(set[k].type, 24, set[k].n_stacked,
                                           2, true, &rng);
    pairs[k].model = model;
    pairs[k].left = carry_stream_create_corrected_with(
      model, MAX_BLOCK, set[k].ratio, set[k].kernels, set[k].interpolation,
      NULL);
    pairs[k].right = carry_stream_create_corrected_with(
      model, MAX_BLOCK, set[k].ratio, set[k].kernels, set[k].interpolation,
      NULL);
  }
  return n;
}

static void free_pairs(channel_pair *pairs, int n)
{
  for (int p = 0; p < n; ++p) {
    carry_stream_free(pairs[p].left);
    carry_stream_free(pairs[p].right);
    carry_batch_free(pairs[p].batch);
    carry_model_free(pairs[p].model);
  }
}

/* ------------------------------------------------------------------------ */
/* The checks */

static void check_interposer_works(void)
{
  interposer->is_counting = 1;
  void *volatile p = malloc(16);
  free(p);
  interposer->is_counting = 0;
  CHECK(interposer->n_allocs == 1 && interposer->n_frees == 1,
        "the interposer sees malloc and free");
  interposer->n_allocs = interposer->n_frees = 0;
}

static void check_no_calls(channel_pair *pairs, int n_pairs)
{
  process_all(pairs, n_pairs, 1); // warm-up: lazy binding, first touches
  interposer->is_counting = 1;
  process_all(pairs, n_pairs, 2);
  interposer->is_counting = 0;
  CHECK(interposer->n_allocs == 0, "allocations while processing: %ld",
        interposer->n_allocs);
  CHECK(interposer->n_frees == 0, "frees while processing: %ld", interposer->n_frees);
  CHECK(interposer->n_locks == 0, "locks taken while processing: %ld",
        interposer->n_locks);
}

typedef struct {
  channel_pair *pairs;
  int n_pairs;
} pair_set;

static void process_set(void *context, uint64_t seed)
{
  pair_set *set = context;
  process_all(set->pairs, set->n_pairs, seed);
}

static void check_no_system_calls(channel_pair *pairs, int n_pairs)
{
  pair_set set = {pairs, n_pairs};
  const int status = interposer_run_without_system_calls(process_set, &set);
  if (status == -1) {
    printf("seccomp is not available here: system-call check skipped\n");
    return;
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "processing under a no-system-call filter must survive (status %#x%s)",
        status, WIFSIGNALED(status) ? ", killed: a system call was made" : "");
}

int main(void)
{
  interposer_init();
  void *shared = mmap(NULL, sizeof(interposer_counts), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    return 99;
  }
  interposer = shared; // the seccomp child counts into the same place
  check_interposer_works();
  test_signal(in, N_SAMPLES, 8);
  channel_pair pairs[16] = {{0}};
  int n_pairs = make_pairs(pairs);
  n_pairs += make_corrected_pairs(pairs + n_pairs);
  check_no_calls(pairs, n_pairs);
  check_no_system_calls(pairs, n_pairs);
  free_pairs(pairs, n_pairs);
  return test_finish("realtime");
}
