// matmul.cl — C = op(A) · op(B), batched, row-major; op is the identity or a transpose.
//
// Two steps, as in GotoBLAS and CLBlast: the host first packs op(B) into panels of 2·VEC columns
// (and op(A), when it is not read where it is, into panels of 6 rows), each panel stored k after
// k and padded with zeros, so transposed operands, odd sizes and the kernel's reads are all
// settled in O(n²) copies; then gemm streams six rows of op(A) (read where they are, or from those panels)
// and one B panel through a 6 × 2·VEC register block of C per work-item: twelve vector
// accumulators of VEC elements (-DVEC=8 for AVX2's 256-bit registers, 16 for AVX-512's 512-bit
// ones, from the device's preferred vector width), two vector loads of B and six scalars of A per
// k, vector FMAs — no local memory, which PoCL's CPU device emulates slowly. Only the stores check
// bounds. Each output adds its products in k order, wherever A is read from: the same bits.
// A batch index is global dimension 2; a packed stride of 0 shares a rank-2 operand.
#include "common.cl"

#define PANEL_ROWS 6
#ifndef VEC
#define VEC 8
#endif
#define PANEL_COLS (2 * VEC)
#define TV CAT(T, VEC)
#define VLOAD CAT(vload, VEC)
#define VSTORE CAT(vstore, VEC)

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

