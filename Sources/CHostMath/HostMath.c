// sin, cos and exp over blocks, as Cephes computes them in double precision (S. L. Moshier,
// sin.c and exp.c): reduction by pi/4 in three parts and by ln 2 in two, then the same
// polynomials, written without branches so each loop vectorises. Accurate to about 1 ulp of a
// double, so float32 results are libm's rounded to float. Arguments outside the reduction's
// range (|x| > 2^20 for sin and cos, exp beyond +-708, NaN, +-inf) are redone with libm in a
// second pass.
#include "CHostMath.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && defined(__ELF__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/// 1.5 * 2^52: adding it rounds a double of magnitude below 2^51 to an integer held in the low bits.
static const double magic = 0x1.8p52;

static inline uint64_t bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline double from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

static inline __attribute__((always_inline)) void sincos_loop(const double *x, double *o, long n, int cosine) {
    const double dp1 = 7.85398125648498535156e-1, dp2 = 3.77489470793079817668e-8, dp3 = 2.69515142907905952645e-15;
    for (long i = 0; i < n; i++) {
        const double v = x[i], av = fabs(v);
        const double a = 1048576.0 < av ? 1048576.0 : av;      // larger (and NaN) arguments: second pass
        const double t = a * 1.27323954473516268615;            // 4/pi
        double q = (t + magic) - magic;
        q = q > t ? q - 1 : q;                                  // floor(t)
        q += (bits(q + magic) & 1) ? 1.0 : 0.0;                 // even octant: j in {0, 2, 4, 6}
        const uint64_t j = bits(q + magic) & 7;
        const double z = ((a - q * dp1) - q * dp2) - q * dp3;   // |z| <= pi/4
        const double zz = z * z;
        const double s = z + z * zz * (((((1.58962301576546568060e-10 * zz - 2.50507477628578072866e-8) * zz
            + 2.75573136213857245213e-6) * zz - 1.98412698295895385996e-4) * zz + 8.33333333332211858878e-3) * zz
            - 1.66666666666666307295e-1);
        const double c = 1 - 0.5 * zz + zz * zz * (((((-1.13585365213876817300e-11 * zz + 2.08757008419747316778e-9) * zz
            - 2.75573141792967388112e-7) * zz + 2.48015872888517045348e-5) * zz - 1.38888888888730564116e-3) * zz
            + 4.16666666666665929218e-2);
        // sin(a) by octant j: s, c, -s, -c; cos(a): c, -s, -c, s; sin is odd, cos even.
        const double r = (((j & 2) == 0) != cosine) ? s : c;
        const int negative = cosine ? ((j + 2) & 4) != 0 : (((j & 4) != 0) != (signbit(v) != 0));
        o[i] = negative ? -r : r;
    }
    for (long i = 0; i < n; i++)
        if (!(fabs(x[i]) <= 1048576.0)) o[i] = cosine ? cos(x[i]) : sin(x[i]);
}

CLONES void tapecl_sin(const double *x, double *out, long n) { sincos_loop(x, out, n, 0); }
CLONES void tapecl_cos(const double *x, double *out, long n) { sincos_loop(x, out, n, 1); }

CLONES void tapecl_exp(const double *x, double *o, long n) {
    for (long i = 0; i < n; i++) {
        const double lo = -708.0 >= x[i] ? -708.0 : x[i];
        const double v = 708.0 < lo ? 708.0 : lo;               // beyond (and NaN): second pass
        const double t = 1.4426950408889634073599 * v + magic;  // v / ln 2, rounded
        const int64_t k = (int64_t)(bits(t) & 0xFFFFFFFFFFFFFull) - 0x8000000000000ll;
        const double p = t - magic;
        const double r = (v - p * 6.93145751953125e-1) - p * 1.42860682030941723212e-6;   // v - k ln 2
        const double rr = r * r;
        const double pr = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
        const double qr = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
            + 2.00000000000000000009e0;
        o[i] = (1 + 2 * pr / (qr - pr)) * from_bits((uint64_t)(k + 1023) << 52);
    }
    for (long i = 0; i < n; i++)
        if (!(fabs(x[i]) <= 708.0)) o[i] = exp(x[i]);
}

// The conversions around every host block loop of float32 tensors: baseline x86-64 converts two
// values an instruction, AVX2 four (a W2 training step does about 30 such loops).
CLONES void tapecl_widen(const float *x, double *out, long n) { for (long i = 0; i < n; i++) out[i] = x[i]; }
CLONES void tapecl_narrow(const double *x, float *out, long n) { for (long i = 0; i < n; i++) out[i] = (float)x[i]; }
CLONES void tapecl_round(double *x, long n) { for (long i = 0; i < n; i++) x[i] = (float)x[i]; }

// narrow with non-temporal stores, for outputs larger than the last-level cache: the stores skip
// the cache, so the output's lines are not read first (a third of the traffic of a
// read-one-write-one pass). Fenced, so the values are visible to whoever reads them next.
CLONES void tapecl_narrow_stream(const double *x, float *out, long n) {
    typedef float f8 __attribute__((vector_size(32)));
    typedef double d8 __attribute__((vector_size(64)));
    long i = 0;
    for (; i < n && ((uintptr_t)(out + i) & 31) != 0; i++) out[i] = (float)x[i];
    for (; i + 8 <= n; i += 8) {
        d8 d;
        memcpy(&d, x + i, sizeof d);
        __builtin_nontemporal_store(__builtin_convertvector(d, f8), (f8 *)(out + i));
    }
    for (; i < n; i++) out[i] = (float)x[i];
#if defined(__x86_64__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}
