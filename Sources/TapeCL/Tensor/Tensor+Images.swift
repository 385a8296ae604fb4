@_spi(Runtime) import TapeCLRuntime

// Convolution and pooling on NHWC images (TensorFlow's layouts): the public side of Ops/Images.swift.

/// The 2-D convolution of `x` `[N, H, W, Cin]` with `filter` `[KH, KW, Cin, Cout]` (HWIO), as
/// `tf.nn.conv2d` (a cross-correlation): `[N, OH, OW, Cout]`, with `.same` padding as TensorFlow
/// pads (the output is ⌈H / stride⌉, the smaller half of the padding on top and left).
///
/// Computed as a matrix product: the input's windows as rows (im2col), times the filter as a
/// `[KH·KW·Cin, Cout]` matrix. Gradients: the filter's is `colsᵀ·dy`, the input's the windows'
/// cotangents added back in place (col2im); both are recorded, so nested tapes differentiate again.
///
/// ```swift
/// let x = Tensor.randomNormal(shape: [8, 28, 28, 1], seed: 1)
/// let w = Tensor.randomNormal(shape: [3, 3, 1, 16], seed: 2)
/// let y = relu(conv2d(x, filter: w, strides: (1, 1), padding: .same))   // [8, 28, 28, 16]
/// ```
/// - Precondition: rank-4 `x` and `filter` with equal `Cin` and a window that fits (else a
///   `TapeError` naming the shapes).
public func conv2d(
    _ x: Tensor, filter: some TensorConvertible, strides: (Int, Int) = (1, 1), padding: Padding = .valid
) -> Tensor {
    Tensor.stopping { try Tensor.convolved(x, filter.tensor(like: x), strides: strides, padding: padding) }
}

/// The maximum of each `size` window of `x` `[N, H, W, C]` (`tf.nn.max_pool2d`); `.same` pads
/// with nothing counted. The gradient goes to the first maximum of each window (in row order), as
/// TensorFlow's.
public func maxPool2d(_ x: Tensor, size: (Int, Int), strides: (Int, Int), padding: Padding = .valid) -> Tensor {
    Tensor.stopping { try Tensor.pooled(Op.maxPool, x, size: size, strides: strides, padding: padding) }
}

/// The mean of each `size` window of `x` `[N, H, W, C]` (`tf.nn.avg_pool2d`); with `.same` a
/// border window averages its real elements only.
public func avgPool2d(_ x: Tensor, size: (Int, Int), strides: (Int, Int), padding: Padding = .valid) -> Tensor {
    Tensor.stopping { try Tensor.pooled(Op.avgPool, x, size: size, strides: strides, padding: padding) }
}

extension Tensor {
    static func window(
        _ name: String, _ x: Tensor, size: (Int, Int), strides: (Int, Int), padding: Padding
    ) throws -> ImageWindow {
        guard x.rank == 4 else {
            throw TapeError.shape("\(name): the input is \(Shape.describe(x.shape)); it must be [N, H, W, C]")
        }
        guard size.0 > 0, size.1 > 0, strides.0 > 0, strides.1 > 0 else {
            throw TapeError.argument("\(name): window \(size) and strides \(strides) must be positive")
        }
        let g = ImageWindow(input: x.shape, kernel: size, strides: strides, padding: padding)
        guard g.oh > 0, g.ow > 0 else {
            throw TapeError.shape(
                "\(name): a \(size.0)×\(size.1) window does not fit in \(x.shape[1])×\(x.shape[2]) images "
                    + "with .valid padding")
        }
        return g
    }

    package static func convolved(_ x: Tensor, _ filter: Tensor, strides: (Int, Int), padding: Padding) throws -> Tensor
    {
        guard filter.rank == 4 else {
            throw TapeError.shape(
                "conv2d: the filter is \(Shape.describe(filter.shape)); it must be [KH, KW, Cin, Cout]")
        }
        guard x.rank == 4, filter.shape[2] == x.shape[3] else {
            throw TapeError.shape(
                "conv2d: the filter's input depth \(filter.shape[2]) (filter \(Shape.describe(filter.shape))) differs "
                    + "from the input's \(x.rank == 4 ? x.shape[3] : -1) channels (input \(Shape.describe(x.shape)))")
        }
        let g = try window("conv2d", x, size: (filter.shape[0], filter.shape[1]), strides: strides, padding: padding)
        let columns = try Op.im2col.apply([x], .window(g))
        let w = try filter.reshapedChecked(to: [g.kh * g.kw * g.c, filter.shape[3]])
        return try matmul(columns, w).reshapedChecked(to: [g.n, g.oh, g.ow, filter.shape[3]])
    }

    package static func pooled(
        _ op: Op, _ x: Tensor, size: (Int, Int), strides: (Int, Int), padding: Padding
    ) throws
        -> Tensor
    {
        let g = try window(op.name, x, size: size, strides: strides, padding: padding)
        return try op.apply([x], .window(g))
    }
}

extension Tensor {
    /// Image op `name` of the table applied to `inputs` with the window of a `size`/`strides`/`padding`
    /// pass over images of `imageShape` (for tests and checks of the ops the public functions use inside).
    package static func imageOp(
        _ name: String, _ inputs: [Tensor], imageShape: [Int], size: (Int, Int), strides: (Int, Int), padding: Padding
    ) throws -> Tensor {
        let g = ImageWindow(input: imageShape, kernel: size, strides: strides, padding: padding)
        return try Op.named(name)!.apply(inputs, .window(g))
    }
}
