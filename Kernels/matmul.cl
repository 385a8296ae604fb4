// matmul.cl — C = op(A) · op(B), batched, row-major; op is the identity or a transpose.
//
// Two steps, as in GotoBLAS and CLBlast: the host first packs op(A) into panels of 6 rows and
// op(B) into panels of 16 columns, each panel stored k after k and padded with zeros, so
// transposed operands, odd sizes and the kernel's reads are all settled in O(n²) copies; then
// gemm_packed streams one A panel and one B panel through a 6 × 16 register block of C per
// work-item: twelve T8 accumulators, two vector loads of B and six scalars of A per k, vector
// FMAs — no local memory, which PoCL's CPU device emulates slowly. Only the stores check bounds.
// A batch index is global dimension 2; a packed stride of 0 shares a rank-2 operand.
#include "common.cl"

#define PANEL_ROWS 6
#define PANEL_COLS 16

// Packs an operand seen as `rows` × K (op(A), or op(B)ᵀ) into panels of `width` rows:
// P[batch][p][k][r] = X(p·width + r, k), 0 past `rows`, where X(i, k) is X[i·ld + k], or
// X[k·ld + i] when the operand is stored K-major. op(A) is packed with width PANEL_ROWS (K-major
// when A is transposed), op(B)ᵀ with PANEL_COLS (K-major unless B is). One work-item per (8 k's,
// panel p) writes its 8 · width values, which are contiguous in P, reading X by rows: both sides
// stay in a few cache lines (one item per (k, p) with the bounds and layout tests per element
// took a sixth of W3's time on PoCL).
__kernel void pack(__global const T* restrict X0, const ulong stride, const int ld, const int kMajor,
                   const int rows, const int K, const int width, __global T* restrict P) {
    const int k0 = get_global_id(0) * 8, p = get_global_id(1);
    const size_t batch = get_global_id(2), panels = (rows + width - 1) / width;
    __global const T* X = X0 + batch * stride;
    __global T* out = P + ((batch * panels + p) * K + k0) * width;
    const int i0 = p * width, n = min(width, rows - i0), kn = min(8, K - k0);
    if (kMajor) {
        for (int j = 0; j < kn; j++) {
            __global const T* src = X + (size_t)(k0 + j) * ld + i0;
            for (int r = 0; r < n; r++) out[j * width + r] = src[r];
            for (int r = n; r < width; r++) out[j * width + r] = (T)0;
        }
    } else {
        for (int r = 0; r < n; r++) {
            __global const T* src = X + (size_t)(i0 + r) * ld + k0;
            for (int j = 0; j < kn; j++) out[j * width + r] = src[j];
        }
        for (int r = n; r < width; r++) for (int j = 0; j < kn; j++) out[j * width + r] = (T)0;
    }
}

#define ACCUMULATE(r)                                      \
    c##r##0 = fma((T8)(a[r]), b0, c##r##0);                \
    c##r##1 = fma((T8)(a[r]), b1, c##r##1);

#define STORE(r)                                                                              \
    if (i0 + r < M) {                                                                         \
        __global T* row = C + (size_t)(i0 + r) * N + j0;                                      \
        if (full) { vstore8(c##r##0, 0, row); vstore8(c##r##1, 1, row); }                     \
        else {                                                                                \
            T v[PANEL_COLS]; vstore8(c##r##0, 0, v); vstore8(c##r##1, 1, v);                  \
            for (int c = 0; j0 + c < N; c++) row[c] = v[c];                                   \
        }                                                                                     \
    }

#if IS_FLOAT
// C[batch] (M × N) from packed panels; one work-item per (B panel q, A panel p).
__kernel void gemm_packed(const int M, const int N, const int K,
                          __global const T* restrict Ap, const ulong strideAp,
                          __global const T* restrict Bp, const ulong strideBp, __global T* restrict C0) {
    const int q = get_global_id(0), p = get_global_id(1);
    const size_t batch = get_global_id(2);
    const int i0 = p * PANEL_ROWS, j0 = q * PANEL_COLS;
    __global const T* a = Ap + batch * strideAp + (size_t)p * K * PANEL_ROWS;
    __global const T* b = Bp + batch * strideBp + (size_t)q * K * PANEL_COLS;
    __global T* C = C0 + batch * (size_t)M * N;
    T8 c00 = (T8)(0), c01 = (T8)(0), c10 = (T8)(0), c11 = (T8)(0), c20 = (T8)(0), c21 = (T8)(0);
    T8 c30 = (T8)(0), c31 = (T8)(0), c40 = (T8)(0), c41 = (T8)(0), c50 = (T8)(0), c51 = (T8)(0);
    for (int k = 0; k < K; k++, a += PANEL_ROWS, b += PANEL_COLS) {
        const T8 b0 = vload8(0, b), b1 = vload8(1, b);
        ACCUMULATE(0) ACCUMULATE(1) ACCUMULATE(2) ACCUMULATE(3) ACCUMULATE(4) ACCUMULATE(5)
    }
    const bool full = j0 + PANEL_COLS <= N;
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
}
#endif
