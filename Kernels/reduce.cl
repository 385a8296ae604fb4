// reduce.cl — sum and max over a contiguous block of axes, viewed as outer × extent × inner.
//
// The order of operations is fixed and is the host's too (ReduceOrder in HostBackend.swift), so
// a sum is bit-identical on every device: one work-group of LANES items per output; item l
// combines elements l, l+LANES, l+2·LANES, … of its row in turn, then a halving tree
// p[l] ⊕= p[l+s] for s = LANES/2 … 1 in local memory. Rows with inner == 1 and more than CHUNK
// elements are first cut into CHUNK-element chunks (reduce_chunks_*: the same lanes, run eight to
// a work-item as vectors), whose results are then reduced the same way (reduce_rows_* with
// extent = number of chunks).
#include "common.cl"

#ifndef LANES
#define LANES 256          // work-group size; must match ReduceOrder.lanes on the host
#endif

#define SUM_OP(p, v) ((p) + (v))
#define MAX_OP(p, v) (((v) > (p) || isnan(v)) ? (v) : (p))
#define MAX_OP8(p, v) select((p), (v), ((v) > (p)) | isnan(v))   /* lane by lane, as MAX_OP (SUM_OP serves vectors as is) */

// The halving tree over the work-group's lanes in local memory p (scalars or T8 columns).
#define HALVING_TREE(p, l, OP)                                                                    \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                 \
    for (int s = LANES / 2; s > 0; s >>= 1) {                                                     \
        if (l < s) p[l] = OP(p[l], p[l + s]);                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                             \
    }

#define REDUCE(name, OP, OP8, INIT)                                                                    \
inline void name##_tree(__local T* p, const T acc, __global T* out, const size_t o) {             \
    const int l = get_local_id(0);                                                                \
    p[l] = acc;                                                                                   \
    HALVING_TREE(p, l, OP);                                                                       \
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
/* Eight adjacent columns (inner % 8 == 0) as one T8 per lane: each column in the order above,  \
   with an eighth of the work-groups (a bias gradient sums 512 columns of 256 rows).            \
*/                                                                                                \
__kernel __attribute__((reqd_work_group_size(LANES, 1, 1)))                                       \
void reduce_cols8_##name(__global const T* restrict x, __global T* restrict out,                 \
                         const int extent, const int inner) {                                     \
    __local T8 p[LANES];                                                                          \
    const size_t o = get_group_id(0), groups = inner / 8, row = o / groups, col = o % groups * 8; \
    __global const T* base = x + row * (size_t)extent * inner + col;                              \
    const int l = get_local_id(0);                                                                \
    T8 acc = (T8)(INIT);                                                                          \
    for (int k = l; k < extent; k += LANES) acc = OP8(acc, vload8(0, base + (size_t)k * inner));  \
    p[l] = acc;                                                                                   \
    HALVING_TREE(p, l, OP8);                                                                      \
    if (l == 0) vstore8(p[0], 0, out + row * inner + col);                                        \
}                                                                                                 \
/* Long rows, chunk by chunk: LANES / 8 items, item i running lanes 8i … 8i+7 as one T8, so each  \
   lane still combines its elements in turn (the same order, bit for bit) with eight at a time;  \
   then item 0 runs the halving tree.                                                            \
*/                                                                                                \
__kernel __attribute__((reqd_work_group_size(LANES / 8, 1, 1)))                                   \
void reduce_chunks_##name(__global const T* restrict x, __global T* restrict out,                \
                          const int extent, const int chunks, const int chunk) {                  \
    __local T p[LANES];                                                                           \
    const size_t o = get_group_id(0), row = o / chunks, c = o % chunks;                           \
    __global const T* base = x + row * (size_t)extent + c * (size_t)chunk;                        \
    const int n = min(chunk, extent - (int)c * chunk), l = get_local_id(0) * 8;                   \
    T8 acc = (T8)(INIT);                                                                          \
    int k = 0;                                                                                    \
    for (; k + LANES <= n; k += LANES) acc = OP8(acc, vload8(0, base + k + l));                   \
    vstore8(acc, 0, p + l);                                                                       \
    for (int j = 0; j < 8; j++) if (k + l + j < n) p[l + j] = OP(p[l + j], base[k + l + j]);      \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                 \
    if (l == 0) {                                                                                 \
        for (int s = LANES / 2; s > 0; s >>= 1)                                                   \
            for (int i = 0; i < s; i++) p[i] = OP(p[i], p[i + s]);                                \
        out[o] = p[0];                                                                            \
    }                                                                                             \
}

#if IS_FLOAT
REDUCE(sum, SUM_OP, SUM_OP, (T)0)
REDUCE(max, MAX_OP, MAX_OP8, (T)(-INFINITY))
#else
// Integers and bool: sums wrap as the host's do; a max starts from the type's least value.
#define LOWEST (T)(IS_BOOL ? 0 : sizeof(T) == 4 ? INT_MIN : CHAR_MIN)
REDUCE(sum, SUM_OP, SUM_OP, (T)0)
REDUCE(max, max, max, LOWEST)
#endif
