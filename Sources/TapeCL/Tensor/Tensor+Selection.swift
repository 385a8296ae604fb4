@_spi(Runtime) import TapeCLRuntime

// Comparisons, select, argmax/argmin, min, gather, split and tf.slice: the public side of
// Ops/Indexing.swift (and of the `slice` copy for multi-axis windows).

/// Elementwise `l > r` with broadcasting, numbers on either side: a `.bool` mask, never recorded.
public func .> (l: some TensorConvertible, r: some TensorConvertible) -> Tensor { compared(Op.compareGreater, l, r) }
/// Elementwise `l < r`: a `.bool` mask.
public func .< (l: some TensorConvertible, r: some TensorConvertible) -> Tensor { compared(Op.compareLess, l, r) }
/// Elementwise `l >= r`: a `.bool` mask.
public func .>= (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    compared(Op.compareGreaterEqual, l, r)
}
/// Elementwise `l <= r`: a `.bool` mask.
public func .<= (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    compared(Op.compareLessEqual, l, r)
}
/// Elementwise `l == r`: a `.bool` mask (NaN equals nothing).
public func .== (l: some TensorConvertible, r: some TensorConvertible) -> Tensor { compared(Op.compareEqual, l, r) }
/// Elementwise `l != r`: a `.bool` mask.
public func .!= (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    compared(Op.compareNotEqual, l, r)
}

func compared(_ op: Op, _ l: some TensorConvertible, _ r: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(l, r)
    return Tensor.stopping { try Tensor.compared(op, a, b) }
}

/// `tf.where(mask, a, b)`: `a` where `mask` is true, `b` elsewhere, the three broadcast together.
/// The gradient goes to `a` where the mask is true and to `b` elsewhere.
///
/// ```swift
/// let y = select(x .> 0, x, 0.1 * x)        // leaky ReLU
/// ```
/// - Precondition: `mask` is `.bool`; `a` and `b` have one dtype (numbers adopt the other's).
public func select(_ mask: Tensor, _ a: some TensorConvertible, _ b: some TensorConvertible) -> Tensor {
    let (x, y) = resolve(a, b)
    return Tensor.stopping { try Tensor.selected(mask, x, y) }
}

/// `tf.gather(x, ids, axis)`: the slices of `x` along `axis` at int32 `indices` of any shape;
/// the result's shape is `x.shape[..<axis] + indices.shape + x.shape[(axis+1)...]`. The gradient
/// adds the cotangents of repeated ids (an unsorted segment sum).
///
/// ```swift
/// let table = Tensor([[1, 2], [3, 4], [5, 6]])
/// gather(table, indices: Tensor([Int32(2), 0, 2]), axis: 0)   // [[5, 6], [1, 2], [5, 6]]
/// ```
/// - Precondition: every id in `0 ..< x.shape[axis]` (else a `TapeError` naming the id and the bound).
public func gather(_ x: some TensorConvertible, indices: Tensor, axis: Int = 0) -> Tensor {
    Tensor.stopping { try Tensor.gathered(x.tensor(like: nil), indices, axis: axis) }
}

/// `x` cut along `axis` into pieces of `sizes` (which add up to the axis's length; one size may
/// be -1, the rest): `tf.split`. Each piece's gradient goes back to its place.
public func split(_ x: Tensor, sizes: [Int], axis: Int = 0) -> [Tensor] {
    do { return try x.splitChecked(sizes: sizes, axis: axis) } catch {
        return stop(error, else: sizes.map { _ in .inert(dtype: x.dtype) })
    }
}

extension Tensor {
    /// The index of the largest element along `axis` (the first, at ties), as int32; the axis is dropped.
    public func argmax(axis: Int = -1) -> Tensor {
        Tensor.stopping { try argReduced(Op.argmax, axis: axis) }
    }

    /// The index of the smallest element along `axis` (the first, at ties), as int32.
    public func argmin(axis: Int = -1) -> Tensor {
        Tensor.stopping { try argReduced(Op.argmin, axis: axis) }
    }

