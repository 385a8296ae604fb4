// Block loops of sin, cos and exp over float64 values for the host backend (HostMath.swift).
// Each is compiled twice, for AVX2 and for baseline x86-64 (or the target's default), and the
// loader picks one for the CPU at hand (target_clones). Both give the same bits: no FMA
// contraction, the same IEEE operations in the same order, only wider vectors.
#ifndef TAPECL_HOST_MATH_H
#define TAPECL_HOST_MATH_H

void tapecl_sin(const double *x, double *out, long n);
void tapecl_cos(const double *x, double *out, long n);
void tapecl_exp(const double *x, double *out, long n);

// The float32 <-> float64 conversions around every host block loop: out[i] = x[i] widened or
// narrowed, and x[i] rounded to float32 in place (as a float32 kernel would store it).
void tapecl_widen(const float *x, double *out, long n);
void tapecl_narrow(const double *x, float *out, long n);
void tapecl_narrow_stream(const double *x, float *out, long n);
void tapecl_round(double *x, long n);

#endif
