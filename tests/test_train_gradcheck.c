/*
  The trainer's back-propagation against central finite differences, in
  double precision (the core built with TRAIN_DOUBLE): every parameter of
  LSTM, GRU and stacked networks with the dense head, knobs and the skip
  connection, through the loss, over a chunk that starts from a state a
  warm-up left behind; and the loss's own gradient.

  Relative error = |analytic − numeric| / max(|analytic|, |numeric|, 1e-6):
  the floor keeps parameters whose gradient is below the differences' own
  rounding (about 1e-10) from counting as failures.
*/

#include "harness.h"
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP 1e-6            // finite-difference step
#define FLOOR 1e-6           // smallest gradient the relative error divides by
#define LIMIT 1e-3           // the largest relative error allowed
#define MAX_STEPS 8          // T the network is sized for
#define MAX_BATCH 4          // B the network is sized for

static double worst_error = 0.0;

typedef struct case_spec {
  const char *label;
  carry_layer_type type;
  int n_units;
  int n_layers;
  int n_knobs;
  bool has_skip;
  int n_steps;     ///< T of the checked chunk
  int n_batch;     ///< B
  int n_warmup;    ///< Steps run before it to set the state
} case_spec;

static double relative_error(double analytic, double numeric)
{
  const double scale = fmax(fmax(fabs(analytic), fabs(numeric)), FLOOR);
  return fabs(analytic - numeric) / scale;
}

/* ------------------------------------------------------------------------ */
/* Inputs */

/** Fills net->x (T, B, N): audio in [-0.8, 0.8], knobs constant per
    segment; and the targets (T, B): a squashed, shifted copy plus noise. */
