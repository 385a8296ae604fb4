/// An op's parameters: one case per family of ops, each a typed value.
///
/// Every op names the family it takes (its ``Kind``) and applying it checks the value against that
/// once, so a rule or a backend reads its payload (`parameters.window`, `parameters.reduction`)
/// without unwrapping. Backends receive the same value in the ``Launch``; an indexed kernel gets
/// its family's payload as one struct argument (``kernelArgument``). A new parameter is a field of
/// its family's payload, or one new case.
///
/// The payloads are boxed (`indirect`): the value is one reference, copied into every launch and
/// tape entry, and nothing for the ops without parameters (most of them).
@_spi(Runtime) public indirect enum Parameters: Sendable {
    /// The ops without parameters (elementwise, comparisons, select, stop).
    case none
    /// `sum`, `max`.
    case reduction(Reduction)
    /// `matmul`.
    case transposes(Transposes)
    /// `reshape`, `concat`: the output's shape.
    case shape([Int])
    /// `transpose`, `broadcast`.
    case strided(Strided)
    /// `slice`.
    case range(ElementRange)
    /// `cast`.
    case conversion(Conversion)
    /// `to(_:)`.
    case transfer(Transfer)
    /// The image ops (im2col, col2im, the pools and their gradients).
    case window(ImageWindow)
    /// argmax, argmin, gather and its gradient, segment sum.
    case axis(AxisWindow)

    /// The families, as ops name them.
    @_spi(Runtime) public enum Kind: String, Sendable {
        case none, reduction, transposes, shape, strided, range, conversion, transfer, window, axis
    }

    @inlinable @_spi(Runtime) public var kind: Kind {
        switch self {
        case .none: .none
        case .reduction: .reduction
        case .transposes: .transposes
        case .shape: .shape
        case .strided: .strided
        case .range: .range
        case .conversion: .conversion
        case .transfer: .transfer
        case .window: .window
        case .axis: .axis
        }
    }
}

/// The axes a reduction sums (or maxes) over, in increasing order, and whether they stay as 1s.
@_spi(Runtime) public struct Reduction: Sendable {
    @_spi(Runtime) public let axes: [Int]
    @_spi(Runtime) public let keepDims: Bool
    @_spi(Runtime) public init(axes: [Int], keepDims: Bool) {
        self.axes = axes
        self.keepDims = keepDims
    }
}

/// Whether a product reads each operand transposed: `op(a) @ op(b)`.
@_spi(Runtime) public struct Transposes: Sendable {
    @_spi(Runtime) public let a: Bool
    @_spi(Runtime) public let b: Bool
    @_spi(Runtime) public init(a: Bool, b: Bool) {
        self.a = a
        self.b = b
    }
}

/// A strided copy's geometry: `out[i] = in[Σ index_d · strides[d]]` over the output's `shape`
/// (stride 0 along a broadcast axis), and for a transpose its permutation (empty for a broadcast).
@_spi(Runtime) public struct Strided: Sendable {
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public let strides: [Int]
    @_spi(Runtime) public let permutation: [Int]
    @_spi(Runtime) public init(shape: [Int], strides: [Int], permutation: [Int] = []) {
        self.shape = shape
        self.strides = strides
        self.permutation = permutation
    }
}

/// Elements `offset ..< offset + count(shape)` of a row-major input, as a tensor of `shape`.
@_spi(Runtime) public struct ElementRange: Sendable {
    @_spi(Runtime) public let offset: Int
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public init(offset: Int, shape: [Int]) {
        self.offset = offset
        self.shape = shape
    }
}

/// A cast's output element type and its input's (for the backward).
@_spi(Runtime) public struct Conversion: Sendable {
    @_spi(Runtime) public let to: DType
    @_spi(Runtime) public let from: DType
    @_spi(Runtime) public init(to: DType, from: DType) {
        self.to = to
        self.from = from
    }
}

/// A copy's target device and its input's (for the backward).
@_spi(Runtime) public struct Transfer: Sendable {
    @_spi(Runtime) public let to: Device
    @_spi(Runtime) public let from: Device
    @_spi(Runtime) public init(to: Device, from: Device) {
        self.to = to
        self.from = from
    }
}

/// An indexed op along one axis: its input viewed as [outer, extent, inner], `count` ids (gather and
/// segment sum; 1 for argmax), and the op's output shape. `axis_window` in Kernels/indexing.cl.
@_spi(Runtime) public struct AxisWindow: Sendable {
    @_spi(Runtime) public let extent: Int
    @_spi(Runtime) public let count: Int
    @_spi(Runtime) public let inner: Int
    @_spi(Runtime) public let output: [Int]
    @_spi(Runtime) public init(extent: Int, count: Int = 1, inner: Int, output: [Int]) {
        self.extent = extent
        self.count = count
        self.inner = inner
        self.output = output
    }
    /// The same window with another output shape (a gather's and its gradient's share all else).
    @_spi(Runtime) public func with(output: [Int]) -> AxisWindow {
        AxisWindow(extent: extent, count: count, inner: inner, output: output)
    }
}

// MARK: - Reading a family's payload

// Each op's family was checked when it was applied (`Op.apply`), so a rule or a backend reading
// another family's payload is a bug in TapeCL: it stops, naming both.
extension Parameters {
    @_spi(Runtime) public var reduction: Reduction {
        if case .reduction(let p) = self { return p }
        mismatch(.reduction)
    }
    @_spi(Runtime) public var transposes: Transposes {
        if case .transposes(let p) = self { return p }
        mismatch(.transposes)
    }
    @_spi(Runtime) public var shape: [Int] {
        switch self {
        case .shape(let s): return s
        case .strided(let p): return p.shape
        case .range(let p): return p.shape
        case .axis(let p): return p.output
        default: mismatch(.shape)
        }
    }
    @_spi(Runtime) public var strided: Strided {
        if case .strided(let p) = self { return p }
        mismatch(.strided)
    }
    @_spi(Runtime) public var range: ElementRange {
        if case .range(let p) = self { return p }
        mismatch(.range)
    }
    @_spi(Runtime) public var conversion: Conversion {
        if case .conversion(let p) = self { return p }
        mismatch(.conversion)
    }
    @_spi(Runtime) public var transfer: Transfer {
        if case .transfer(let p) = self { return p }
        mismatch(.transfer)
    }
    @_spi(Runtime) public var window: ImageWindow {
        if case .window(let p) = self { return p }
        mismatch(.window)
    }
    @_spi(Runtime) public var axis: AxisWindow {
        if case .axis(let p) = self { return p }
        mismatch(.axis)
    }

    /// An indexed kernel's parameter struct, as 32-bit integers in its fields' order (`image_window`
    /// in images.cl, `axis_window` in indexing.cl), or nil for a kernel that takes none.
    @_spi(Runtime) public var kernelArgument: [Int32]? {
        switch self {
        case .window(let g): g.fields.map { Int32(truncatingIfNeeded: $0) }
        case .axis(let a): [a.extent, a.count, a.inner].map { Int32(truncatingIfNeeded: $0) }
        default: nil
        }
    }

    private func mismatch(_ wanted: Kind) -> Never {
        fail(TapeError.argument("internal: \(kind) parameters read as \(wanted) (a rule of TapeCL is wrong)"))
    }
}
