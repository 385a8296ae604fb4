// elementwise.cl — every unary and binary op of the table (Sources/TapeCL/Ops/Elementwise.swift),
// one line each, plus the strided gather (transpose, broadcast).
//
// Layout: contiguous row-major buffers. Each work-item writes out[off + get_global_id(0)]; the
// host launches an exact number of items (a multiple of 64, then the tail with `off`; small
// tensors in one launch), so no kernel has a bounds check and PoCL vectorises the work-group loop.
// Binary variants (chosen on the host by OpenCLBackend.binaryVariant):
//   _vv  both operands have the output's shape       _sv / _vs  one operand is a single element
//   _vr / _rv  one operand is a row repeated along the leading axes (a bias), fewer than 2³¹ items
//   _g   general NumPy broadcasting through strides (0 along broadcast axes)
#include "common.cl"

// A fused chain's program (see Fusion.swift) is built with -DFUNCTIONS_ONLY: the op functions
// op_NAME and bop_NAME without the kernels, so PoCL compiles one kernel, not all of them.
// (Each definition pastes `name` itself: PoCL defines builtins such as sin as object-like macros,
// so passing `name` on to another macro would expand it.)
#ifdef FUNCTIONS_ONLY
#define UNARY(name, expr) inline T op_##name(const T x) { return (expr); }
#define BINARY(name, expr) inline T bop_##name(const T a, const T b) { return (expr); }
#else
#define UNARY(name, expr)                                                                        \
inline T op_##name(const T x) { return (expr); }                                                 \
__kernel void unary_##name(__global const T* restrict xs, __global T* restrict out, const ulong off) { \
    const size_t i = get_global_id(0) + off; out[i] = op_##name(xs[i]);                           \
}

#define BINARY(name, expr)                                                                       \
inline T bop_##name(const T a, const T b) { return (expr); }                                     \
__kernel void binary_##name##_vv(__global const T* restrict as, __global const T* restrict bs,   \
                                 __global T* restrict out, const ulong off) {                    \
    const size_t i = get_global_id(0) + off; const T a = as[i], b = bs[i]; out[i] = bop_##name(a, b);   \
}                                                                                                \
__kernel void binary_##name##_sv(__global const T* restrict as, __global const T* restrict bs,   \
                                 __global T* restrict out, const ulong off) {                    \
    const size_t i = get_global_id(0) + off; const T a = as[0], b = bs[i]; out[i] = bop_##name(a, b);   \
}                                                                                                \
__kernel void binary_##name##_vs(__global const T* restrict as, __global const T* restrict bs,   \
                                 __global T* restrict out, const ulong off) {                    \
    const size_t i = get_global_id(0) + off; const T a = as[i], b = bs[0]; out[i] = bop_##name(a, b);   \
}                                                                                                \
__kernel void binary_##name##_vr(__global const T* restrict as, __global const T* restrict bs,   \
                                 __global T* restrict out, const int row, const ulong off) {    \
    const size_t i = get_global_id(0) + off; const T a = as[i], b = bs[(uint)i % (uint)row]; out[i] = bop_##name(a, b); \
}                                                                                                \
__kernel void binary_##name##_rv(__global const T* restrict as, __global const T* restrict bs,   \
                                 __global T* restrict out, const int row, const ulong off) {    \
    const size_t i = get_global_id(0) + off; const T a = as[(uint)i % (uint)row], b = bs[i]; out[i] = bop_##name(a, b); \
}                                                                                                \
__kernel void binary_##name##_g(__global const T* restrict as, __global const T* restrict bs,    \
                                __global T* restrict out, const int rank, const int8 shape,      \
                                const int8 sa, const int8 sb, const ulong off) {                 \
    const size_t i = get_global_id(0) + off;                                                     \
    const T a = as[strided_offset(i, rank, shape, sa)], b = bs[strided_offset(i, rank, shape, sb)]; \
    out[i] = bop_##name(a, b);                                                                   \
}

#endif

// Every element type.
UNARY(neg,  -x)
UNARY(relu, x > (T)0 ? x : (T)0)
UNARY(abs,  x < (T)0 ? -x : x)
UNARY(step, x > (T)0 ? (T)1 : (T)0)
UNARY(sign, x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : (T)0))
BINARY(add, a + b)
BINARY(sub, a - b)
BINARY(mul, a * b)
BINARY(div, a / b)
BINARY(maximum, a >= b ? a : b)
BINARY(minimum, a <= b ? a : b)

#if IS_FLOAT
UNARY(sin,      SIN(x))
UNARY(cos,      COS(x))
UNARY(tan,      tan(x))
UNARY(exp,      exp(x))
UNARY(log,      log(x))
UNARY(sqrt,     sqrt(x))
UNARY(tanh,     TANH(x))
UNARY(sigmoid,  x >= (T)0 ? (T)1 / ((T)1 + exp(-x)) : exp(x) / ((T)1 + exp(x)))
UNARY(safeLog, x > (T)0 ? log(x) : (T)0)
BINARY(pow, pow(a, b))
#endif

#ifdef FUNCTIONS_ONLY
// In a fused chain (small results only, see Fusion.swift) the FIXUP lines below define exact_NAME:
// one step giving each element what unary_NAME and then fixup_NAME give it.
#define FIXUP(name, expr)                                                                        \
inline T exact_##name(const T x) { return sizeof(T) == 4 && fabs(x) > (T)LARGE_ARGUMENT ? (expr) : op_##name(x); }
#else
// A second pass for ops whose first pass is exact only on part of the domain: the host runs
// fixup_NAME after unary_NAME when this file defines it. sin and cos: the vectorised reduction of
// common.cl serves |x| <= LARGE_ARGUMENT; these redo the rare larger float arguments exactly.
// With `whole` set it is the only pass (small tensors, where a second launch costs more than
// the branch): every element gets either `expr` or the UNARY line's value.
#define FIXUP(name, expr)                                                                        \
__kernel void fixup_##name(__global const T* restrict xs, __global T* restrict out, const int whole, \
                           const ulong off) {                                                    \
    const size_t i = get_global_id(0) + off; const T x = xs[i];                                  \
    if (sizeof(T) == 4 && fabs(x) > (T)LARGE_ARGUMENT) out[i] = (expr);                          \
    else if (whole) out[i] = op_##name(x);                                                       \
}                                                                                                \
/* The same check eight elements to an item with one vector compare, for large tensors (a      \
   per-element branch around a call keeps PoCL from vectorising, and cost as much as the op). */ \
__kernel void fixup8_##name(__global const T* restrict xs, __global T* restrict out, const ulong off) { \
    const size_t i = (get_global_id(0) + off) * 8;                                               \
    if (sizeof(T) == 4 && any(fabs(vload8(0, xs + i)) > (T8)LARGE_ARGUMENT))                     \
        for (int j = 0; j < 8; j++) {                                                            \
            const T x = xs[i + j];                                                               \
            if (fabs(x) > (T)LARGE_ARGUMENT) out[i + j] = (expr);                                \
        }                                                                                        \
}
#endif
#if IS_FLOAT
FIXUP(sin, sin(x))
FIXUP(cos, cos(x))
#endif

#ifndef FUNCTIONS_ONLY
// out[i] = xs[Σ index_d · strides_d]: transpose (permuted strides) and broadcast (0 strides).
__kernel void gather(__global const T* restrict xs, __global T* restrict out, const int rank,
                     const int8 shape, const int8 strides, const ulong off) {
    const size_t i = get_global_id(0) + off;
    out[i] = xs[strided_offset(i, rank, shape, strides)];
}

#endif