#define STORE(r)                                                                              \
    if (i0 + r < M) {                                                                         \
        __global T* row = C + (size_t)(i0 + r) * N + j0;                                      \
        if (full) { VSTORE(c##r##0, 0, row); VSTORE(c##r##1, 1, row); }                       \
        else {                                                                                \
            T v[PANEL_COLS]; VSTORE(c##r##0, 0, v); VSTORE(c##r##1, 1, v);                    \
            for (int c = 0; j0 + c < N; c++) row[c] = v[c];                                   \
        }                                                                                     \
    }

#if IS_FLOAT
#define ACCUMULATE(r)                                      \
    c##r##0 = fma((TV)(a##r[k * ks]), b0, c##r##0);        \
    c##r##1 = fma((TV)(a##r[k * ks]), b1, c##r##1);

// C[batch] (M × N), one work-item per (B panel q, block of six rows p), B from packed panels. Row i
// of op(A) starts at A[(i / 6)·ps + (i % 6)·rs] and steps by ks along k: read where it is (ps =
// 6·rs; rs = lda, ks = 1, or for a transposed A rs = 1, ks = lda), or from panels of six rows
// packed k after k (ps = 6·K, rs = 1, ks = 6). Rows past M read row M − 1 and are not stored.
__kernel void gemm(const int M, const int N, const int K,
                   __global const T* restrict A, const ulong strideA, const int ps, const int rs, const int ks,
                   __global const T* restrict Bp, const ulong strideBp, __global T* restrict C0) {
    const int q = get_global_id(0), p = get_global_id(1);
    const size_t batch = get_global_id(2);
    const int i0 = p * PANEL_ROWS, j0 = q * PANEL_COLS;
    __global const T* rows = A + batch * strideA;
#define ROW(r) (rows + (size_t)(min(i0 + r, M - 1) / PANEL_ROWS) * ps + min(i0 + r, M - 1) % PANEL_ROWS * rs)
    __global const T* a0 = ROW(0);
    __global const T* a1 = ROW(1);
    __global const T* a2 = ROW(2);
    __global const T* a3 = ROW(3);
    __global const T* a4 = ROW(4);
    __global const T* a5 = ROW(5);
#undef ROW
    __global const T* b = Bp + batch * strideBp + (size_t)q * K * PANEL_COLS;
    __global T* C = C0 + batch * (size_t)M * N;
    TV c00 = (TV)(0), c01 = (TV)(0), c10 = (TV)(0), c11 = (TV)(0), c20 = (TV)(0), c21 = (TV)(0);
    TV c30 = (TV)(0), c31 = (TV)(0), c40 = (TV)(0), c41 = (TV)(0), c50 = (TV)(0), c51 = (TV)(0);
    for (int k = 0; k < K; k++, b += PANEL_COLS) {
        const TV b0 = VLOAD(0, b), b1 = VLOAD(1, b);
        ACCUMULATE(0) ACCUMULATE(1) ACCUMULATE(2) ACCUMULATE(3) ACCUMULATE(4) ACCUMULATE(5)
    }
    const bool full = j0 + PANEL_COLS <= N;
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
}
#endif

// gemm_tiled — the GPU variant (Nugteren's OpenCL SGEMM tutorial, kernel 4, and CLBlast's Xgemm
// in spirit): a work-group of 16 × 16 items computes a TILE × TILE block of C. Each step of k
// loads a TILE × TILE tile of op(A) and of op(B) into local memory (each item a few elements;
// consecutive items read consecutive addresses), then every item accumulates its WPT × WPT
// outputs (WPT = TILE / 16, items strided by 16 so local reads do not conflict) from the tiles.
// Reads outside M, N or K load zeros; only the stores check bounds. TILE comes from the build
// options (OpenCLBackend picks it from the device's local memory: 64 for float, 32 for double).
#ifdef TILE
#define WPT (TILE / 16)

inline T load_a(__global const T* A, const int ta, const int lda, const int M, const int K, const int i, const int k) {
    return (i < M && k < K) ? (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) : (T)0;
}

inline T load_b(__global const T* B, const int tb, const int ldb, const int K, const int N, const int k, const int j) {
    return (k < K && j < N) ? (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]) : (T)0;
}

#if IS_FLOAT
__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void gemm_tiled(const int M, const int N, const int K,
                __global const T* restrict A0, const ulong strideA, const int lda, const int ta,
                __global const T* restrict B0, const ulong strideB, const int ldb, const int tb,
                __global T* restrict C0) {
    __local T As[TILE][TILE + 1];   // As[k][i]: op(A)(i0 + i, k0 + k); +1 keeps columns off one bank
    __local T Bs[TILE][TILE + 1];   // Bs[k][j]: op(B)(k0 + k, j0 + j)
    const int tx = get_local_id(0), ty = get_local_id(1), flat = ty * 16 + tx;
    const int j0 = get_group_id(0) * TILE, i0 = get_group_id(1) * TILE;
    const size_t batch = get_global_id(2);
    __global const T* A = A0 + batch * strideA;
    __global const T* B = B0 + batch * strideB;
    __global T* C = C0 + batch * (size_t)M * N;
    T acc[WPT][WPT];
    for (int wi = 0; wi < WPT; wi++) for (int wj = 0; wj < WPT; wj++) acc[wi][wj] = (T)0;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        for (int e = flat; e < TILE * TILE; e += 256) {
            const int r = e / TILE, c = e % TILE;
            // Consecutive items take consecutive addresses: along k for a row-major op(A), along i
            // for a transposed one; likewise j and k for op(B).
            if (ta) As[r][c] = load_a(A, ta, lda, M, K, i0 + c, k0 + r);
            else As[c][r] = load_a(A, ta, lda, M, K, i0 + r, k0 + c);
            if (tb) Bs[c][r] = load_b(B, tb, ldb, K, N, k0 + c, j0 + r);
            else Bs[r][c] = load_b(B, tb, ldb, K, N, k0 + r, j0 + c);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TILE; k++) {
            T a[WPT], b[WPT];
            for (int w = 0; w < WPT; w++) { a[w] = As[k][ty + w * 16]; b[w] = Bs[k][tx + w * 16]; }
            for (int wi = 0; wi < WPT; wi++)
                for (int wj = 0; wj < WPT; wj++) acc[wi][wj] = fma(a[wi], b[wj], acc[wi][wj]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int wi = 0; wi < WPT; wi++) {
        const int i = i0 + ty + wi * 16;
        if (i >= M) continue;
        for (int wj = 0; wj < WPT; wj++) {
            const int j = j0 + tx + wj * 16;
            if (j < N) C[(size_t)i * N + j] = acc[wi][wj];
        }
    }
}
#endif
#endif