    /// Minimum over `axes` (all when nil); the gradient is shared equally among tied minima, as
    /// for ``max(axes:keepDims:)``. Computed as `-max(-x)`, exact for floats; integers through float64.
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        if dtype.isFloatingPoint { return -((-self).max(axes: axes, keepDims: keepDims)) }
        return (-(-cast(to: .float64)).max(axes: axes, keepDims: keepDims)).cast(to: dtype)
    }

    /// `tf.slice`: the window starting at `begin` of `size` along every axis (`size` -1: to the end).
    /// The gradient puts the cotangent back in place and zeros elsewhere.
    ///
    /// ```swift
    /// x.slice(begin: [0, 1], size: [2, -1])     // rows 0 and 1, columns 1 to the end
    /// ```
    public func slice(begin: [Int], size: [Int]) -> Tensor {
        Tensor.stopping { try sliceChecked(begin: begin, size: size) }
    }

    // MARK: Checked forms

    package static func compared(_ op: Op, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            throw TapeError.shape(
                "\(op.name): shapes \(Shape.describe(a.shape)) and \(Shape.describe(b.shape)) do not broadcast")
        }
        return try op.apply([try a.broadcastChecked(to: shape), try b.broadcastChecked(to: shape)])
    }

    package static func compared(_ name: String, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try compared(Op.named(name)!, a, b)
    }

    package static func selected(_ mask: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard mask.dtype == .bool else {
            throw TapeError.dtype("select: the mask is \(mask.dtype); it must be bool (a comparison's result)")
        }
        guard let ab = Shape.broadcast(a.shape, b.shape), let shape = Shape.broadcast(ab, mask.shape) else {
            throw TapeError.shape(
                "select: mask \(Shape.describe(mask.shape)), a \(Shape.describe(a.shape)) and b "
                    + "\(Shape.describe(b.shape)) do not broadcast")
        }
        return try Op.select.apply([
            try a.broadcastChecked(to: shape), try b.broadcastChecked(to: shape), try mask.broadcastChecked(to: shape),
        ])
    }

    package func argReduced(_ op: Op, axis: Int) throws -> Tensor {
        guard rank > 0 else { throw TapeError.argument("\(op.name): a scalar has no axis") }
        guard (-rank..<rank).contains(axis) else {
            throw TapeError.argument("\(op.name): axis \(axis) is out of range for rank \(rank) (\(-rank)..<\(rank))")
        }
        let k = axis < 0 ? axis + rank : axis
        guard shape[k] > 0 else { throw TapeError.shape("\(op.name): axis \(k) of \(Shape.describe(shape)) is empty") }
        let window = AxisWindow(
            extent: shape[k], inner: Shape.count(Array(shape[(k + 1)...])),
            output: Array(shape[..<k] + shape[(k + 1)...]))
        return try op.apply([self], .axis(window))
    }

    package static func gathered(_ x: Tensor, _ ids: Tensor, axis: Int) throws -> Tensor {
        guard ids.dtype == .int32 else {
            throw TapeError.dtype("gather: indices are \(ids.dtype); they must be int32")
        }
        guard x.rank > 0, (-x.rank..<x.rank).contains(axis) else {
            throw TapeError.argument("gather: axis \(axis) is out of range for \(Shape.describe(x.shape))")
        }
        guard ids.device == x.device else {
            throw TapeError.device("gather: indices on \(ids.device), x on \(x.device); move one with to(_:)")
        }
        let k = axis < 0 ? axis + x.rank : axis
        let n = x.shape[k]
        // Every id is checked here, so a bad one is an error, never a read outside x: against the range
        // known when the ids were made from host values, else by one read of the ids.
        let known = ids.knownRange.map { $0.lowerBound >= 0 && $0.upperBound < n } ?? false
        if !known,
            let (position, bad) = ids.scalars(as: Int32.self).enumerated().first(where: { !(0..<n).contains(Int($1)) })
        {
            throw TapeError.argument(
                "gather: index \(bad) (at position \(position) of the indices) is out of range for axis \(k) of "
                    + "\(Shape.describe(x.shape)) (0..<\(n))")
        }
        let window = AxisWindow(
            extent: n, count: ids.count, inner: Shape.count(Array(x.shape[(k + 1)...])),
            output: Array(x.shape[..<k]) + ids.shape + Array(x.shape[(k + 1)...]))
        return try Op.take.apply([x, ids], .axis(window))
    }

    package func splitChecked(sizes: [Int], axis: Int) throws -> [Tensor] {
        guard rank > 0, (-rank..<rank).contains(axis) else {
            throw TapeError.argument("split: axis \(axis) is out of range for \(Shape.describe(shape))")
        }
        let k = axis < 0 ? axis + rank : axis
        var sizes = sizes
        let known = sizes.filter { $0 != -1 }
        guard sizes.filter({ $0 == -1 }).count <= 1, known.allSatisfy({ $0 >= 0 }) else {
            throw TapeError.argument("split: sizes \(sizes) must be 0 or more, with at most one -1")
        }
        if let free = sizes.firstIndex(of: -1) { sizes[free] = shape[k] - known.reduce(0, +) }
        guard sizes.reduce(0, +) == shape[k], sizes.allSatisfy({ $0 >= 0 }) else {
            throw TapeError.shape(
                "split: sizes \(sizes) do not add up to \(shape[k]), axis \(k) of \(Shape.describe(shape))")
        }
        var start = 0
        return try sizes.map { n in
            defer { start += n }
            var begin = [Int](repeating: 0, count: rank)
            var size = shape
            begin[k] = start
            size[k] = n
            return try sliceChecked(begin: begin, size: size)
        }
    }

    package func sliceChecked(begin: [Int], size: [Int]) throws -> Tensor {
        guard begin.count == rank, size.count == rank else {
            throw TapeError.argument(
                "slice: begin \(begin) and size \(size) need one entry per axis of \(Shape.describe(shape))")
        }
        var sizes = size
        for d in 0..<rank {
            if sizes[d] == -1 { sizes[d] = shape[d] - begin[d] }
            guard begin[d] >= 0, sizes[d] >= 0, begin[d] + sizes[d] <= shape[d] else {
                throw TapeError.argument(
                    "slice: axis \(d): elements \(begin[d])..<\(begin[d] + sizes[d]) reach outside 0..<\(shape[d]) of "
                        + "\(Shape.describe(shape))")
            }
        }
        // A window that takes one element of each leading axis, any part of one axis k and every later axis
        // whole is one contiguous range of the row-major elements: a `slice` copy.
        let k = (0..<rank).first { sizes[$0] != 1 } ?? rank - 1
        if ((k + 1)..<rank).allSatisfy({ sizes[$0] == shape[$0] }) {
            let offset = zip(begin, Shape.strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
            return range(from: offset, shape: sizes)
        }
        // Else axis by axis: the partial axis moved to the front is a contiguous range of rows.
        var result = self
        for d in 0..<rank where sizes[d] != shape[d] {
            let toFront = [d] + (0..<rank).filter { $0 != d }
            let moved = d == 0 ? result : try result.transposedChecked(permutation: toFront)
            let rows = try moved.rows(begin[d]..<(begin[d] + sizes[d]))
            result = d == 0 ? rows : try rows.transposedChecked(permutation: Op.inverse(toFront))
        }
        return result
    }
}

