// The host twins of Kernels/indexing.cl: each loop computes the elements `r` of its op's output
// with the same arithmetic as its kernel, so both give the same bits. The op table (TapeCL's
// Ops/Indexing.swift) refers to them; `a.parameters.axis` is the op's ``AxisWindow``.

/// The host loops of the indexed ops, one per kernel of indexing.cl.
@_spi(Runtime) public enum HostIndexing {
    @_spi(Runtime) public typealias Loop = @Sendable (IndexedArguments, Range<Int>) -> Void

    /// compare_*: a bool mask of `test` on each pair of elements.
    @_spi(Runtime) public static func compare(_ test: @escaping @Sendable (Double, Double) -> Bool) -> Loop {
        { a, r in
            func loop<T: Element>(_: T.Type) {
                let (x, y, o) = (a.input(0, T.self), a.input(1, T.self), a.output(UInt8.self))
                for i in r { o[i] = compare(x[i], y[i], test) ? 1 : 0 }
            }
            forEachType(a.dtype, loop, loop, loop, loop, loop)
        }
    }

    /// select_mask: `[a, b, mask]` → a where the mask is set, b elsewhere.
    @_spi(Runtime) public static let select: Loop = { a, r in
        func loop<T: Element>(_: T.Type) {
            let (x, y, m, o) = (
                a.input(0, T.self), a.input(1, T.self), a.input(2, UInt8.self), a.output(T.self)
            )
            for i in r { o[i] = m[i] != 0 ? x[i] : y[i] }
        }
        forEachType(a.dtype, loop, loop, loop, loop, loop)
    }

    /// argmax, argmin: the index of the first best element along the middle axis of
    /// [outer, extent, inner] (`parameters.axis`); a NaN beats every number.
    @_spi(Runtime) public static func arg(_ better: @escaping @Sendable (Double, Double) -> Bool) -> Loop {
        { a, r in
            func loop<T: Element>(_: T.Type) {
                let (x, o) = (a.input(0, T.self), a.output(Int32.self))
                let (extent, inner) = (a.parameters.axis.extent, a.parameters.axis.inner)
                for i in r {
                    let base = (i / inner) * extent * inner + i % inner
                    var best = double(x[base])
                    var at = 0
                    for k in 1..<Swift.max(extent, 1) {
                        let v = double(x[base + k * inner])
                        if better(v, best) || (v.isNaN && !best.isNaN) {
                            best = v
                            at = k
                        }
                    }
                    o[i] = Int32(at)
                }
            }
            forEachType(a.dtype, loop, loop, loop, loop, loop)
        }
    }

    /// take: rows of the middle axis of x viewed as [outer, n, inner] picked by int32 ids
    /// (`parameters.axis`: n = extent, m = count); an id outside 0..<n reads nothing and gives 0.
    @_spi(Runtime) public static let take: Loop = { a, r in
        func loop<T: Element>(_: T.Type) {
            let (x, ids, o) = (a.input(0, T.self), a.input(1, Int32.self), a.output(T.self))
            let w = a.parameters.axis
            let (n, m, inner) = (w.extent, w.count, w.inner)
            for i in r {
                let (c, j, outer) = (i % inner, (i / inner) % m, i / (inner * m))
                let id = Int(ids[j])
                o[i] = (0..<n).contains(id) ? x[(outer * n + id) * inner + c] : 0
            }
        }
        forEachType(a.dtype, loop, loop, loop, loop, loop)
    }

    /// segment_sum: `[dy, starts, order, ids]` → rows of equal ids summed in increasing position.
    @_spi(Runtime) public static let segmentSum: Loop = { a, r in
        func loop<T: FloatElement>(_: T.Type) {
            let (dy, o) = (a.input(0, T.self), a.output(T.self))
            let (starts, order) = (a.input(1, Int32.self), a.input(2, Int32.self))
            let w = a.parameters.axis
            let (n, m, inner) = (w.extent, w.count, w.inner)
            for i in r {
                let (c, row, outer) = (i % inner, (i / inner) % n, i / (inner * n))
                var acc: T = 0
                for k in Int(starts[row])..<Int(starts[row + 1]) {
                    acc += dy[(outer * m + Int(order[k])) * inner + c]
                }
                o[i] = acc
            }
        }
        forFloatType(a.dtype, loop, loop)
    }

    /// `test` on two elements, through `Double` (exact for every element type).
    @inline(__always)
    static func compare<T: Element>(_ a: T, _ b: T, _ test: (Double, Double) -> Bool) -> Bool {
        test(double(a), double(b))
    }

    @inline(__always)
    static func double<T: Element>(_ v: T) -> Double {
        switch v {
        case let f as Float: Double(f)
        case let d as Double: d
        case let i as Int32: Double(i)
        case let i as Int8: Double(i)
        case let u as UInt8: Double(u)
        default: .nan
        }
    }
}
