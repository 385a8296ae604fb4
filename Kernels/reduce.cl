// reduce.cl — sum and max over a contiguous block of axes, viewed as outer × extent × inner.
//
// The order of operations is fixed and is the host's too (ReduceOrder in HostBackend.swift), so
// a sum is bit-identical on every device: one work-group of LANES items per output; item l
// combines elements l, l+LANES, l+2·LANES, … of its row in turn, then a halving tree
// p[l] ⊕= p[l+s] for s = LANES/2 … 1 in local memory. Rows with inner == 1 and more than CHUNK
// elements are first cut into CHUNK-element chunks (reduce_chunks_*), whose results are then
// reduced the same way (reduce_rows_* with extent = number of chunks).
#include "common.cl"

#ifndef LANES
#define LANES 256          // work-group size; must match ReduceOrder.lanes on the host
#endif

#define SUM_OP(p, v) ((p) + (v))
#define MAX_OP(p, v) (((v) > (p) || isnan(v)) ? (v) : (p))

#define REDUCE(name, OP, INIT)                                                                    \
inline void name##_tree(__local T* p, const T acc, __global T* out, const size_t o) {             \
    const int l = get_local_id(0);                                                                \
    p[l] = acc;                                                                                   \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                 \
    for (int s = LANES / 2; s > 0; s >>= 1) {                                                     \
        if (l < s) p[l] = OP(p[l], p[l + s]);                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                             \
    }                                                                                             \
    if (l == 0) out[o] = p[0];                                                                    \
}                                                                                                 \
__kernel __attribute__((reqd_work_group_size(LANES, 1, 1)))                                       \
void reduce_rows_##name(__global const T* restrict x, __global T* restrict out,                  \
                        const int extent, const int inner) {                                      \
    __local T p[LANES];                                                                           \
    const size_t o = get_group_id(0), row = o / inner, col = o % inner;                           \
    __global const T* base = x + row * (size_t)extent * inner + col;                              \
    T acc = INIT;                                                                                 \
    for (int k = get_local_id(0); k < extent; k += LANES) acc = OP(acc, base[(size_t)k * inner]); \
    name##_tree(p, acc, out, o);                                                                  \
}                                                                                                 \
__kernel __attribute__((reqd_work_group_size(LANES, 1, 1)))                                       \
void reduce_chunks_##name(__global const T* restrict x, __global T* restrict out,                \
                          const int extent, const int chunks, const int chunk) {                  \
    __local T p[LANES];                                                                           \
    const size_t o = get_group_id(0), row = o / chunks, c = o % chunks;                           \
    __global const T* base = x + row * (size_t)extent + c * (size_t)chunk;                        \
    const int n = min(chunk, extent - (int)c * chunk);                                            \
    T acc = INIT;                                                                                 \
    for (int k = get_local_id(0); k < n; k += LANES) acc = OP(acc, base[k]);                      \
    name##_tree(p, acc, out, o);                                                                  \
}

#if IS_FLOAT
REDUCE(sum, SUM_OP, (T)0)
REDUCE(max, MAX_OP, (T)(-INFINITY))
#endif
