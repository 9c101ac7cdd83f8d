/*
  Peak multiply-add rate of this machine (see peak.c).
*/

#ifndef CARRY_PEAK_H
#define CARRY_PEAK_H

/** The best rate, in float multiply-adds per nanosecond, over about
    `seconds` of repeated measurements with portable vectors. */
double carry_peak_macs_per_ns_portable(double seconds);

/** The same with AVX2 and FMA (x86-64 builds only; check the CPU first). */
double carry_peak_macs_per_ns_avx2(double seconds);

/** The same with 16-lane AVX-512 vectors (builds with AVX-512 kernels). */
double carry_peak_macs_per_ns_avx512(double seconds);

#endif
