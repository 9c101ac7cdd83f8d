/*
  The dense output layer, y = h·w + b, one output, over all T·B rows of a
  chunk at once.
*/

#include "train_internal.h"

void train_dense_forward(const train_dense *dense, const real *h, int n_rows,
                         real *y, train_profile *profile)
{
  const int H = dense->n_in;
  for (int r = 0; r < n_rows; ++r) {
    y[r] = dense->bias[0];
  }
  // y (R, 1) += h (R, H) · w (H, 1)
  train_gemm(false, false, n_rows, 1, H, 1, h, H, dense->kernel, 1, 1, y, 1,
             profile);
}

void train_dense_backward(train_dense *dense, const real *h, const real *d_y,
                          int n_rows, real *d_h, train_profile *profile)
{
  const int H = dense->n_in;
  // dw (H, 1) = hᵀ (H, R) · dy (R, 1)
  train_gemm(true, false, H, 1, n_rows, 1, h, H, d_y, 1, 0, dense->d_kernel,
             1, profile);
  train_column_sums(d_y, n_rows, 1, dense->d_bias);
  // dh (R, H) = dy (R, 1) · wᵀ (1, H)
  train_gemm(false, true, n_rows, H, 1, 1, d_y, 1, dense->kernel, 1, 0, d_h,
             H, profile);
}
