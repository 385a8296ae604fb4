// indexing.cl — ops computed element by element from the output's index (IndexedKernel in
// Backend.swift): comparisons, select, argmax/argmin, gather by ids and its gradient (a segment
// sum). Every kernel takes its inputs, `out`, the op's axis_window `g` (argmax, take, segment_sum;
// AxisWindow in the runtime's Parameters.swift) and the offset `off` of its first item; one item per
// output element, no bounds check (the host launches exactly that many). Each kernel's host twin,
// which must give its bits, is in Sources/TapeCLRuntime/HostIndexing.swift.
#include "common.cl"

// The fields of AxisWindow, in its order (Parameters.kernelArgument): the input viewed as
// [outer, extent, inner], and the number of ids (take, segment_sum).
typedef struct {
    int extent, count, inner;
} axis_window;

// Comparisons of two operands of one shape (the op broadcasts them first); out is a bool mask.
#define COMPARE(name, op)                                                                         \
__kernel void compare_##name(__global const T* restrict a, __global const T* restrict b,         \
                             __global uchar* restrict out, const ulong off) {                 \
    const size_t i = get_global_id(0) + off;                                                      \
    out[i] = (a[i] op b[i]) ? 1 : 0;                                                              \
}
COMPARE(less, <)
COMPARE(less_equal, <=)
COMPARE(greater, >)
COMPARE(greater_equal, >=)
COMPARE(equal, ==)
COMPARE(not_equal, !=)

// out = m ? a : b, the three of one shape.
__kernel void select_mask(__global const T* restrict a, __global const T* restrict b,
                          __global const uchar* restrict m, __global T* restrict out, const ulong off) {
    const size_t i = get_global_id(0) + off;
    out[i] = m[i] ? a[i] : b[i];
}

// The index of the first largest (smallest) element along the middle axis of [outer, extent, inner]
// (g.extent, g.inner); a NaN counts as larger (smaller) than any number, the first NaN wins.
#define ARG(name, better)                                                                         \
__kernel void name(__global const T* restrict x, __global int* restrict out, const axis_window g, \
                   const ulong off) {                                                             \
    const size_t i = get_global_id(0) + off;                                                      \
    const size_t extent = g.extent, inner = g.inner, o = i / inner, c = i % inner;                 \
    __global const T* row = x + o * extent * inner + c;                                           \
    T best = row[0];                                                                              \
    int at = 0;                                                                                   \
    for (size_t k = 1; k < extent; k++) {                                                         \
        const T v = row[k * inner];                                                               \
        if (better) { best = v; at = (int)k; }                                                    \
    }                                                                                             \
    out[i] = at;                                                                                  \
}
#if IS_FLOAT
ARG(argmax, v > best || (isnan(v) && !isnan(best)))
ARG(argmin, v < best || (isnan(v) && !isnan(best)))
#else
ARG(argmax, v > best)
ARG(argmin, v < best)
#endif

// Rows of the middle axis of x [outer, n, inner] picked by ids [m]: out [outer, m, inner]
// (n = g.extent, m = g.count, g.inner). An id outside 0..<n (rejected before the launch) reads nothing and gives 0.
__kernel void take(__global const T* restrict x, __global const int* restrict ids, __global T* restrict out,
                   const axis_window g, const ulong off) {
    const size_t i = get_global_id(0) + off;
    const size_t n = g.extent, m = g.count, inner = g.inner;
    const size_t c = i % inner, j = (i / inner) % m, o = i / (inner * m);
    const int id = ids[j];
    out[i] = (id >= 0 && (size_t)id < n) ? x[(o * n + (size_t)id) * inner + c] : (T)0;
}

// take's gradient: out [outer, n, inner] row r = Σ of dy [outer, m, inner] rows j with ids[j] == r,
// in increasing j (the host's order): `order` lists the j of each r from starts[r] to starts[r + 1].
// (ids itself is the last argument, for the op's own gradient; the kernel does not read it.)
__kernel void segment_sum(__global const T* restrict dy, __global const int* restrict starts,
                          __global const int* restrict order, __global const int* restrict ids,
                          __global T* restrict out, const axis_window g, const ulong off) {
    const size_t i = get_global_id(0) + off;
    const size_t n = g.extent, m = g.count, inner = g.inner;
    const size_t c = i % inner, r = (i / inner) % n, o = i / (inner * n);
    T acc = (T)0;
    for (int k = starts[r]; k < starts[r + 1]; k++) acc += dy[(o * m + (size_t)order[k]) * inner + c];
    out[i] = acc;
}
