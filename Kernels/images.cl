// images.cl — NHWC image ops, one item per output element (IndexedKernel in Backend.swift):
// im2col and col2im (convolution as a matrix product), max and average pooling and their gradients.
// p = (N, H, W, C, KH, KW, SH, SW), q = (padTop, padLeft, OH, OW): input N×H×W×C, windows KH×KW
// with strides SH×SW, output OH×OW, window (oh, ow) starting at (oh·SH − padTop, ow·SW − padLeft).
// Sums run in a fixed order (kh, then kw, ascending), the host's too.
#include "common.cl"

#define WINDOW                                                                                    \
    const int H = p.s1, W = p.s2, C = p.s3, KH = p.s4, KW = p.s5, SH = p.s6, SW = p.s7;           \
    const int PT = q.s0, PL = q.s1, OH = q.s2, OW = q.s3;

// cols [N·OH·OW, KH·KW·C]: row (n, oh, ow), column (kh, kw, c) = x at (oh·SH − PT + kh, ow·SW − PL + kw), 0 outside.
__kernel void im2col(__global const T* restrict x, __global T* restrict out, const int8 p, const int8 q,
                     const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const size_t width = (size_t)KH * KW * C, row = i / width;
    const int col = (int)(i % width), c = col % C, kw = (col / C) % KW, kh = col / (C * KW);
    const int ow = (int)(row % OW), oh = (int)((row / OW) % OH);
    const size_t n = row / ((size_t)OW * OH);
    const int ih = oh * SH - PT + kh, iw = ow * SW - PL + kw;
    out[i] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[((n * H + ih) * W + iw) * C + c] : (T)0;
}

// The windows (oh, ow) that contain input pixel (ih, iw), and (kh, kw) its place in each.
#define FOR_WINDOWS_CONTAINING(ih, iw)                                                            \
    for (int kh = 0; kh < KH; kh++) {                                                             \
        const int th = ih + PT - kh;                                                              \
        if (th < 0 || th % SH != 0 || th / SH >= OH) continue;                                    \
        const int oh = th / SH;                                                                   \
        for (int kw = 0; kw < KW; kw++) {                                                         \
            const int tw = iw + PL - kw;                                                          \
            if (tw < 0 || tw % SW != 0 || tw / SW >= OW) continue;                                \
            const int ow = tw / SW;

#define END_WINDOWS }}

// x [N, H, W, C] = Σ over the windows containing each pixel of cols' entry for it (im2col's adjoint).
__kernel void col2im(__global const T* restrict cols, __global T* restrict out, const int8 p, const int8 q,
                     const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), iw = (int)((i / C) % W), ih = (int)((i / ((size_t)C * W)) % H);
    const size_t n = i / ((size_t)C * W * H);
    T acc = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        acc += cols[((n * OH + oh) * OW + ow) * ((size_t)KH * KW * C) + ((size_t)kh * KW + kw) * C + c];
    END_WINDOWS
    out[i] = acc;
}

// The first largest element of window (oh, ow) of channel c of image n (padding excluded):
// its flat index in x, the scan in (kh, kw) order keeping the first of equal values.
inline size_t window_argmax(__global const T* x, const int8 p, const int8 q, size_t n, int oh, int ow, int c) {
    WINDOW
    size_t at = 0;
    T best = (T)0;
    int found = 0;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W) continue;
            const size_t k = ((n * H + ih) * W + iw) * C + c;
            if (!found || x[k] > best) { best = x[k]; at = k; found = 1; }
        }
    }
    return at;
}

// out [N, OH, OW, C] from window_argmax; max_pool reads x there, max_pool_pick reads t (a
// tangent of x) there: the forward rule of max pooling and the adjoint of its gradient.
__kernel void max_pool(__global const T* restrict x, __global T* restrict out, const int8 p, const int8 q,
                       const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), ow = (int)((i / C) % OW), oh = (int)((i / ((size_t)C * OW)) % OH);
    out[i] = x[window_argmax(x, p, q, i / ((size_t)C * OW * OH), oh, ow, c)];
}

__kernel void max_pool_pick(__global const T* restrict x, __global const T* restrict t, __global T* restrict out,
                            const int8 p, const int8 q, const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), ow = (int)((i / C) % OW), oh = (int)((i / ((size_t)C * OW)) % OH);
    out[i] = t[window_argmax(x, p, q, i / ((size_t)C * OW * OH), oh, ow, c)];
}

// out [N, H, W, C]: Σ of dy over the windows whose first maximum is this pixel.
__kernel void max_pool_grad(__global const T* restrict x, __global const T* restrict dy, __global T* restrict out,
                            const int8 p, const int8 q, const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), iw = (int)((i / C) % W), ih = (int)((i / ((size_t)C * W)) % H);
    const size_t n = i / ((size_t)C * W * H);
    T acc = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        if (window_argmax(x, p, q, n, oh, ow, c) == i) acc += dy[((n * OH + oh) * OW + ow) * C + c];
    END_WINDOWS
    out[i] = acc;
}

// The number of real (not padding) pixels in window (oh, ow).
inline int window_count(const int8 p, const int8 q, int oh, int ow) {
    WINDOW
    const int h0 = max(oh * SH - PT, 0), h1 = min(oh * SH - PT + KH, H);
    const int w0 = max(ow * SW - PL, 0), w1 = min(ow * SW - PL + KW, W);
    return (h1 - h0) * (w1 - w0);
}

// out [N, OH, OW, C]: the mean of the window's real pixels (sum in (kh, kw) order, then divide).
__kernel void avg_pool(__global const T* restrict x, __global T* restrict out, const int8 p, const int8 q,
                       const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), ow = (int)((i / C) % OW), oh = (int)((i / ((size_t)C * OW)) % OH);
    const size_t n = i / ((size_t)C * OW * OH);
    T acc = (T)0;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw >= 0 && iw < W) acc += x[((n * H + ih) * W + iw) * C + c];
        }
    }
    out[i] = acc / (T)window_count(p, q, oh, ow);
}

// out [N, H, W, C]: Σ over the windows containing the pixel of dy / (the window's real pixels).
__kernel void avg_pool_grad(__global const T* restrict dy, __global T* restrict out, const int8 p, const int8 q,
                            const ulong off) {
    WINDOW
    const size_t i = get_global_id(0) + off;
    const int c = (int)(i % C), iw = (int)((i / C) % W), ih = (int)((i / ((size_t)C * W)) % H);
    const size_t n = i / ((size_t)C * W * H);
    T acc = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        acc += dy[((n * OH + oh) * OW + ow) * C + c] / (T)window_count(p, q, oh, ow);
    END_WINDOWS
    out[i] = acc;
}
