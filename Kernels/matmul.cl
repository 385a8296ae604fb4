// matmul.cl — C = op(A) · op(B), batched, row-major; op transposes when TA / TB is 1.
//
// Variants: gemm_nn, gemm_tn, gemm_nt, gemm_tt (the forward and both backward products).
// The fast kernel is register-blocked: each work-item computes a BM × 16 block of C (BM = 4 rows,
// 16 columns as two T8 vectors), keeping 8 vector accumulators and doing vector FMAs along K, so
// PoCL's CPU device reaches tens of GFLOP/s without local memory (which it emulates slowly).
// It covers the largest (BM, 16)-aligned corner of C; gemm_edge_* computes the remaining strips
// one element per work-item. A batch index is global dimension 2; a batch stride of 0 shares a
// rank-2 operand across the batch.
#include "common.cl"

#ifndef BM
#define BM 4               // rows of C per work-item in the fast kernel
#endif

// Element (i, k) of op(A) and (k, j) of op(B), given the stored leading dimensions.
#define A_AT(TA, i, k) ((TA) ? A[(size_t)(k) * lda + (i)] : A[(size_t)(i) * lda + (k)])
#define B_AT(TB, k, j) ((TB) ? B[(size_t)(j) * ldb + (k)] : B[(size_t)(k) * ldb + (j)])

#define GEMM(name, TA, TB)                                                                        \
__kernel void gemm_##name(const int M, const int N, const int K,                                  \
                          __global const T* restrict A0, const ulong strideA, const int lda,      \
                          __global const T* restrict B0, const ulong strideB, const int ldb,      \
                          __global T* restrict C0) {                                              \
    const int j0 = get_global_id(0) * 16, i0 = get_global_id(1) * BM;                             \
    const size_t batch = get_global_id(2);                                                        \
    __global const T* A = A0 + batch * strideA;                                                   \
    __global const T* B = B0 + batch * strideB;                                                   \
    __global T* C = C0 + batch * (size_t)M * N;                                                   \
    T8 c0[BM], c1[BM];                                                                            \
    for (int r = 0; r < BM; r++) { c0[r] = (T8)(0); c1[r] = (T8)(0); }                           \
    for (int k = 0; k < K; k++) {                                                                 \
        T8 b0, b1;                                                                                \
        if (TB) {                                                                                 \
            b0 = (T8)(B_AT(1, k, j0 + 0), B_AT(1, k, j0 + 1), B_AT(1, k, j0 + 2), B_AT(1, k, j0 + 3),   \
                      B_AT(1, k, j0 + 4), B_AT(1, k, j0 + 5), B_AT(1, k, j0 + 6), B_AT(1, k, j0 + 7));  \
            b1 = (T8)(B_AT(1, k, j0 + 8), B_AT(1, k, j0 + 9), B_AT(1, k, j0 + 10), B_AT(1, k, j0 + 11), \
                      B_AT(1, k, j0 + 12), B_AT(1, k, j0 + 13), B_AT(1, k, j0 + 14), B_AT(1, k, j0 + 15));\
        } else {                                                                                  \
            b0 = vload8(0, B + (size_t)k * ldb + j0);                                             \
            b1 = vload8(0, B + (size_t)k * ldb + j0 + 8);                                         \
        }                                                                                         \
        for (int r = 0; r < BM; r++) {                                                            \
            const T a = A_AT(TA, i0 + r, k);                                                      \
            c0[r] = fma((T8)(a), b0, c0[r]);                                                      \
            c1[r] = fma((T8)(a), b1, c1[r]);                                                      \
        }                                                                                         \
    }                                                                                             \
    for (int r = 0; r < BM; r++) {                                                                \
        vstore8(c0[r], 0, C + (size_t)(i0 + r) * N + j0);                                         \
        vstore8(c1[r], 0, C + (size_t)(i0 + r) * N + j0 + 8);                                     \
    }                                                                                             \
}                                                                                                 \
/* One element per work-item over rows [row0, row0 + rows) × columns [col0, col0 + cols). */      \
__kernel void gemm_edge_##name(const int M, const int N, const int K,                             \
                               __global const T* restrict A0, const ulong strideA, const int lda, \
                               __global const T* restrict B0, const ulong strideB, const int ldb, \
                               __global T* restrict C0, const int row0, const int col0) {         \
    const int j = col0 + get_global_id(0), i = row0 + get_global_id(1);                           \
    const size_t batch = get_global_id(2);                                                        \
    __global const T* A = A0 + batch * strideA;                                                   \
    __global const T* B = B0 + batch * strideB;                                                   \
    T acc = (T)0;                                                                                 \
    for (int k = 0; k < K; k++) acc = fma(A_AT(TA, i, k), B_AT(TB, k, j), acc);                   \
    C0[batch * (size_t)M * N + (size_t)i * N + j] = acc;                                          \
}

#if IS_FLOAT
GEMM(nn, 0, 0)
GEMM(tn, 1, 0)
GEMM(nt, 0, 1)
GEMM(tt, 1, 1)
#endif
