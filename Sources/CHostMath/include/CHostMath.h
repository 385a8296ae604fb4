// Loops of sin, cos and exp over float64 and float32 values for the host backend (HostMath.swift).
// Each is compiled three times, for AVX-512, AVX2 and baseline x86-64, and runs the widest the
// CPU has (tapecl_math_level). All give the same bits: no FMA contraction, the same IEEE
// operations in the same order, only wider vectors.
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

// Each loop's variants, for the test that compares them (the AVX-512 and AVX2 ones only on CPUs
// that have them).
#define TAPECL_VARIANTS(name, T) \
    void name##_avx512(const T *x, T *out, long n); \
    void name##_avx2(const T *x, T *out, long n); \
    void name##_baseline(const T *x, T *out, long n);
TAPECL_VARIANTS(tapecl_sin, double)
TAPECL_VARIANTS(tapecl_cos, double)
TAPECL_VARIANTS(tapecl_exp, double)
TAPECL_VARIANTS(tapecl_sin_f32, float)
TAPECL_VARIANTS(tapecl_cos_f32, float)
TAPECL_VARIANTS(tapecl_exp_f32, float)

// 2 when the loops run their AVX-512 variant, 1 for AVX2, 0 for baseline.
int tapecl_math_level(void);

// Copies `bytes` (a multiple of 4) with non-temporal stores, then fences.
void tapecl_stream(const void *x, void *out, long bytes);

#endif
