@_spi(Runtime) import TapeCLRuntime

// Indexing along the first axis and joining along any axis. Both are built on the table's two
// copy ops, `slice` (a contiguous range of the row-major elements) and `concat` (inputs one after
// another), with transposes around them for other axes, so their gradients come for free.

/// `tensors` joined along `axis` (negative counts from the end); every other dimension must agree.
///
/// As `tf.concat`: the gradient of each input is its block of the result's cotangent.
///
/// ```swift
/// let a = Tensor([[1, 2], [3, 4]])
/// let b = Tensor([[5], [6]])
/// concat([a, b], axis: 1)       // [[1, 2, 5], [3, 4, 6]]
/// ```
public func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    Tensor.stopping { try Tensor.concatenated(tensors, axis: axis) }
}

extension Tensor {
    /// Row `index` of the first axis, which the result drops; a negative index counts from the end
    /// (`x[-1]` is the last row). Stops with a `TapeError` naming the index and the bound when out of range.
    public subscript(index: Int) -> Tensor {
        Tensor.stopping { try row(index) }
    }

    /// Rows `range` of the first axis (`x[1..<3]`, `x[1...]`, `x[..<2]`); the gradient puts the
    /// cotangent back in place and zeros elsewhere. Stops with a `TapeError` when the range
    /// reaches past the end.
    public subscript<R: RangeExpression<Int>>(range: R) -> Tensor {
        Tensor.stopping { try rows(range) }
    }

    package func row(_ index: Int) throws -> Tensor {
        guard rank > 0 else { throw TapeError.argument("x[\(index)]: a scalar has no rows to index") }
        let n = shape[0]
        guard (-n..<n).contains(index) else {
            throw TapeError.argument("x[\(index)]: index \(index) is out of range for \(n) rows (\(-n)..<\(n))")
        }
        let i = index < 0 ? index + n : index
        let rest = Array(shape.dropFirst())
        return range(from: i * Shape.count(rest), shape: rest)
    }

    package func rows<R: RangeExpression<Int>>(_ range: R) throws -> Tensor {
        guard rank > 0 else { throw TapeError.argument("x[range]: a scalar has no rows to slice") }
        let n = shape[0]
        let r = range.relative(to: 0..<n)  // a bounded range is itself; x[i...] ends at n, x[..<j] starts at 0
        guard r.lowerBound >= 0, r.upperBound <= n else {
            throw TapeError.argument(
                "x[\(r.lowerBound)..<\(r.upperBound)]: rows \(r.lowerBound)..<\(r.upperBound) reach outside the "
                    + "\(n) rows of \(Shape.describe(shape))")
        }
        let rest = Array(shape.dropFirst())
        return self.range(from: r.lowerBound * Shape.count(rest), shape: [r.count] + rest)
    }

    package static func concatenated(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TapeError.argument("concat: no tensors to join") }
        let rank = first.rank
        guard rank > 0 else { throw TapeError.argument("concat: scalars have no axis to join along; use stack") }
        guard (-rank..<rank).contains(axis) else {
            throw TapeError.argument("concat: axis \(axis) is out of range for rank \(rank) (\(-rank)..<\(rank))")
        }
        let k = axis < 0 ? axis + rank : axis
        for (i, t) in tensors.enumerated() {
            var expected = first.shape
            if t.rank == rank { expected[k] = t.shape[k] }
            guard t.shape == expected else {
                throw TapeError.shape(
                    "concat: tensor \(i) is \(Shape.describe(t.shape)) but tensor 0 is "
                        + "\(Shape.describe(first.shape)); all dimensions but axis \(k) must agree")
            }
        }
        // Axis k to the front: the blocks are then contiguous, one after another.
        let toFront = [k] + (0..<rank).filter { $0 != k }
        let moved = try tensors.map { k == 0 ? $0 : try $0.transposedChecked(permutation: toFront) }
        let shape = [tensors.reduce(0) { $0 + $1.shape[k] }] + moved[0].shape.dropFirst()
        let joined = try Op.concat.apply(moved, .shape(shape))
        return k == 0 ? joined : try joined.transposedChecked(permutation: Op.inverse(toFront))
    }
}