/// `tf.one_hot(indices, depth)`: for int32 `indices` of any shape, a tensor of shape
/// `indices.shape + [depth]` that is 1 where the last axis equals the index and 0 elsewhere; an
/// index outside `0 ..< depth` gives a row of zeros, as TensorFlow's. Not differentiable (its
/// input is integers). Computed on the indices' device: nothing is read back.
///
/// ```swift
/// let labels = oneHot(Tensor([Int32(2), 0]), depth: 3)   // [[0, 0, 1], [1, 0, 0]]
/// ```
/// - Precondition: `indices` int32 and `depth` ≥ 0 (else a stop naming them).
public func oneHot(_ indices: Tensor, depth: Int, dtype: DType = .float32) -> Tensor {
    if let inert = Tensor.inertResult(of: "oneHot", indices) { return inert }
    guard indices.dtype == .int32, depth >= 0 else {
        let message = "oneHot: indices must be int32 and depth 0 or more, not \(indices.dtype) and \(depth)"
        return stop(TapeError.argument(message), else: .inert(shape: indices.shape + [Swift.max(depth, 0)]))
    }
    let classes = Tensor(shape: [depth], scalars: (0..<depth).map { Int32($0) }, on: indices.device)
    return (indices.reshaped(to: indices.shape + [1]) .== classes).cast(to: dtype)
}
