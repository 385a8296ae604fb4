@_spi(Runtime) import TapeCLRuntime

// The public ops. Each forwards to one entry of the op table (Sources/TapeCL/Ops).

// MARK: Operators, NumPy broadcasting, numbers on either side

/// Elementwise sum with broadcasting: `x + 1`, `a + b`.
public func + (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(l, r)
    return Op.add(a, b)
}
/// Elementwise difference with broadcasting.
public func - (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(l, r)
    return Op.sub(a, b)
}
/// Elementwise product with broadcasting (not the matrix product: see ``matmul(_:_:transposeA:transposeB:)``).
public func * (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(l, r)
    return Op.mul(a, b)
}
/// Elementwise quotient with broadcasting (integers truncate).
public func / (l: some TensorConvertible, r: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(l, r)
    return Op.div(a, b)
}
/// Elementwise negation.
public prefix func - (x: some TensorConvertible) -> Tensor { Op.neg(x.tensor(like: nil)) }

/// `l = l + r` (likewise `-=`, `*=`, `/=`): a new tensor bound to `l`; tensors never change in place.
public func += (l: inout Tensor, r: some TensorConvertible) { l = l + r }
public func -= (l: inout Tensor, r: some TensorConvertible) { l = l - r }
public func *= (l: inout Tensor, r: some TensorConvertible) { l = l * r }
public func /= (l: inout Tensor, r: some TensorConvertible) { l = l / r }

// MARK: Elementwise functions

/// `xʸ` elementwise with broadcasting: `pow(x, 2)`.
/// Gradients: `y·xʸ⁻¹` for x, `xʸ·log x` for y (0 where x ≤ 0, as TensorFlow).
public func pow(_ x: some TensorConvertible, _ y: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(x, y)
    return Op.pow(a, b)
}
/// Elementwise maximum; at ties the gradient goes to the first argument.
public func maximum(_ x: some TensorConvertible, _ y: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(x, y)
    return Op.maximum(a, b)
}
/// Elementwise minimum; at ties the gradient goes to the first argument.
public func minimum(_ x: some TensorConvertible, _ y: some TensorConvertible) -> Tensor {
    let (a, b) = resolve(x, y)
    return Op.minimum(a, b)
}

/// Sine; d/dx = cos x.
public func sin(_ x: some TensorConvertible) -> Tensor { Op.sin(x.tensor(like: nil)) }
/// Cosine; d/dx = −sin x.
public func cos(_ x: some TensorConvertible) -> Tensor { Op.cos(x.tensor(like: nil)) }
/// Tangent; d/dx = 1 + tan² x.
public func tan(_ x: some TensorConvertible) -> Tensor { Op.tan(x.tensor(like: nil)) }
/// eˣ; d/dx = eˣ.
public func exp(_ x: some TensorConvertible) -> Tensor { Op.exp(x.tensor(like: nil)) }
/// Natural logarithm; d/dx = 1/x.
public func log(_ x: some TensorConvertible) -> Tensor { Op.log(x.tensor(like: nil)) }
/// Square root; d/dx = 1/(2√x).
public func sqrt(_ x: some TensorConvertible) -> Tensor { Op.sqrt(x.tensor(like: nil)) }
/// Hyperbolic tangent; d/dx = 1 − tanh² x.
public func tanh(_ x: some TensorConvertible) -> Tensor { Op.tanh(x.tensor(like: nil)) }
/// Logistic sigmoid 1/(1 + e⁻ˣ); d/dx = σ(1 − σ).
public func sigmoid(_ x: some TensorConvertible) -> Tensor { Op.sigmoid(x.tensor(like: nil)) }
/// max(x, 0); d/dx = 1 where x > 0, else 0.
public func relu(_ x: some TensorConvertible) -> Tensor { Op.relu(x.tensor(like: nil)) }
/// |x|; d/dx = sign x (0 at 0).
public func abs(_ x: some TensorConvertible) -> Tensor { Op.abs(x.tensor(like: nil)) }

/// The matrix product `op(a) · op(b)`, where `op` transposes the last two axes when asked.
///
/// - `a` is `[M, K]` or `[B, M, K]`, `b` is `[K, N]` or `[B, K, N]`; a rank-2 operand is
///   shared by every batch. The result is `[M, N]` or `[B, M, N]`.
/// - Gradients: `dA = dC·Bᵀ`, `dB = Aᵀ·dC` (computed with the transpose flags, no copies).
///
/// ```swift
/// let y = matmul(x, w) + b          // [1, 3] @ [3, 2] + [2] -> [1, 2]
/// ```
/// - Parameters:
///   - a: `[M, K]` or `[B, M, K]`.
///   - b: `[K, N]` or `[B, K, N]`.
///   - transposeA: use `aᵀ` (the last two axes swapped).
///   - transposeB: use `bᵀ`.
public func matmul(
    _ a: some TensorConvertible, _ b: some TensorConvertible, transposeA: Bool = false, transposeB: Bool = false
) -> Tensor {
    let (ta, tb) = resolve(a, b)
    return Op.matmul(ta, tb, parameters: .transposes(Transposes(a: transposeA, b: transposeB)))
}

