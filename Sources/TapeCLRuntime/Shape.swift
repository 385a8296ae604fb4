/// Shape arithmetic shared by the op table and the backends. A shape is `[Int]`, row-major.
@_spi(Runtime) public enum Shape {
    /// Number of elements: the product of the dimensions (1 for a scalar).
    @inlinable
    @_spi(Runtime) public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// The number of elements and bytes of a tensor of `shape` and `dtype`, checked: every
    /// dimension is ≥ 0 and neither product overflows. Every op validates its output shape with
    /// this before anything is allocated, so `count` above never overflows afterwards.
    /// - Throws: ``TapeError/shape(_:)`` naming `op` and the shape.
    @inlinable
    @_spi(Runtime) public static func checkedBytes(_ shape: [Int], _ dtype: DType, op: String) throws -> Int {
        if let negative = shape.first(where: { $0 < 0 }) {
            throw TapeError.shape("\(op): dimension \(negative) in shape \(describe(shape)) is negative")
        }
        // The product of the non-zero dimensions is checked too, so that strides (the products of
        // trailing dimensions) never overflow, also for a shape with no elements.
        var n = 1
        for d in shape where d != 0 {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw TapeError.shape("\(op): shape \(describe(shape)) has more elements than Int can count")
            }
            n = product
        }
        if shape.contains(0) { n = 0 }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else {
            throw TapeError.shape("\(op): shape \(describe(shape)) of \(dtype) needs more bytes than Int can count")
        }
        return bytes
    }

    /// Row-major strides, in elements.
    @inlinable
    @_spi(Runtime) public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    /// NumPy broadcasting: align trailing dimensions; each pair must be equal or contain a 1.
    @inlinable
    @_spi(Runtime) public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        if a == b { return a }
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// The strides with which an input of `shape` is read for each index of `target`
    /// (0 along broadcast dimensions), i.e. `offset = Σ index[i] * result[i]`.
    @inlinable
    @_spi(Runtime) public static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let lead = target.count - shape.count
        return (0..<target.count).map { i in
            i < lead || shape[i - lead] == 1 ? 0 : own[i - lead]
        }
    }

    /// Normalizes possibly negative axes against `rank`; `nil` when one is out of range or repeated.
    @_spi(Runtime) public static func normalize(axes: [Int], rank: Int) -> [Int]? {
        var seen = Set<Int>()
        var out: [Int] = []
        for a in axes {
            let n = a < 0 ? a + rank : a
            guard n >= 0, n < max(rank, 1), seen.insert(n).inserted else { return nil }
            out.append(n)
        }
        return out.sorted()
    }

    /// Row-major `items` as nested lists of `shape`: `[[a, b], [c, d]]`; a scalar is its one item.
    @_spi(Runtime) public static func nested(_ items: ArraySlice<String>, _ shape: ArraySlice<Int>) -> String {
        nested(items, shape, empty: "") { "[" + $0.joined(separator: ", ") + "]" }
    }

    /// Row-major `items` grouped by `shape` into nested lists made by `list`; a scalar is its one
    /// item (`empty` when there is none). The string form above and the CLI's JSON share it.
    @_spi(Runtime) public static func nested<T>(
        _ items: ArraySlice<T>, _ shape: ArraySlice<Int>, empty: T, list: ([T]) -> T
    ) -> T {
        guard let d = shape.first else { return items.first ?? empty }
        let step = d == 0 ? 0 : items.count / d
        return list(
            (0..<d).map { nested(items.dropFirst($0 * step).prefix(step), shape.dropFirst(), empty: empty, list: list) }
        )
    }

    /// Whether `shape` (leading 1s aside) is the trailing part of `output`, so it repeats every row
    /// (a bias); a single element is a row of length 1.
    @inlinable
    @_spi(Runtime) public static func isRow(_ shape: [Int], of output: [Int]) -> Bool {
        let core = shape.drop { $0 == 1 }
        return core.isEmpty || (core.count < output.count && Array(core) == Array(output.suffix(core.count)))
    }

    @inlinable
    @_spi(Runtime) public static func describe(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }
}
