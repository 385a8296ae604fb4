// sin, cos and exp over blocks of float64 or float32 values, as Cephes computes them in double
// precision (S. L. Moshier, sin.c and exp.c): reduction by pi/4 in three parts and by ln 2 in
// two, then the same polynomials, written without branches so each loop vectorises. Accurate to
// about 1 ulp of a double, so float32 results are libm's rounded to float. Arguments outside the
// reduction's range (|x| > 2^20 for sin and cos, exp beyond +-708, NaN, +-inf) are redone with
// libm in a second pass.
#include "CHostMath.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && defined(__ELF__)
#define X86 1
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define X86 0
#define CLONES
#endif

/// 1.5 * 2^52: adding it rounds a double of magnitude below 2^51 to an integer held in the low bits.
static const double magic = 0x1.8p52;

static inline uint64_t bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline double from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/// sin (cosine = 0) or cos (cosine = 1) of one double, |v| <= 2^20 (larger and NaN: any value,
/// the loops redo them with libm).
static inline __attribute__((always_inline)) double sincos1(double v, int cosine) {
    const double dp1 = 7.85398125648498535156e-1, dp2 = 3.77489470793079817668e-8, dp3 = 2.69515142907905952645e-15;
    const double av = fabs(v);
    const double a = 1048576.0 < av ? 1048576.0 : av;      // larger (and NaN) arguments: second pass
    const double t = a * 1.27323954473516268615;            // 4/pi
    double q = (t + magic) - magic;
    q = q > t ? q - 1 : q;                                  // floor(t)
    q += (bits(q + magic) & 1) ? 1.0 : 0.0;                 // even octant: j in {0, 2, 4, 6}
    const uint64_t j = bits(q + magic) & 7;
    const double z = ((a - q * dp1) - q * dp2) - q * dp3;   // |z| <= pi/4
    const double zz = z * z;
    // sin(a) by octant j: s, c, -s, -c; cos(a): c, -s, -c, s; sin is odd, cos even. Each lane
    // evaluates only its polynomial: s = z + z·zz·P(zz), c = 1 − zz/2 + zz·zz·Q(zz), the same
    // operations in the same order as evaluating both.
    const int sine = ((j & 2) == 0) != cosine;
    const double p = ((((((sine ? 1.58962301576546568060e-10 : -1.13585365213876817300e-11) * zz
        + (sine ? -2.50507477628578072866e-8 : 2.08757008419747316778e-9)) * zz
        + (sine ? 2.75573136213857245213e-6 : -2.75573141792967388112e-7)) * zz
        + (sine ? -1.98412698295895385996e-4 : 2.48015872888517045348e-5)) * zz
        + (sine ? 8.33333333332211858878e-3 : -1.38888888888730564116e-3)) * zz
        + (sine ? -1.66666666666666307295e-1 : 4.16666666666665929218e-2));
    const double r = (sine ? z : 1 - 0.5 * zz) + (sine ? z * zz : zz * zz) * p;
    const int negative = cosine ? ((j + 2) & 4) != 0 : (((j & 4) != 0) != (signbit(v) != 0));
    return negative ? -r : r;
}

/// exp of one double, |x| <= 708 (beyond, and NaN: any value, redone with libm).
static inline __attribute__((always_inline)) double exp1(double x) {
    const double lo = -708.0 >= x ? -708.0 : x;
    const double v = 708.0 < lo ? 708.0 : lo;               // beyond (and NaN): second pass
    const double t = 1.4426950408889634073599 * v + magic;  // v / ln 2, rounded
    const int64_t k = (int64_t)(bits(t) & 0xFFFFFFFFFFFFFull) - 0x8000000000000ll;
    const double p = t - magic;
    const double r = (v - p * 6.93145751953125e-1) - p * 1.42860682030941723212e-6;   // v - k ln 2
    const double rr = r * r;
    const double pr = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
    const double qr = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
        + 2.00000000000000000009e0;
    return (1 + 2 * pr / (qr - pr)) * from_bits((uint64_t)(k + 1023) << 52);
}

static double sin0(double x) { return sincos1(x, 0); }
static double cos0(double x) { return sincos1(x, 1); }

