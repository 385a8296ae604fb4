// matmul.cl — C = A · B, batched, row-major.
//
// Products with Aᵀ or Bᵀ (the backward passes) are run by the host as a transpose of that operand
// (the gather kernel of elementwise.cl, O(n²)) followed by this kernel, so the O(n³) loop always
// reads A along its rows and B's rows contiguously.
// The fast kernel is register-blocked: each work-item computes a 4 × 16 block of C in eight T8
// accumulators, unrolled into plain variables so they stay in registers, with vector FMAs along
// K — no local memory, which PoCL's CPU device emulates slowly. It covers the largest
// (4, 16)-aligned corner of C; gemm_edge_* computes the remaining strips one element per
// work-item. A batch index is global dimension 2; a batch stride of 0 shares a rank-2 operand.
#include "common.cl"

#define ACCUMULATE(r, a)                        \
    c##r##0 = fma((T8)(a), b0, c##r##0);        \
    c##r##1 = fma((T8)(a), b1, c##r##1);

#define STORE(r)                                                            \
    vstore8(c##r##0, 0, C + (size_t)(i0 + r) * N + j0);                     \
    vstore8(c##r##1, 0, C + (size_t)(i0 + r) * N + j0 + 8);

#define GEMM(name)                                                                            \
__kernel void gemm_##name(const int M, const int N, const int K,                                  \
                          __global const T* restrict A0, const ulong strideA, const int lda,      \
                          __global const T* restrict B0, const ulong strideB, const int ldb,      \
                          __global T* restrict C0) {                                              \
    const int j0 = get_global_id(0) * 16, i0 = get_global_id(1) * 4;                              \
    const size_t batch = get_global_id(2);                                                        \
    __global const T* A = A0 + batch * strideA;                                                   \
    __global const T* B = B0 + batch * strideB + j0;                                              \
    __global T* C = C0 + batch * (size_t)M * N;                                                   \
    T8 c00 = (T8)(0), c01 = (T8)(0), c10 = (T8)(0), c11 = (T8)(0);                               \
    T8 c20 = (T8)(0), c21 = (T8)(0), c30 = (T8)(0), c31 = (T8)(0);                               \
    for (int k = 0; k < K; k++) {                                                                 \
        const T8 b0 = vload8(0, B + (size_t)k * ldb), b1 = vload8(1, B + (size_t)k * ldb);        \
        const T4 a = (T4)(A[(size_t)i0 * lda + k], A[(size_t)(i0 + 1) * lda + k],                 \
                          A[(size_t)(i0 + 2) * lda + k], A[(size_t)(i0 + 3) * lda + k]);          \
        ACCUMULATE(0, a.s0) ACCUMULATE(1, a.s1) ACCUMULATE(2, a.s2) ACCUMULATE(3, a.s3)           \
    }                                                                                             \
    STORE(0) STORE(1) STORE(2) STORE(3)                                                           \
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
    for (int k = 0; k < K; k++) acc = fma(A[(size_t)i * lda + k], B[(size_t)k * ldb + j], acc);   \
    C0[batch * (size_t)M * N + (size_t)i * N + j] = acc;                                          \
}

#if IS_FLOAT
GEMM(nn)
#endif
