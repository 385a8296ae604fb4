// Loops of sin, cos and exp over float64 and float32 values for the host backend (HostMath.swift).
// Each is compiled twice, for AVX2 and for baseline x86-64 (or the target's default), and the
// loader picks one for the CPU at hand (target_clones). Both give the same bits: no FMA
// contraction, the same IEEE operations in the same order, only wider vectors.
#ifndef TAPECL_HOST_MATH_H
#define TAPECL_HOST_MATH_H

// out[i] = f(x[i]) for float64, and for float32 computed in float64 and rounded once.
// x and out must not overlap (the libm pass reads x after out is written).
void tapecl_sin(const double *x, double *out, long n);
void tapecl_cos(const double *x, double *out, long n);
void tapecl_exp(const double *x, double *out, long n);
void tapecl_sin_f32(const float *x, float *out, long n);
void tapecl_cos_f32(const float *x, float *out, long n);
void tapecl_exp_f32(const float *x, float *out, long n);

// Copies `bytes` (a multiple of 4) with non-temporal stores, then fences.
void tapecl_stream(const void *x, void *out, long bytes);

#endif