static void make_inputs(train_net *net, const double *knobs, int T, int B,
                        double *target, test_rng *rng)
{
  const int N = net->n_inputs;
  for (int t = 0; t < T; ++t) {
    for (int b = 0; b < B; ++b) {
      double *x = net->x + ((size_t)t * B + b) * N;
      x[0] = test_rng_uniform(rng, -0.8f, 0.8f);
      for (int k = 1; k < N; ++k) {
        x[k] = knobs[b * CARRY_MAX_KNOBS + k - 1];
      }
      target[t * B + b] = 0.5 * tanh(2.0 * x[0]) + 0.1 +
                          test_rng_uniform(rng, -0.05f, 0.05f);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* One network */

typedef struct chunk {
  double target[MAX_STEPS * MAX_BATCH];  ///< (T, B)
  double prev_y_hat[MAX_BATCH];          ///< (B) from the warm-up
  double prev_y[MAX_BATCH];
} chunk;

/** The loss of the chunk in net->x from the state in h[0], c[0]. */
static double chunk_loss(train_net *net, const case_spec *c,
                         const chunk *ch, bool with_gradient)
{
  train_net_forward(net, c->n_steps, c->n_batch);
  return train_loss_chunk(net->y, ch->target, ch->prev_y_hat, ch->prev_y,
                          c->n_steps, c->n_batch,
                          with_gradient ? net->d_y : NULL);
}

/** Runs the warm-up, leaving its state in h[0] and its last samples in
    `ch`, then loads the checked chunk's inputs. */
static void prepare(train_net *net, const case_spec *c, chunk *ch,
                    test_rng *rng)
{
  double knobs[MAX_BATCH * CARRY_MAX_KNOBS];
  double warm_target[MAX_STEPS * MAX_BATCH];
  for (int k = 0; k < MAX_BATCH * CARRY_MAX_KNOBS; ++k) {
    knobs[k] = test_rng_uniform(rng, 0.0f, 1.0f);
  }
  train_net_reset_state(net, c->n_batch);
  make_inputs(net, knobs, c->n_warmup, c->n_batch, warm_target, rng);
  train_net_forward(net, c->n_warmup, c->n_batch);
  for (int b = 0; b < c->n_batch; ++b) {
    ch->prev_y_hat[b] = net->y[(c->n_warmup - 1) * c->n_batch + b];
    ch->prev_y[b] = warm_target[(c->n_warmup - 1) * c->n_batch + b];
  }
  train_net_carry_state(net, c->n_warmup, c->n_batch);
  make_inputs(net, knobs, c->n_steps, c->n_batch, ch->target, rng);
}

static double numeric_gradient(train_net *net, const case_spec *c,
                               const chunk *ch, size_t p)
{
  const double kept = net->params[p];
  net->params[p] = kept + STEP;
  const double up = chunk_loss(net, c, ch, false);
  net->params[p] = kept - STEP;
  const double down = chunk_loss(net, c, ch, false);
  net->params[p] = kept;
  return (up - down) / (2.0 * STEP);
}

static void check_case(const case_spec *c, uint64_t seed)
{
  const carry_train_arch arch = {c->type, c->n_units, c->n_layers,
                                 c->has_skip};
  train_net *net = train_net_create(&arch, 1 + c->n_knobs, MAX_STEPS,
                                    MAX_BATCH);
  if (!CHECK(net != NULL, "%s: no network", c->label)) {
    return;
  }
  train_rng init = train_rng_new(seed);
  train_net_init(net, &init);
  test_rng rng = test_rng_new(seed);
  chunk ch;
  prepare(net, c, &ch, &rng);
  chunk_loss(net, c, &ch, true);
  train_net_backward(net, c->n_steps, c->n_batch);
  double *analytic = malloc(net->n_params * sizeof(double));
  memcpy(analytic, net->grads, net->n_params * sizeof(double));
  double worst = 0.0;
  size_t worst_at = 0;
  for (size_t p = 0; p < net->n_params; ++p) {
    const double error = relative_error(analytic[p],
                                        numeric_gradient(net, c, &ch, p));
    worst_at = error > worst ? p : worst_at;
    worst = fmax(worst, error);
  }
  CHECK(worst < LIMIT, "%s: parameter %zu has relative error %.3g",
        c->label, worst_at, worst);
  printf("%-34s %5zu parameters, largest relative error %.2e\n", c->label,
         net->n_params, worst);
  worst_error = fmax(worst_error, worst);
  free(analytic);
  train_net_free(net);
}

/* ------------------------------------------------------------------------ */
/* The loss alone */

static void check_loss(void)
{
  enum { T = 7, B = 3 };
  double y_hat[T * B], y[T * B], d_y[T * B], prev_hat[B], prev[B];
  test_rng rng = test_rng_new(5);
  for (int k = 0; k < T * B; ++k) {
    y_hat[k] = test_rng_uniform(&rng, -0.5f, 0.5f);
    y[k] = test_rng_uniform(&rng, -0.5f, 0.5f);
  }
  for (int b = 0; b < B; ++b) {
    prev_hat[b] = test_rng_uniform(&rng, -0.5f, 0.5f);
    prev[b] = test_rng_uniform(&rng, -0.5f, 0.5f);
  }
  train_loss_chunk(y_hat, y, prev_hat, prev, T, B, d_y);
  double worst = 0.0;
  for (int k = 0; k < T * B; ++k) {
    const double kept = y_hat[k];
    y_hat[k] = kept + STEP;
    const double up = train_loss_chunk(y_hat, y, prev_hat, prev, T, B, NULL);
    y_hat[k] = kept - STEP;
    const double down = train_loss_chunk(y_hat, y, prev_hat, prev, T, B,
                                         NULL);
    y_hat[k] = kept;
    worst = fmax(worst, relative_error(d_y[k], (up - down) / (2.0 * STEP)));
  }
  CHECK(worst < LIMIT, "loss: relative error %.3g", worst);
  printf("%-34s %5d outputs,    largest relative error %.2e\n",
         "loss (ESR pre-emphasis + DC)", T * B, worst);
  worst_error = fmax(worst_error, worst);
}

/** The loss by its definition, computed here independently. */
static void check_loss_value(void)
{
  // T = 2, B = 1: ŷ = (1, 2), y = (0, 1), before the chunk ŷ = 0.5, y = 0.
  const double y_hat[2] = {1.0, 2.0}, y[2] = {0.0, 1.0};
  const double prev_hat[1] = {0.5}, prev[1] = {0.0};
  // p(ŷ) = (1 - 0.425, 2 - 0.85) = (0.575, 1.15); p(y) = (0, 1)
  // e = (0.575, 0.15); E = mean e² / (mean p(y)² + ε)
  const double eps = CARRY_TRAIN_LOSS_EPSILON;
  const double E = (0.575 * 0.575 + 0.15 * 0.15) / 2.0 / (0.5 + eps);
  // m = mean(ŷ − y) = 1; D = 1 / (mean y² + ε)
  const double D = 1.0 / (0.5 + eps);
  const double loss = train_loss_chunk(y_hat, y, prev_hat, prev, 2, 1, NULL);
  CHECK(fabs(loss - (E + D)) < 1e-12, "loss %.15g, expected %.15g", loss,
        E + D);
}

int main(void)
{
  static const case_spec cases[] = {
    {"LSTM-4", CARRY_LAYER_LSTM, 4, 1, 0, false, 6, 3, 4},
    {"LSTM-5, 2 knobs, skip", CARRY_LAYER_LSTM, 5, 1, 2, true, 7, 2, 3},
    {"GRU-4", CARRY_LAYER_GRU, 4, 1, 0, false, 6, 3, 4},
    {"GRU-3, 1 knob, skip", CARRY_LAYER_GRU, 3, 1, 1, true, 8, 4, 2},
    {"LSTM-4x2, 1 knob, skip", CARRY_LAYER_LSTM, 4, 2, 1, true, 6, 3, 5},
    {"GRU-3x3, 2 knobs", CARRY_LAYER_GRU, 3, 3, 2, false, 5, 2, 3},
    {"LSTM-3, one step, one segment", CARRY_LAYER_LSTM, 3, 1, 0, true, 1, 1,
     1},
  };
  openblas_set_num_threads(1);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    check_case(&cases[k], 100 + k);
  }
  check_loss();
  check_loss_value();
  printf("largest relative error over every case: %.2e (limit %.0e)\n",
         worst_error, LIMIT);
  return test_finish("train_gradcheck");
}
