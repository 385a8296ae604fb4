import COpenBLAS
import Dispatch
import Foundation

/// The fixed summation order shared with `Kernels/reduce.cl`, so host and device sums agree bit
/// for bit: 256 lanes, lane `l` adding elements `l, l+256, l+512, …` in turn, then a halving tree
/// `p[l] += p[l+s]` for `s = 128, 64, …, 1`. Rows longer than ``chunk`` with unit stride are cut
/// into chunks of `chunk` elements, each summed that way, and the chunk sums summed that way too.
@_spi(Runtime) public enum ReduceOrder {
    @_spi(Runtime) public static let lanes = 256
    @_spi(Runtime) public static let chunk = 65536

    /// Splits a reduction over a contiguous block of axes into `outer × extent × inner`.
    @_spi(Runtime) public static func plan(shape: [Int], axes: [Int]) -> (outer: Int, extent: Int, inner: Int) {
        guard let first = axes.first, let last = axes.last else { return (Shape.count(shape), 1, 1) }
        return (
            Shape.count(Array(shape[..<first])), Shape.count(Array(shape[first...last])),
            Shape.count(Array(shape[(last + 1)...]))
        )
    }

    /// The most columns ``lanes(_:extent:stride:width:_:into:)`` reduces side by side.
    @_spi(Runtime) public static let maxWidth = 16

    /// Reduces `width` (at most ``maxWidth``) adjacent columns at once, each in the order above: column `c` adds
    /// `x[c + k·stride]` for `k` in `0..<extent` into `out[c]`. Rows of the lane block are
    /// contiguous, so the column loop vectorises (a bias gradient sums 512 columns of 256 rows).
    @inline(__always)
    static func lanes<T: BinaryFloatingPoint>(
        _ x: UnsafePointer<T>, extent: Int, stride: Int, width: Int = 1, _ kind: ReduceKind,
        into out: UnsafeMutablePointer<T>
    ) {
        precondition(width <= maxWidth, "ReduceOrder.lanes: \(width) columns, at most \(maxWidth)")
        let initial: T = kind == .sum ? 0 : -.infinity
        withUnsafeTemporaryAllocation(of: T.self, capacity: lanes * maxWidth) { buffer in
            let p = buffer.baseAddress!
            p.initialize(repeating: initial, count: lanes * width)
            var k = 0
            while k < extent {
                let n = Swift.min(lanes, extent - k)
                if kind == .sum && width == 1 && stride == 1 {  // one contiguous row: vectorise over lanes
                    let src = x + k  // (an offset inside the loop, overflow-checked, kept it scalar)
                    for l in 0..<n { p[l] += src[l] }
                } else {
                    for l in 0..<n {
                        let (src, dst) = (x + (k + l) * stride, p + l * width)
                        if kind == .sum {
                            for c in 0..<width { dst[c] += src[c] }
                        } else {
                            for c in 0..<width where src[c] > dst[c] || src[c].isNaN { dst[c] = src[c] }
                        }
                    }
                }
                k += lanes
            }
            var s = lanes / 2
            while s > 0 {
                for l in 0..<s {
                    let (dst, src) = (p + l * width, p + (l + s) * width)
                    if kind == .sum {
                        for c in 0..<width { dst[c] += src[c] }
                    } else {
                        for c in 0..<width where src[c] > dst[c] || src[c].isNaN { dst[c] = src[c] }
                    }
                }
                s /= 2
            }
            out.update(from: p, count: width)
        }
    }

    /// One column: ``lanes(_:extent:stride:width:_:into:)`` with width 1.
    @inline(__always)
    static func lanes<T: BinaryFloatingPoint>(_ x: UnsafePointer<T>, extent: Int, stride: Int, _ kind: ReduceKind) -> T
    {
        var result: T = 0
        withUnsafeMutablePointer(to: &result) { lanes(x, extent: extent, stride: stride, kind, into: $0) }
        return result
    }
}

extension HostBackend {
    func reduce(_ l: Launch, _ kind: ReduceKind) throws {
        switch l.dtype {
        case .float32: reduceFloat(l, kind, Float.self)
        case .float64: reduceFloat(l, kind, Double.self)
        case .int32: reduceInteger(l, kind, Int32.self)
        case .int8: reduceInteger(l, kind, Int8.self)
        case .bool: reduceInteger(l, kind, UInt8.self)
        }
    }

    func reduceFloat<T: BinaryFloatingPoint & HostScalar>(_ l: Launch, _ kind: ReduceKind, _: T.Type) {
        let x = UnsafePointer(l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self))
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.parameters.reduction.axes)
        if inner == 1 && extent > ReduceOrder.chunk {
            let chunks = (extent + ReduceOrder.chunk - 1) / ReduceOrder.chunk
            let partial = UnsafeMutablePointer<T>.allocate(capacity: chunks)
            defer { partial.deallocate() }
            for row in 0..<outer {
                let base = x + row * extent
                parallelFor(chunks, grain: 1) { r in
                    for c in r {
                        let start = c * ReduceOrder.chunk
                        partial[c] = ReduceOrder.lanes(
                            base + start, extent: min(ReduceOrder.chunk, extent - start), stride: 1, kind)
                    }
                }
                o[row] = ReduceOrder.lanes(partial, extent: chunks, stride: 1, kind)
            }
            return
        }
        let width = ReduceOrder.maxWidth
        let groups = (inner + width - 1) / width
        parallelFor(outer * groups, grain: max(1, (1 << 15) / max(extent * width, 1))) { r in
            for i in r {
                let (row, group) = i.quotientAndRemainder(dividingBy: groups)
                let col = group * width
                ReduceOrder.lanes(
                    x + row * extent * inner + col, extent: extent, stride: inner, width: min(width, inner - col), kind,
                    into: o + row * inner + col)
            }
        }
    }

    func reduceInteger<T: HostScalar>(_ l: Launch, _ kind: ReduceKind, _: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.parameters.reduction.axes)
        for row in 0..<outer {
            for col in 0..<inner {
                var acc = kind == .sum ? 0 : -Double.infinity
                for k in 0..<extent {
                    let v = x[(row * extent + k) * inner + col].double
                    acc = kind == .sum ? acc + v : max(acc, v)
                }
                o[row * inner + col] = .fromDouble(acc)
            }
        }
    }

    /// Each product's rows (and batches) are split over the host's pool; OpenBLAS itself runs
    /// single-threaded (see ``HostBLAS``).
}
