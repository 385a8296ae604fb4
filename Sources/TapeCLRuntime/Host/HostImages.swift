// The host twins of Kernels/images.cl: each loop computes the elements `r` of its op's output
// with the same arithmetic in the same order as its kernel, so both give the same bits. The op
// table (TapeCL's Ops/Images.swift) refers to them.

/// How a convolution or pool treats the border (TensorFlow's `padding`).
public enum Padding: Sendable {
    /// Only windows that fit inside the input.
    case valid
    /// Zero padding (for pools: none counted) so that the output is ⌈input / stride⌉.
    case same
}

/// A convolution's or pool's geometry: input N×H×W×C, windows KH×KW with strides SH×SW, output
/// OH×OW, window (oh, ow) starting at (oh·SH − padTop, ow·SW − padLeft).
@_spi(Runtime) public struct ImageWindow: Sendable {
    @_spi(Runtime) public let n, h, w, c, kh, kw, sh, sw, padTop, padLeft, oh, ow: Int

    /// TensorFlow's rule: `.valid` takes the windows that fit (OH = ⌈(H − KH + 1)/SH⌉); `.same`
    /// gives OH = ⌈H/SH⌉ and pads by max((OH − 1)·SH + KH − H, 0), the smaller half on top and left.
    @_spi(Runtime) public init(input s: [Int], kernel: (Int, Int), strides: (Int, Int), padding: Padding) {
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
        (n, h, w, c) = (s[0], s[1], s[2], s[3])
        (kh, kw, sh, sw) = (kernel.0, kernel.1, strides.0, strides.1)
        (self.padTop, self.padLeft, self.oh, self.ow) = (padTop, padLeft, oh, ow)
    }

    /// The fields in the order of images.cl's `image_window`.
    var fields: [Int] { [n, h, w, c, kh, kw, sh, sw, padTop, padLeft, oh, ow] }
    @_spi(Runtime) public var input: [Int] { [n, h, w, c] }
    @_spi(Runtime) public var pooled: [Int] { [n, oh, ow, c] }
    @_spi(Runtime) public var columns: [Int] { [n * oh * ow, kh * kw * c] }

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

/// The host loops of the image ops, one per kernel of images.cl.
@_spi(Runtime) public enum HostImages {
    @_spi(Runtime) public typealias Loop = @Sendable (IndexedArguments, Range<Int>) -> Void

    /// The bytes of columns col2im's loop copies into its scratch at a time (a block stays in L2).
    static let col2imBlockBytes = 128 << 10

    /// im2col: each column entry the pixel its window and kernel offset reach, 0 in the padding.
    @_spi(Runtime) public static let im2col: Loop = { a, r in
        let g = a.parameters.window
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
    }

    /// im2col's adjoint: each pixel 0 plus its entries in the columns, in (kh, kw) order.
    ///
    /// Adds each row of the columns into the pixels of its range, rows back to front: a pixel's
    /// windows then come in descending (oh, ow), which is ascending (kh, kw), the order of
    /// images.cl's gather, so both give the same bits. The rows are read in blocks, each copied front
    /// to back into a scratch that stays in cache, because a CPU does not prefetch a descending stream.
    @_spi(Runtime) public static let col2im: Loop = { a, r in
        let g = a.parameters.window
        func loop<T: FloatElement>(_: T.Type) {
            let (cols, o) = (a.input(0, T.self), a.output(T.self))
            (o + r.lowerBound).update(repeating: 0, count: r.count)
            let (rows, width) = (g.columnRows(reaching: r), g.kh * g.kw * g.c)
            guard !rows.isEmpty else { return }
            let block = Swift.min(
                Swift.max(1, col2imBlockBytes / (width * MemoryLayout<T>.stride)), rows.count)
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
    }

    /// The host loop of `maxPool` (`source` 0: x itself) and `maxPoolPick` (1: the tangent t):
    /// each pooled element is input `source` read at its window's first maximum of x.
    static func picking(from source: Int) -> Loop {
        { a, r in
            let g = a.parameters.window
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

    /// max_pool: each pooled element its window's first maximum.
    @_spi(Runtime) public static let maxPool: Loop = picking(from: 0)
    /// max_pool_pick: `t` read at each window's first maximum of `x`.
    @_spi(Runtime) public static let maxPoolPick: Loop = picking(from: 1)

    /// Each pixel the sum of `dy` over the windows whose first maximum it is.
    @_spi(Runtime) public static let maxPoolGrad: Loop = { a, r in
        let g = a.parameters.window
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
    }

    /// Each pooled element the mean of its window's real pixels.
    @_spi(Runtime) public static let avgPool: Loop = { a, r in
        let g = a.parameters.window
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
    }

    /// Each pixel the sum over its windows of `dy` / (the window's real pixels).
    @_spi(Runtime) public static let avgPoolGrad: Loop = { a, r in
        let g = a.parameters.window
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
    }
}