/// The tensors, of one shape, stacked along a new axis `axis` (TensorFlow's `tf.stack`):
/// `stack([a, b])` of two `[3]` tensors is `[2, 3]`; `stack([a, b], axis: 1)` is `[3, 2]`.
/// Recorded: each input's gradient is its slice of the output's. An array literal of tensors,
/// `let s: Tensor = [a, b]`, is `stack([a, b])`.
/// - Precondition: one or more tensors of one shape, dtype and device; `axis` in `-(rank+1)...rank`.
public func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    Tensor.stopping { try Tensor.stacked(tensors, axis: axis) }
}

/// `x` itself, through which no gradient flows: `stopGradient(x)` is a constant to every tape.
public func stopGradient(_ x: some TensorConvertible) -> Tensor { Op.stop(x.tensor(like: nil)) }

// MARK: Methods

extension Tensor {
    /// Sum over `axes` (all when `nil`), dropping them unless `keepDims`.
    /// Negative axes count from the end. The order of additions is fixed (see `ReduceOrder`),
    /// so the same tensor sums to the same bits on every run and device.
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        Tensor.stopping { try reduce(Op.sum, axes: axes, keepDims: keepDims) }
    }

    /// Arithmetic mean over `axes` (all when `nil`): the sum divided by the number of elements summed.
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        Tensor.stopping { try meanChecked(axes: axes, keepDims: keepDims) }
    }

    /// Maximum over `axes` (all when `nil`); the gradient is shared equally among tied maxima.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        Tensor.stopping { try reduce(Op.max, axes: axes, keepDims: keepDims) }
    }

    /// The same elements in a new shape (no copy); one dimension may be `-1` (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        Tensor.stopping { try reshapedChecked(to: newShape) }
    }

    /// The axes in reverse order (for a matrix, its transpose).
    public func transposed() -> Tensor { transposed(permutation: Array((0..<rank).reversed())) }

    /// Axis `i` of the result is axis `permutation[i]` of `self`.
    public func transposed(permutation: [Int]) -> Tensor {
        Tensor.stopping { try transposedChecked(permutation: permutation) }
    }

    /// This tensor repeated along new leading axes and along axes of size 1 to `shape` (NumPy rules).
    public func broadcast(to shape: [Int]) -> Tensor {
        Tensor.stopping { try broadcastChecked(to: shape) }
    }

    /// The elements converted to `dtype`; the gradient converts back.
    public func cast(to dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        return Op.cast(self, parameters: .conversion(Conversion(to: dtype, from: self.dtype)))
    }

    /// A copy on `device` (itself when already there); differentiable: the gradient moves back.
    public func to(_ device: Device) -> Tensor {
        Tensor.stopping { try to(device, differentiable: true) }
    }

    package func to(_ device: Device, differentiable: Bool) throws -> Tensor {
        if device == self.device { return self }
        let a = Parameters.transfer(Transfer(to: device, from: self.device))
        return differentiable ? try Op.transfer.apply([self], a) : try Op.transfer.execute([self], a)
    }

    /// Elements `offset ..< offset + count(shape)` of this tensor's row-major elements, in `shape`
    /// (recorded; the rows of a stack are ranges).
    package func range(from offset: Int, shape: [Int]) -> Tensor {
        Op.slice(self, parameters: .range(ElementRange(offset: offset, shape: shape)))
    }

    package static func stacked(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TapeError.argument("stack: no tensors to stack") }
        guard tensors.allSatisfy({ $0.shape == first.shape }) else {
            let shapes = tensors.map { Shape.describe($0.shape) }.joined(separator: ", ")
            throw TapeError.shape("stack: the tensors' shapes differ (\(shapes))")
        }
        let rank = first.rank
        guard (-(rank + 1)...rank).contains(axis) else {
            throw TapeError.argument("stack: axis \(axis) is out of range for \(tensors.count) tensors of rank \(rank)")
        }
        let rows = try Op.concat.apply(tensors, .shape([tensors.count] + first.shape))
        let k = axis < 0 ? axis + rank + 1 : axis
        if k == 0 { return rows }
        return try rows.transposedChecked(permutation: Array(1...k) + [0] + Array((k + 1)..<(rank + 1)))
    }

    /// `self` summed down to `target` (undoing a broadcast): what the tape walk does to every cotangent.
    package func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        let axes =
            Array(0..<lead) + target.indices.filter { target[$0] == 1 && shape[$0 + lead] != 1 }.map { $0 + lead }
        return sum(axes: axes).reshaped(to: target)
    }

    // MARK: Checked forms (throwing instead of stopping)

    package func normalizedAxes(_ axes: [Int]?) throws -> [Int] {
        guard let axes else { return Array(0..<rank) }
        guard let norm = Shape.normalize(axes: axes, rank: rank) else {
            throw TapeError.argument("axes \(axes) are out of range or repeated for shape \(Shape.describe(shape))")
        }
        return rank == 0 ? [] : norm
    }

    package func reduce(_ op: Op, axes: [Int]?, keepDims: Bool) throws -> Tensor {
        let axes = try normalizedAxes(axes)
        if axes.isEmpty { return self }
        if axes.last! - axes.first! + 1 == axes.count {
            return try op.apply([self], .reduction(Reduction(axes: axes, keepDims: keepDims)))
        }
        // Not one block: move the reduced axes to the end, reduce there, restore kept dims.
        let keptAxes = (0..<rank).filter { !axes.contains($0) }
        let r = try op.apply(
            [try transposedChecked(permutation: keptAxes + axes)],
            .reduction(Reduction(axes: Array(keptAxes.count..<rank), keepDims: false)))
        return keepDims
            ? try r.reshapedChecked(to: shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }) : r
    }

    package func meanChecked(axes: [Int]?, keepDims: Bool) throws -> Tensor {
        let norm = try normalizedAxes(axes)
        let n = Double(norm.reduce(1) { $0 * shape[$1] })
        return try Op.div.apply([try reduce(Op.sum, axes: norm, keepDims: keepDims), n.tensor(like: self)])
    }

    package func broadcastChecked(to target: [Int]) throws -> Tensor {
        if target == shape { return self }
        _ = try Shape.checkedBytes(target, dtype, op: "broadcast")
        guard Shape.broadcast(shape, target) == target else {  // checked before the strides, which assume it
            throw TapeError.shape("broadcast: \(Shape.describe(shape)) does not broadcast to \(Shape.describe(target))")
        }
        let strided = Strided(shape: target, strides: Shape.broadcastStrides(shape, to: target))
        return try Op.broadcast.apply([self], .strided(strided))
    }

    package func reshapedChecked(to newShape: [Int]) throws -> Tensor {
        var target = newShape
        if let hole = newShape.firstIndex(of: -1) {
            var known = newShape
            known.remove(at: hole)
            guard newShape.filter({ $0 == -1 }).count == 1 else {
                throw TapeError.shape("reshape: at most one dimension of \(Shape.describe(newShape)) may be -1")
            }
            let knownCount = try Shape.checkedBytes(known, .int8, op: "reshape")
            guard knownCount > 0, count % knownCount == 0 else {
                throw TapeError.shape(
                    "reshape: cannot reshape \(Shape.describe(shape)) (\(count) elements) to "
                        + "\(Shape.describe(newShape))"
                )
            }
            target[hole] = count / knownCount
        }
        _ = try Shape.checkedBytes(target, dtype, op: "reshape")
        if target == shape { return self }
        return try Op.reshape.apply([self], .shape(target))
    }

    package func transposedChecked(permutation: [Int]) throws -> Tensor {
        guard permutation.sorted() == Array(0..<rank) else {
            throw TapeError.argument(
                "transpose: \(permutation) is not a permutation of the \(rank) axes of \(Shape.describe(shape))")
        }
        if permutation == Array(0..<rank) { return self }
        let strides = Shape.strides(shape)
        let strided = Strided(
            shape: permutation.map { shape[$0] }, strides: permutation.map { strides[$0] }, permutation: permutation)
        return try Op.transpose.apply([self], .strided(strided))
    }
}

