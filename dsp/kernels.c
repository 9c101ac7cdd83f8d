/*
  The kernel table of one instruction set (see kernels.h).
*/

#include "kernels.h"

#if defined(__AVX512F__)
const carry_kernel_table CARRY_ISA_NAME(carry_kernels) = {
  carry_lstm_chunk,
  carry_gru_chunk,
  carry_lstm_delayed_chunk,
  carry_gru_delayed_chunk,
  CARRY_AVX2_NAME(carry_dense_chunk),
  CARRY_AVX2_NAME(carry_activation_chunk),
  CARRY_AVX2_NAME(carry_dense_lanes_chunk),
  carry_lstm_pair_chunk,
  carry_gru_pair_chunk,
  carry_lstm_lanes_chunk,
  carry_gru_lanes_chunk,
};
#else
const carry_kernel_table CARRY_ISA_NAME(carry_kernels) = {
  carry_lstm_chunk,
  carry_gru_chunk,
  carry_lstm_delayed_chunk,
  carry_gru_delayed_chunk,
  carry_dense_chunk,
  carry_activation_chunk,
  carry_dense_lanes_chunk,
  carry_lstm_pair_chunk,
  carry_gru_pair_chunk,
  carry_lstm_lanes_chunk,
  carry_gru_lanes_chunk,
};
#endif
