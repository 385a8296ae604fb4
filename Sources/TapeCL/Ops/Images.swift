@_spi(Runtime) import TapeCLRuntime

// NHWC image ops (Kernels/images.cl, one kernel each; the host loops below do the same arithmetic
// in the same order): im2col and col2im, which make conv2d a matrix product, and max and average
// pooling with their gradients. Each op's `window` attribute is `Window.parameters`.

/// A convolution's or pool's geometry: input N×H×W×C, windows KH×KW with strides SH×SW, output
/// OH×OW, window (oh, ow) starting at (oh·SH − padTop, ow·SW − padLeft).
struct Window {
    let n, h, w, c, kh, kw, sh, sw, padTop, padLeft, oh, ow: Int

    init(_ p: [Int]) {
        (n, h, w, c, kh, kw, sh, sw) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
        (padTop, padLeft, oh, ow) = (p[8], p[9], p[10], p[11])
    }

    /// TensorFlow's rule: `.valid` takes the windows that fit (OH = ⌈(H − KH + 1)/SH⌉); `.same`
    /// gives OH = ⌈H/SH⌉ and pads by max((OH − 1)·SH + KH − H, 0), the smaller half on top and left.
    init(input s: [Int], kernel: (Int, Int), strides: (Int, Int), padding: Padding) {
        let (oh, ow): (Int, Int)
        let (padTop, padLeft): (Int, Int)
        switch padding {
        case .valid:
            (oh, ow) = ((s[1] - kernel.0) / strides.0 + 1, (s[2] - kernel.1) / strides.1 + 1)
            (padTop, padLeft) = (0, 0)
        case .same:
            (oh, ow) = ((s[1] + strides.0 - 1) / strides.0, (s[2] + strides.1 - 1) / strides.1)
            padTop = Swift.max((oh - 1) * strides.0 + kernel.0 - s[1], 0) / 2
            padLeft = Swift.max((ow - 1) * strides.1 + kernel.1 - s[2], 0) / 2
        }
        self.init([s[0], s[1], s[2], s[3], kernel.0, kernel.1, strides.0, strides.1, padTop, padLeft, oh, ow])
    }

    var parameters: [Int] { [n, h, w, c, kh, kw, sh, sw, padTop, padLeft, oh, ow] }
    var input: [Int] { [n, h, w, c] }
    var pooled: [Int] { [n, oh, ow, c] }
    var columns: [Int] { [n * oh * ow, kh * kw * c] }

    /// Along one dimension, the output position of the window whose kernel offset `k` lands on
    /// input position `i`, or nil when no window does.
    @inline(__always)
    static func window(at i: Int, offset k: Int, pad: Int, stride: Int, out: Int) -> Int? {
        let t = i + pad - k
        return t >= 0 && t % stride == 0 && t / stride < out ? t / stride : nil
    }

    /// Where element `i` of the columns (im2col's output) is: image, output row and column, kernel
    /// row and column, channel.
    func columnPlace(_ i: Int) -> (b: Int, y: Int, x: Int, u: Int, v: Int, ch: Int) {
        let (row, col) = i.quotientAndRemainder(dividingBy: kh * kw * c)
        return (row / (ow * oh), (row / ow) % oh, row % ow, col / (c * kw), (col / c) % kw, col % c)
    }

    /// The rows of the columns (windows, as `(image · OH + oh) · OW + ow`) that can hold entries of
    /// the input elements in `r`: from the first window row reaching `r`'s first image row to the last
    /// reaching its last (whole rows of windows, so some rows reach nothing in `r`).
    func columnRows(reaching r: Range<Int>) -> Range<Int> {
        guard !r.isEmpty else { return 0..<0 }
        let (first, last) = (inputIndex(r.lowerBound), inputIndex(r.upperBound - 1))
        let low = Swift.min(Swift.max(first.1 + padTop - kh + 1, 0) / sh, oh)  // windows above end before first.1
        let high = Swift.min((last.1 + padTop) / sh, oh - 1)  // windows below start after last.1
        return (first.0 * oh + low) * ow..<(last.0 * oh + high + 1) * ow
    }