extension Tensor {
    /// Applies the op of the table called `name` to `inputs`, throwing a `TapeError` for input
    /// it cannot take (shapes that do not fit, mixed dtypes or devices) instead of stopping the
    /// program as the operators do. For callers that take untrusted input, such as `tapecl grad`.
    ///
    /// Names: `neg sin cos tan exp log sqrt tanh sigmoid relu abs add sub mul div pow maximum
    /// minimum matmul sum max mean reshape transpose broadcast`.
    ///
    /// ```swift
    /// do { let y = try Tensor.apply("matmul", [a, b]) } catch { print(error) }
    /// ```
    public static func apply(
        _ name: String, _ inputs: [Tensor], axes: [Int]? = nil, keepDims: Bool = false,
        shape: [Int]? = nil
    ) throws -> Tensor {
        if let composite = composites[name] {
            return try composite(Op.single(inputs, name), axes, keepDims)
        }
        guard let op = Op.named(name) else { throw TapeError.argument("unknown op '\(name)'") }
        if let call = op.call {
            return try call(op, inputs, Op.CallArguments(axes: axes, keepDims: keepDims, shape: shape))
        }
        switch op.forward {
        case .unary, .binary: return try op.apply(inputs)
        case .matmul: return try op.apply(inputs, .transposes(Transposes(a: false, b: false)))
        default: throw TapeError.argument("unknown op '\(name)'")
        }
    }

    /// Names `apply` takes that are compositions of table ops rather than ops.
    private static let composites: [String: @Sendable (Tensor, [Int]?, Bool) throws -> Tensor] = [
        "mean": { x, axes, keepDims in try x.meanChecked(axes: axes, keepDims: keepDims) }
    ]
}
