/*
  The loss of carry_train.h: the error-to-signal ratio with first-order
  pre-emphasis plus a DC term, and its gradient.  Sums run in double in
  both builds, so a float loss over 10^5 samples loses nothing to rounding.
*/

#include "train_internal.h"

#define A CARRY_TRAIN_PREEMPHASIS
#define EPSILON CARRY_TRAIN_LOSS_EPSILON

/** The sums of one segment of a (T, B) chunk, column b. */
typedef struct column_sums {
  double error_pre;   ///< Σ e²
  double target_pre;  ///< Σ p(y)²
  double target;      ///< Σ y²
  double error;       ///< Σ (ŷ − y)
} column_sums;

/** e[t] = p(ŷ)[t] − p(y)[t] of column b, with x[−1] from `prev`. */
static double preemphasised_error(const real *y_hat, const real *y,
                                  double prev_y_hat, double prev_y, int t,
                                  int b, int B)
{
  const size_t k = (size_t)t * (size_t)B + (size_t)b;
  const double before_hat = t ? y_hat[k - (size_t)B] : prev_y_hat;
  const double before = t ? y[k - (size_t)B] : prev_y;
  return ((double)y_hat[k] - A * before_hat) - ((double)y[k] - A * before);
}

static column_sums sum_column(const real *y_hat, const real *y,
                              double prev_y_hat, double prev_y, int T, int b,
                              int B)
{
  column_sums s = {0.0, 0.0, 0.0, 0.0};
  for (int t = 0; t < T; ++t) {
    const size_t k = (size_t)t * (size_t)B + (size_t)b;
    const double e = preemphasised_error(y_hat, y, prev_y_hat, prev_y, t, b,
                                         B);
    const double before = t ? y[k - (size_t)B] : prev_y;
    const double p = (double)y[k] - A * before;
    s.error_pre += e * e;
    s.target_pre += p * p;
    s.target += (double)y[k] * (double)y[k];
    s.error += (double)y_hat[k] - (double)y[k];
  }
  return s;
}

/** dL/dŷ of column b: the ESR part, (2 / (n P)) (e[t] − a e[t + 1]), and
    the DC part, 2 m_b / (B T Q), where P and Q are the denominators. */
static void column_gradient(const real *y_hat, const real *y,
                            double prev_y_hat, double prev_y, int T, int b,
                            int B, double esr_scale, double dc_term,
                            real *d_y)
{
  double e_next = 0.0;
  for (int t = T - 1; t >= 0; --t) {
    const double e = preemphasised_error(y_hat, y, prev_y_hat, prev_y, t, b,
                                         B);
    d_y[(size_t)t * (size_t)B + (size_t)b] =
      (real)(esr_scale * (e - A * e_next) + dc_term);
    e_next = e;
  }
}

double train_loss_chunk(const real *y_hat, const real *y,
                        const real *prev_y_hat, const real *prev_y,
                        int n_steps, int n_batch, real *d_y)
{
  const int T = n_steps, B = n_batch;
  const double n = (double)T * (double)B;
  double error_pre = 0.0, target_pre = 0.0, target = 0.0, dc = 0.0;
  for (int b = 0; b < B; ++b) {
    const column_sums s = sum_column(y_hat, y, prev_y_hat[b], prev_y[b], T,
                                     b, B);
    error_pre += s.error_pre;
    target_pre += s.target_pre;
    target += s.target;
    dc += (s.error / T) * (s.error / T);
  }
  const double P = target_pre / n + EPSILON, Q = target / n + EPSILON;
  const double loss = (error_pre / n) / P + (dc / B) / Q;
  for (int b = 0; d_y && b < B; ++b) {
    const column_sums s = sum_column(y_hat, y, prev_y_hat[b], prev_y[b], T,
                                     b, B);
    column_gradient(y_hat, y, prev_y_hat[b], prev_y[b], T, b, B,
                    2.0 / (n * P), 2.0 * (s.error / T) / (B * T * Q), d_y);
  }
  return loss;
}

void train_loss_sums_add(train_loss_sums *sums, const real *y_hat,
                         const real *y, int stride, int n, real *prev_y_hat,
                         real *prev_y, double *error_sum)
{
  double before_hat = *prev_y_hat, before = *prev_y;
  for (int t = 0; t < n; ++t) {
    const double out = y_hat[(size_t)t * (size_t)stride];
    const double want = y[(size_t)t * (size_t)stride];
    const double e = (out - A * before_hat) - (want - A * before);
    const double p = want - A * before;
    sums->error_pre += e * e;
    sums->target_pre += p * p;
    sums->error += (out - want) * (out - want);
    sums->target += want * want;
    *error_sum += out - want;
    before_hat = out;
    before = want;
  }
  sums->n += n;
  *prev_y_hat = (real)before_hat;
  *prev_y = (real)before;
}
