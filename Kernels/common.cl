// common.cl — the shared header: types and helpers shared by every TapeCL kernel family.
//
// Each program is built once per element type with -DT=<type> (float, double, int, char);
// IS_FLOAT is 1 for float and double. Arithmetic is exactly what the host loops do: no fused
// multiply-add unless a kernel asks for one (FP_CONTRACT OFF), correctly rounded / and sqrt
// (the backend passes -cl-fp32-correctly-rounded-divide-sqrt).
#ifndef TAPECL_COMMON_H
#define TAPECL_COMMON_H

#ifndef T
#define T float            // element type
#endif
#ifndef IS_FLOAT
#define IS_FLOAT 1
#endif
#ifndef IS_BOOL
#define IS_BOOL 0          // 1 for bool (uchar holding 0 or 1)
#endif
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#pragma OPENCL FP_CONTRACT OFF

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define T4 CAT(T, 4)
#define T8 CAT(T, 8)
#define T16 CAT(T, 16)

// Row-major offset of flat index i of `shape` in an operand read with `strides`
// (0 along broadcast axes); rank <= 8, dimensions packed in int8 vectors.
inline size_t strided_offset(size_t i, int rank, int8 shape, int8 strides) {
    int sh[8], st[8];
    vstore8(shape, 0, sh);
    vstore8(strides, 0, st);
    size_t offset = 0;
    for (int d = rank - 1; d >= 0; d--) {
        offset += (i % (size_t)sh[d]) * (size_t)st[d];
        i /= (size_t)sh[d];
    }
    return offset;
}

// Single-precision sin and cos: Cody–Waite reduction by π/2 in three parts (exact products for
// |q| < 2^16) and the Cephes minimax polynomials on [-π/4, π/4], within about 2 ulp for
// |x| <= LARGE_ARGUMENT. Branch-free, so PoCL vectorises it (its builtin float sin/cos run about
// 10× slower); elementwise.cl's fixup_* kernels redo larger arguments with the builtin.
#define LARGE_ARGUMENT 25000.0f
inline float tapecl_sincos(float x, int cosine) {
    const float q = rint(x * 0.636619772367581343f);                  // nearest multiple of π/2
    float r = fma(q, -1.5703125f, x);
    r = fma(q, -4.837512969970703125e-4f, r);
    r = fma(q, -7.549789954891882e-8f, r);
    const float z = r * r;
    const float s = fma(fma(fma(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f), z * r, r);
    const float c = fma(fma(fma(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f), z * z,
                        fma(-0.5f, z, 1.0f));
    const int k = (int)q + cosine;                                     // cos x = sin(x + π/2)
    const float v = (k & 1) ? c : s;
    return (k & 2) ? -v : v;
}
#define SIN(x) (sizeof(T) == 4 ? (T)tapecl_sincos((float)(x), 0) : sin(x))
#define COS(x) (sizeof(T) == 4 ? (T)tapecl_sincos((float)(x), 1) : cos(x))

// tanh rounds to ±1 from |x| = 9.0109138 (float) and 19.061547465398498 (double) on: the host's
// value there, and TF's (Eigen clamps at ±9.02). Builtins need not reach it (PoCL's float tanh
// stays at ±0.99999994), which left 1 - y² at 1.2e-7 for a saturated unit, so beyond it the
// kernel returns ±1 itself.
#define TANH_SATURATES (sizeof(T) == 4 ? (T)9.0109138f : (T)19.061547465398498)
#define TANH(x) (fabs(x) >= TANH_SATURATES ? copysign((T)1, (x)) : tanh(x))

#endif