// One loop per function and element type: the branch-free pass (vectorised), then libm for the
// arguments out of range. A float32 element is widened, computed in double and rounded once:
// the float64 loop's value rounded to float32. Each loop is compiled three times on x86-64 — for
// AVX-512 (8 doubles a vector), AVX2 (4) and baseline SSE2 (2) — with the same operations in the
// same order (no FMA contraction), so all three give the same bits; `name` runs the widest the
// CPU has, and the variants are exported for the test that compares them on millions of arguments.
#define BODY(T, f, limit, libm) \
        for (long i = 0; i < n; i++) o[i] = (T)f((double)x[i]); \
        for (long i = 0; i < n; i++) if (!(fabs((double)x[i]) <= limit)) o[i] = (T)libm((double)x[i]);
#if X86
#define LOOP(name, T, f, limit, libm) \
    __attribute__((target("avx512f,avx512dq,avx512vl"))) \
    void name##_avx512(const T *x, T *o, long n) { BODY(T, f, limit, libm) } \
    __attribute__((target("avx2"))) void name##_avx2(const T *x, T *o, long n) { BODY(T, f, limit, libm) } \
    void name##_baseline(const T *x, T *o, long n) { BODY(T, f, limit, libm) } \
    void name(const T *x, T *o, long n) { \
        switch (tapecl_math_level()) { \
        case 2: name##_avx512(x, o, n); break; \
        case 1: name##_avx2(x, o, n); break; \
        default: name##_baseline(x, o, n); \
        } \
    }
#else
#define LOOP(name, T, f, limit, libm) \
    void name(const T *x, T *o, long n) { BODY(T, f, limit, libm) } \
    void name##_avx512(const T *x, T *o, long n) { name(x, o, n); } \
    void name##_avx2(const T *x, T *o, long n) { name(x, o, n); } \
    void name##_baseline(const T *x, T *o, long n) { name(x, o, n); }
#endif

/// 2 with AVX-512 (F, DQ, VL), 1 with AVX2, 0 otherwise; decided once. TAPECL_HOST_MATH=avx2 or
/// baseline caps it (to compare or to work around a CPU).
int tapecl_math_level(void) {
    static int level = -1;
    if (level >= 0) return level;
    int found = 0;
#if X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        found = 2;
    else if (__builtin_cpu_supports("avx2"))
        found = 1;
#endif
    const char *cap = getenv("TAPECL_HOST_MATH");
    if (cap && strcmp(cap, "avx2") == 0 && found > 1) found = 1;
    if (cap && strcmp(cap, "baseline") == 0) found = 0;
    level = found;  // racing first calls store the same value
    return level;
}
LOOP(tapecl_sin, double, sin0, 1048576.0, sin)
LOOP(tapecl_cos, double, cos0, 1048576.0, cos)
LOOP(tapecl_exp, double, exp1, 708.0, exp)
LOOP(tapecl_sin_f32, float, sin0, 1048576.0, sin)
LOOP(tapecl_cos_f32, float, cos0, 1048576.0, cos)
LOOP(tapecl_exp_f32, float, exp1, 708.0, exp)

// A copy with non-temporal stores, for outputs larger than the last-level cache: the stores skip
// the cache, so the output's lines are not read first (a third of the traffic of a
// read-one-write-one pass). Fenced, so the values are visible to whoever reads them next.
// `bytes` and both addresses are multiples of 4 (float32 and float64 elements).
CLONES void tapecl_stream(const void *x, void *out, long bytes) {
    typedef float f8 __attribute__((vector_size(32)));
    const char *src = x;
    char *dst = out;
    long i = 0;
    for (; i < bytes && ((uintptr_t)(dst + i) & 31) != 0; i += 4) memcpy(dst + i, src + i, 4);
    for (; i + 32 <= bytes; i += 32) {
        f8 v;
        memcpy(&v, src + i, sizeof v);
        __builtin_nontemporal_store(v, (f8 *)(dst + i));
    }
    for (; i < bytes; i += 4) memcpy(dst + i, src + i, 4);
#if defined(__x86_64__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}