    /// Adds `entries`, row `row` of the columns, into the pixels of `out` that it holds and that lie
    /// in `r`.
    @inline(__always)
    func add<T: FloatElement>(
        row: Int, of entries: UnsafeMutablePointer<T>, into out: UnsafeMutablePointer<T>, within r: Range<Int>
    ) {
        let (b, rest) = row.quotientAndRemainder(dividingBy: oh * ow)
        let (y, x) = rest.quotientAndRemainder(dividingBy: ow)
        var source = entries
        for ih in y * sh - padTop..<y * sh - padTop + kh {
            for iw in x * sw - padLeft..<x * sw - padLeft + kw {
                defer { source += c }
                guard let pixel = pixel(b, ih, iw, 0) else { continue }
                let (lo, hi) = (Swift.max(pixel, r.lowerBound), Swift.min(pixel + c, r.upperBound))
                guard lo < hi else { continue }
                let (target, entry) = (out + lo, source + (lo - pixel))
                for k in 0..<hi - lo { target[k] += entry[k] }
            }
        }
    }

    /// The place of the next run of channels after `at`'s (channel 0 of the next kernel column,
    /// kernel row, output column, output row or image).
    @inline(__always)
    func stepColumn(_ at: inout (b: Int, y: Int, x: Int, u: Int, v: Int, ch: Int)) {
        at.ch = 0
        at.v += 1
        if at.v == kw { (at.v, at.u) = (0, at.u + 1) }
        if at.u == kh { (at.u, at.x) = (0, at.x + 1) }
        if at.x == ow { (at.x, at.y) = (0, at.y + 1) }
        if at.y == oh { (at.y, at.b) = (0, at.b + 1) }
    }

    /// The flat index in the input of pixel (ih, iw) of channel `ch` of image `b`, or nil in the padding.
    @inline(__always)
    func pixel(_ b: Int, _ ih: Int, _ iw: Int, _ ch: Int) -> Int? {
        ih >= 0 && ih < h && iw >= 0 && iw < w ? ((b * h + ih) * w + iw) * c + ch : nil
    }

    /// `body(oh, ow, kh, kw)` for each window containing input pixel (ih, iw), in (kh, kw) order.
    @inline(__always)
    func windows(containing ih: Int, _ iw: Int, _ body: (Int, Int, Int, Int) -> Void) {
        for y in 0..<kh {
            guard let oy = Self.window(at: ih, offset: y, pad: padTop, stride: sh, out: oh) else { continue }
            for x in 0..<kw {
                guard let ox = Self.window(at: iw, offset: x, pad: padLeft, stride: sw, out: ow) else { continue }
                body(oy, ox, y, x)
            }
        }
    }

    /// The flat input index of the first largest pixel of window (oh, ow), channel `ch`, image `b`;
    /// a NaN is larger than everything (the first one is kept), as `max` and `tf.nn.max_pool` propagate it.
    @inline(__always)
    func argmax<T: Element>(_ x: UnsafePointer<T>, _ b: Int, _ y: Int, _ x0: Int, _ ch: Int) -> Int {
        var at = 0
        var found = false
        for u in 0..<kh {
            for v in 0..<kw {
                guard let k = pixel(b, y * sh - padTop + u, x0 * sw - padLeft + v, ch) else { continue }
                if !found || (x[at] == x[at] && !(x[k] <= x[at])) {
                    at = k
                    found = true
                }
            }
        }
        return at
    }

    /// The number of real pixels in window (oh, ow).
    @inline(__always)
    func count(_ y: Int, _ x: Int) -> Int {
        let (h0, h1) = (Swift.max(y * sh - padTop, 0), Swift.min(y * sh - padTop + kh, h))
        let (w0, w1) = (Swift.max(x * sw - padLeft, 0), Swift.min(x * sw - padLeft + kw, w))
        return (h1 - h0) * (w1 - w0)
    }

