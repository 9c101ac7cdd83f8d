/*
  The matrix helpers the layers share: the one door to BLAS (timed, for
  the throughput report) and the small loops around it.
*/

#include "train_internal.h"

#include <string.h>
#include <time.h>

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void train_gemm(bool trans_a, bool trans_b, int M, int N, int K, real alpha,
                const real *A, int lda, const real *B, int ldb, real beta,
                real *C, int ldc, train_profile *profile)
{
  const double start = now_seconds();
  TRAIN_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
             trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
             ldb, beta, C, ldc);
  profile->gemm_seconds += now_seconds() - start;
  ++profile->n_gemm;
}

TRAIN_CLONES
void train_column_sums(const real *X, int n_rows, int n_cols, real *sums)
{
  memset(sums, 0, (size_t)n_cols * sizeof(real));
  for (int r = 0; r < n_rows; ++r) {
    train_add_into(sums, X + (size_t)r * (size_t)n_cols, (size_t)n_cols);
  }
}

void train_fill_rows(real *Z, const real *row, size_t n_rows, int G)
{
  for (size_t r = 0; r < n_rows; ++r) {
    memcpy(Z + r * (size_t)G, row, (size_t)G * sizeof(real));
  }
}

TRAIN_CLONES
void train_add_into(real *y, const real *x, size_t n)
{
  for (size_t k = 0; k < n; ++k) {
    y[k] += x[k];
  }
}
