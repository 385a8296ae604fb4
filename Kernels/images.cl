// images.cl — NHWC image ops, one item per output element (IndexedKernel in Backend.swift):
// im2col and col2im (convolution as a matrix product), max and average pooling and their gradients.
// Each kernel takes the op's window g (ImageWindow in HostImages.swift, passed by value): input
// N×H×W×C, windows KH×KW with strides SH×SW, output OH×OW, window (oh, ow) starting at
// (oh·SH − padTop, ow·SW − padLeft).
// Sums run in a fixed order (kh, then kw, ascending), the host's too (each kernel's host twin is in
// Sources/TapeCLRuntime/HostImages.swift). Index arithmetic is 32-bit
// (the backend runs an indexed op on the host when its output has 2^31 elements or more).
#include "common.cl"

// The fields of ImageWindow, in its order (Parameters.kernelArgument).
typedef struct {
    int n, h, w, c, kh, kw, sh, sw, pad_top, pad_left, oh, ow;
} image_window;

// This item's output element i, as (n, oh, ow, c) of a pooled tensor or (n, ih, iw, c) of an image.
#define POOLED_INDEX                                                                              \
    const size_t i = get_global_id(0) + off;                                                      \
    const int c = (int)(i % C), ow = (int)((i / C) % OW), oh = (int)((i / ((size_t)C * OW)) % OH); \
    const size_t n = i / ((size_t)C * OW * OH);
#define PIXEL_INDEX                                                                               \
    const size_t i = get_global_id(0) + off;                                                      \
    const int c = (int)(i % C), iw = (int)((i / C) % W), ih = (int)((i / ((size_t)C * W)) % H);    \
    const size_t n = i / ((size_t)C * W * H);

#define WINDOW                                                                                    \
    const int H = g.h, W = g.w, C = g.c, KH = g.kh, KW = g.kw, SH = g.sh, SW = g.sw;                \
    const int PT = g.pad_top, PL = g.pad_left, OH = g.oh, OW = g.ow;

// cols [N·OH·OW, KH·KW·C]: row (n, oh, ow), column (kh, kw, c) = x at (oh·SH − PT + kh, ow·SW − PL + kw), 0 outside.
// One item per (row, kh, kw): its C channels.
__kernel void im2col(__global const T* restrict x, __global T* restrict out, const image_window g,
                     const ulong off) {
    WINDOW
    const uint item = (uint)(get_global_id(0) + off);
    const uint row = item / (KH * KW), k = item - row * (KH * KW), kh = k / KW, kw = k - kh * KW;
    const uint ow = row % OW, oh = (row / OW) % OH, n = row / (OW * OH);
    const int ih = (int)(oh * SH + kh) - PT, iw = (int)(ow * SW + kw) - PL;
    __global T* o = out + (size_t)item * C;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
        __global const T* src = x + ((n * H + ih) * W + iw) * C;
        for (int c = 0; c < C; c++) o[c] = src[c];
    } else {
        for (int c = 0; c < C; c++) o[c] = (T)0;
    }
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
// One item per pixel: its C channels, each 0 + the windows' entries in (kh, kw) order.
__kernel void col2im(__global const T* restrict cols, __global T* restrict out, const image_window g,
                     const ulong off) {
    WINDOW
    const uint pixel = (uint)(get_global_id(0) + off);
    const int iw = (int)(pixel % W), ih = (int)((pixel / W) % H);
    const uint n = pixel / (W * H);
    __global T* o = out + (size_t)pixel * C;
    for (int c = 0; c < C; c++) o[c] = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        __global const T* src = cols + ((n * OH + oh) * OW + ow) * (KH * KW * C) + (kh * KW + kw) * C;
        for (int c = 0; c < C; c++) o[c] += src[c];
    END_WINDOWS
}

// The first largest element of window (oh, ow) of channel c of image n (padding excluded):
// its flat index in x, the scan in (kh, kw) order keeping the first of equal values. A NaN is
// larger than everything (as max() and tf.nn.max_pool propagate it): the first NaN is kept.
inline size_t window_argmax(__global const T* x, const image_window g, size_t n, int oh, int ow, int c) {
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
            if (!found || (best == best && !(x[k] <= best))) { best = x[k]; at = k; found = 1; }
        }
    }
    return at;
}

// out [N, OH, OW, C] from window_argmax; max_pool reads x there, max_pool_pick reads t (a
// tangent of x) there: the forward rule of max pooling and the adjoint of its gradient.
__kernel void max_pool(__global const T* restrict x, __global T* restrict out, const image_window g,
                       const ulong off) {
    WINDOW
    POOLED_INDEX
    out[i] = x[window_argmax(x, g, n, oh, ow, c)];
}

__kernel void max_pool_pick(__global const T* restrict x, __global const T* restrict t, __global T* restrict out,
                            const image_window g, const ulong off) {
    WINDOW
    POOLED_INDEX
    out[i] = t[window_argmax(x, g, n, oh, ow, c)];
}

// out [N, H, W, C]: Σ of dy over the windows whose first maximum is this pixel.
__kernel void max_pool_grad(__global const T* restrict x, __global const T* restrict dy, __global T* restrict out,
                            const image_window g, const ulong off) {
    WINDOW
    PIXEL_INDEX
    T acc = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        if (window_argmax(x, g, n, oh, ow, c) == i) acc += dy[((n * OH + oh) * OW + ow) * C + c];
    END_WINDOWS
    out[i] = acc;
}

// The number of real (not padding) pixels in window (oh, ow).
inline int window_count(const image_window g, int oh, int ow) {
    WINDOW
    const int h0 = max(oh * SH - PT, 0), h1 = min(oh * SH - PT + KH, H);
    const int w0 = max(ow * SW - PL, 0), w1 = min(ow * SW - PL + KW, W);
    return (h1 - h0) * (w1 - w0);
}

// out [N, OH, OW, C]: the mean of the window's real pixels (sum in (kh, kw) order, then divide).
__kernel void avg_pool(__global const T* restrict x, __global T* restrict out, const image_window g,
                       const ulong off) {
    WINDOW
    POOLED_INDEX
    T acc = (T)0;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw >= 0 && iw < W) acc += x[((n * H + ih) * W + iw) * C + c];
        }
    }
    out[i] = acc / (T)window_count(g, oh, ow);
}

// out [N, H, W, C]: Σ over the windows containing the pixel of dy / (the window's real pixels).
__kernel void avg_pool_grad(__global const T* restrict dy, __global T* restrict out, const image_window g,
                            const ulong off) {
    WINDOW
    PIXEL_INDEX
    T acc = (T)0;
    FOR_WINDOWS_CONTAINING(ih, iw)
        acc += dy[((n * OH + oh) * OW + ow) * C + c] / (T)window_count(g, oh, ow);
    END_WINDOWS
    out[i] = acc;
}