    /// Output index i of a pooled tensor as (image, oh, ow, channel).
    @inline(__always)
    func pooledIndex(_ i: Int) -> (Int, Int, Int, Int) { (i / (c * ow * oh), (i / (c * ow)) % oh, (i / c) % ow, i % c) }
    /// Index i of an input-shaped tensor as (image, ih, iw, channel).
    @inline(__always)
    func inputIndex(_ i: Int) -> (Int, Int, Int, Int) { (i / (c * w * h), (i / (c * w)) % h, (i / c) % w, i % c) }
}

/// How a convolution or pool treats the border (TensorFlow's `padding`).
public enum Padding: Sendable {
    /// Only windows that fit inside the input.
    case valid
    /// Zero padding (for pools: none counted) so that the output is ⌈input / stride⌉.
    case same
}

extension Op {
    /// An image op: kernel `name` of images.cl with `host`, the window as its `window` attribute.
    static func image(
        _ name: String, kernel: String, arity: Int = 1, floatOnly: Bool = true, channelRuns: Bool = false,
        saves: Saves,
        shape: @escaping @Sendable (Window) -> [Int],
        host: @escaping @Sendable (IndexedArguments, Range<Int>, Window) -> Void,
        checkCase: CheckSampler?, vjp: @escaping VJP, jvp: @escaping JVP
    ) -> Op {
        Op(
            name: name, arity: arity,
            forward: .indexed(
                IndexedKernel(kernel, family: "images", grain: 1 << 10, run: channelRuns ? 3 : nil) { a, r in
                    host(a, r, Window(a.parameters))
                }),
            shape: { _, a in shape(Window(a.window)) }, saves: saves, floatOnly: floatOnly, fusable: .never,
            tolerance: .summed, checkCase: checkCase, vjp: vjp, jvp: jvp)
    }

    /// The bytes of columns col2im's host loop copies into its scratch at a time (a block stays in L2).
    static let col2imBlockBytes = 128 << 10

    static func applying(_ op: Op, _ inputs: [Tensor], _ window: Window) -> Tensor {
        var a = Attributes()
        a.window = window.parameters
        return Tensor.stopping { try op.apply(inputs, a) }
    }

    /// The check cases of the image ops: 7×9 images, 3×3 windows, strides 2, both paddings.
    static func imageCase(_ op: @escaping @Sendable (Tensor, Padding) -> Tensor) -> CheckSampler {
        { m, _ in CheckCase([[2, 7, 9, 3]]) { x in op(x[0], m % 2 == 0 ? .same : .valid) } }
    }

    static let im2col: Op = image(
        "im2col", kernel: "im2col", floatOnly: false, channelRuns: true, saves: .nothing, shape: { $0.columns },
        host: { a, r, g in
            func loop<T: Element>(_: T.Type) {
                let (x, o) = (a.input(0, T.self), a.output(T.self))
                var i = r.lowerBound
                var at = g.columnPlace(i)  // then stepped, not divided, run by run
                while i < r.upperBound {  // a run of channels of one (row, kh, kw): one pixel's, or padding
                    let run = Swift.min(g.c - at.ch, r.upperBound - i)
                    if let k = g.pixel(at.b, at.y * g.sh - g.padTop + at.u, at.x * g.sw - g.padLeft + at.v, at.ch) {
                        (o + i).update(from: x + k, count: run)
                    } else {
                        (o + i).update(repeating: 0, count: run)
                    }
                    i += run
                    g.stepColumn(&at)
                }
            }
            forEachType(a.dtype, loop, loop, loop, loop, loop)
        },
        checkCase: imageCase { x, p in
            conv2d(x, filter: Tensor.ones(shape: [3, 3, 3, 2], on: x.device), strides: (2, 2), padding: p)
        },
        vjp: { s, dy in s.grad(applying(col2im, [dy], Window(s.attributes.window))) },
        jvp: { s, d in d[0].map { applying(im2col, [$0], Window(s.attributes.window)) } })

    /// im2col's adjoint: each pixel 0 plus its entries in the columns, in (kh, kw) order.
    ///
    /// The host loop adds each row of the columns into the pixels of its range, rows back to front:
    /// a pixel's windows then come in descending (oh, ow), which is ascending (kh, kw), the order of
    /// images.cl's gather, so both give the same bits. The rows are read in blocks, each copied front
    /// to back into a scratch that stays in cache, because a CPU does not prefetch a descending stream.
    static let col2im: Op = image(
        "col2im", kernel: "col2im", channelRuns: true, saves: .nothing, shape: { $0.input },
        host: { a, r, g in
            func loop<T: FloatElement>(_: T.Type) {
                let (cols, o) = (a.input(0, T.self), a.output(T.self))
                (o + r.lowerBound).update(repeating: 0, count: r.count)
                let (rows, width) = (g.columnRows(reaching: r), g.kh * g.kw * g.c)
                guard !rows.isEmpty else { return }
                let block = Swift.min(
                    Swift.max(1, Op.col2imBlockBytes / (width * MemoryLayout<T>.stride)), rows.count)
                withUnsafeTemporaryAllocation(of: T.self, capacity: block * width) { scratch in
                    var end = rows.upperBound
                    while end > rows.lowerBound {
                        let start = Swift.max(end - block, rows.lowerBound)
                        scratch.baseAddress!.update(from: cols + start * width, count: (end - start) * width)
                        for row in (start..<end).reversed() {
                            g.add(row: row, of: scratch.baseAddress! + (row - start) * width, into: o, within: r)
                        }
                        end = start
                    }
                }
            }
            forFloatType(a.dtype, loop, loop)
        },
        checkCase: imageCase { x, p in
            let g = Window(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(col2im, [applying(im2col, [x], g) * 0.5], g)
        },
        vjp: { s, dy in s.grad(applying(im2col, [dy], Window(s.attributes.window))) },
        jvp: { s, d in d[0].map { applying(col2im, [$0], Window(s.attributes.window)) } })

    /// The host loop of `maxPool` (`source` 0: x itself) and `maxPoolPick` (1: the tangent t):
    /// each pooled element is input `source` read at its window's first maximum of x.
    static func picking(from source: Int) -> @Sendable (IndexedArguments, Range<Int>, Window) -> Void {
        { a, r, g in
            func loop<T: FloatElement>(_: T.Type) {
                let (x, t, o) = (a.input(0, T.self), a.input(source, T.self), a.output(T.self))
                for i in r {
                    let (b, y, x0, ch) = g.pooledIndex(i)
                    o[i] = t[g.argmax(x, b, y, x0, ch)]
                }
            }
            forFloatType(a.dtype, loop, loop)
        }
    }

    static let maxPool: Op = image(
        "maxPool", kernel: "max_pool", saves: .inputs, shape: { $0.pooled },
        host: picking(from: 0),
        checkCase: imageCase { x, p in maxPool2d(x, size: (3, 3), strides: (2, 2), padding: p) },
        vjp: { s, dy in s.grad(applying(maxPoolGrad, [s.x, dy], Window(s.attributes.window))) },
        jvp: { s, d in d[0].map { applying(maxPoolPick, [s.x, $0], Window(s.attributes.window)) } })

    /// `[x, t]` → `t` read at each window's first maximum of `x`: max pooling's forward rule and the
    /// adjoint of its gradient.
    static let maxPoolPick: Op = image(
        "maxPoolPick", kernel: "max_pool_pick", arity: 2, saves: .inputs, shape: { $0.pooled },
        host: picking(from: 1),
        checkCase: imageCase { x, p in
            applying(
                maxPoolPick, [stopGradient(x), x * 3],
                Window(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p))
        },
        vjp: { s, dy in [nil, s.inputs[1].needs ? applying(maxPoolGrad, [s.a, dy], Window(s.attributes.window)) : nil]
        },
        jvp: { s, d in d[1].map { applying(maxPoolPick, [s.a, $0], Window(s.attributes.window)) } })

    /// `[x, dy]` → each pixel the sum of `dy` over the windows whose first maximum it is (ties:
    /// the first in (kh, kw) order gets it all, as TensorFlow).
    static let maxPoolGrad: Op = image(
        "maxPoolGrad", kernel: "max_pool_grad", arity: 2, saves: .inputs, shape: { $0.input },
        host: { a, r, g in
            func loop<T: FloatElement>(_: T.Type) {
                let (x, dy, o) = (a.input(0, T.self), a.input(1, T.self), a.output(T.self))
                for i in r {
                    let (b, ih, iw, ch) = g.inputIndex(i)
                    var acc: T = 0
                    g.windows(containing: ih, iw) { y, x0, _, _ in
                        if g.argmax(x, b, y, x0, ch) == i { acc += dy[((b * g.oh + y) * g.ow + x0) * g.c + ch] }
                    }
                    o[i] = acc
                }
            }
            forFloatType(a.dtype, loop, loop)
        },
        checkCase: imageCase { x, p in
            let g = Window(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(maxPoolGrad, [stopGradient(x), Tensor.ones(shape: g.pooled, on: x.device) * 0.5], g) * x
        },
        vjp: { s, dy in [nil, s.inputs[1].needs ? applying(maxPoolPick, [s.a, dy], Window(s.attributes.window)) : nil]
        },
        jvp: { s, d in d[1].map { applying(maxPoolGrad, [s.a, $0], Window(s.attributes.window)) } })

    static let avgPool: Op = image(
        "avgPool", kernel: "avg_pool", saves: .nothing, shape: { $0.pooled },
        host: { a, r, g in
            func loop<T: FloatElement>(_: T.Type) {
                let (x, o) = (a.input(0, T.self), a.output(T.self))
                for i in r {
                    let (b, y, x0, ch) = g.pooledIndex(i)
                    var acc: T = 0
                    for u in 0..<g.kh {
                        for v in 0..<g.kw {
                            if let k = g.pixel(b, y * g.sh - g.padTop + u, x0 * g.sw - g.padLeft + v, ch) {
                                acc += x[k]
                            }
                        }
                    }
                    o[i] = acc / T(g.count(y, x0))
                }
            }
            forFloatType(a.dtype, loop, loop)
        },
        checkCase: imageCase { x, p in avgPool2d(x, size: (3, 3), strides: (2, 2), padding: p) },
        vjp: { s, dy in s.grad(applying(avgPoolGrad, [dy], Window(s.attributes.window))) },
        jvp: { s, d in d[0].map { applying(avgPool, [$0], Window(s.attributes.window)) } })

    /// avgPool's adjoint: each pixel the sum over its windows of `dy` / (the window's real pixels).
    static let avgPoolGrad: Op = image(
        "avgPoolGrad", kernel: "avg_pool_grad", saves: .nothing, shape: { $0.input },
        host: { a, r, g in
            func loop<T: FloatElement>(_: T.Type) {
                let (dy, o) = (a.input(0, T.self), a.output(T.self))
                for i in r {
                    let (b, ih, iw, ch) = g.inputIndex(i)
                    var acc: T = 0
                    g.windows(containing: ih, iw) { y, x0, _, _ in
                        acc += dy[((b * g.oh + y) * g.ow + x0) * g.c + ch] / T(g.count(y, x0))
                    }
                    o[i] = acc
                }
            }
            forFloatType(a.dtype, loop, loop)
        },
        checkCase: imageCase { x, p in
            let g = Window(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(avgPoolGrad, [applying(avgPool, [x], g) * 2], g)
        },
        vjp: { s, dy in s.grad(applying(avgPool, [dy], Window(s.attributes.window))) },
        jvp: { s, d in d[0].map { applying(avgPoolGrad, [$0], Window(s.attributes.window)) } })
}
