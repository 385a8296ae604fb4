@_spi(Runtime) import TapeCLRuntime

// NHWC image ops: im2col and col2im, which make conv2d a matrix product, and max and average
// pooling with their gradients. Each runs a kernel of Kernels/images.cl and, on the host, its twin
// in the runtime's HostImages.swift (the same arithmetic in the same order). Each op's parameters
// are its window, `.window(ImageWindow)`, from the public function to the kernel.

extension Op {
    /// An image op: kernel `name` of images.cl with `host`, its parameters the window.
    static func image(
        _ name: String, kernel: String, arity: Int = 1, floatOnly: Bool = true, channelRuns: Bool = false,
        saves: Saves,
        shape: @escaping @Sendable (ImageWindow) -> [Int],
        host: @escaping @Sendable (IndexedArguments, Range<Int>) -> Void,
        checkCase: CheckSampler?, vjp: @escaping VJP, jvp: @escaping JVP
    ) -> Op {
        Op(
            name: name, arity: arity,
            forward: .indexed(
                IndexedKernel(kernel, family: "images", grain: 1 << 10, channelRuns: channelRuns, host: host)),
            parameters: .window, shape: { _, p in shape(p.window) }, saves: saves, floatOnly: floatOnly,
            fusable: .never,
            tolerance: .summed, checkCase: checkCase, vjp: vjp, jvp: jvp)
    }

    static func applying(_ op: Op, _ inputs: [Tensor], _ window: ImageWindow) -> Tensor {
        Tensor.stopping { try op.apply(inputs, .window(window)) }
    }

    /// The check cases of the image ops: 7×9 images, 3×3 windows, strides 2, both paddings.
    static func imageCase(_ op: @escaping @Sendable (Tensor, Padding) -> Tensor) -> CheckSampler {
        { m, _ in CheckCase([[2, 7, 9, 3]]) { x in op(x[0], m % 2 == 0 ? .same : .valid) } }
    }

    static let im2col: Op = image(
        "im2col", kernel: "im2col", floatOnly: false, channelRuns: true, saves: .nothing, shape: { $0.columns },
        host: HostImages.im2col,
        checkCase: imageCase { x, p in
            conv2d(x, filter: Tensor.ones(shape: [3, 3, 3, 2], on: x.device), strides: (2, 2), padding: p)
        },
        vjp: { s, dy in s.grad(applying(col2im, [dy], s.parameters.window)) },
        jvp: { s, d in d[0].map { applying(im2col, [$0], s.parameters.window) } })

    /// im2col's adjoint: each pixel 0 plus its entries in the columns, in (kh, kw) order.
    ///
    /// The host loop adds each row of the columns into the pixels of its range, rows back to front:
    /// a pixel's windows then come in descending (oh, ow), which is ascending (kh, kw), the order of
    /// images.cl's gather, so both give the same bits. The rows are read in blocks, each copied front
    /// to back into a scratch that stays in cache, because a CPU does not prefetch a descending stream.
    static let col2im: Op = image(
        "col2im", kernel: "col2im", channelRuns: true, saves: .nothing, shape: { $0.input },
        host: HostImages.col2im,
        checkCase: imageCase { x, p in
            let g = ImageWindow(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(col2im, [applying(im2col, [x], g) * 0.5], g)
        },
        vjp: { s, dy in s.grad(applying(im2col, [dy], s.parameters.window)) },
        jvp: { s, d in d[0].map { applying(col2im, [$0], s.parameters.window) } })

    static let maxPool: Op = image(
        "maxPool", kernel: "max_pool", saves: .inputs, shape: { $0.pooled },
        host: HostImages.maxPool,
        checkCase: imageCase { x, p in maxPool2d(x, size: (3, 3), strides: (2, 2), padding: p) },
        vjp: { s, dy in s.grad(applying(maxPoolGrad, [s.x, dy], s.parameters.window)) },
        jvp: { s, d in d[0].map { applying(maxPoolPick, [s.x, $0], s.parameters.window) } })

    /// `[x, t]` → `t` read at each window's first maximum of `x`: max pooling's forward rule and the
    /// adjoint of its gradient.
    static let maxPoolPick: Op = image(
        "maxPoolPick", kernel: "max_pool_pick", arity: 2, saves: .inputs, shape: { $0.pooled },
        host: HostImages.maxPoolPick,
        checkCase: imageCase { x, p in
            applying(
                maxPoolPick, [stopGradient(x), x * 3],
                ImageWindow(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p))
        },
        vjp: { s, dy in
            [nil, s.inputs[1].needs ? applying(maxPoolGrad, [s.a, dy], s.parameters.window) : nil]
        },
        jvp: { s, d in d[1].map { applying(maxPoolPick, [s.a, $0], s.parameters.window) } })

    /// `[x, dy]` → each pixel the sum of `dy` over the windows whose first maximum it is (ties:
    /// the first in (kh, kw) order gets it all, as TensorFlow).
    static let maxPoolGrad: Op = image(
        "maxPoolGrad", kernel: "max_pool_grad", arity: 2, saves: .inputs, shape: { $0.input },
        host: HostImages.maxPoolGrad,
        checkCase: imageCase { x, p in
            let g = ImageWindow(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(maxPoolGrad, [stopGradient(x), Tensor.ones(shape: g.pooled, on: x.device) * 0.5], g) * x
        },
        vjp: { s, dy in
            [nil, s.inputs[1].needs ? applying(maxPoolPick, [s.a, dy], s.parameters.window) : nil]
        },
        jvp: { s, d in d[1].map { applying(maxPoolGrad, [s.a, $0], s.parameters.window) } })

    static let avgPool: Op = image(
        "avgPool", kernel: "avg_pool", saves: .nothing, shape: { $0.pooled },
        host: HostImages.avgPool,
        checkCase: imageCase { x, p in avgPool2d(x, size: (3, 3), strides: (2, 2), padding: p) },
        vjp: { s, dy in s.grad(applying(avgPoolGrad, [dy], s.parameters.window)) },
        jvp: { s, d in d[0].map { applying(avgPool, [$0], s.parameters.window) } })

    /// avgPool's adjoint: each pixel the sum over its windows of `dy` / (the window's real pixels).
    static let avgPoolGrad: Op = image(
        "avgPoolGrad", kernel: "avg_pool_grad", saves: .nothing, shape: { $0.input },
        host: HostImages.avgPoolGrad,
        checkCase: imageCase { x, p in
            let g = ImageWindow(input: x.shape, kernel: (3, 3), strides: (2, 2), padding: p)
            return applying(avgPoolGrad, [applying(avgPool, [x], g) * 2], g)
        },
        vjp: { s, dy in s.grad(applying(avgPool, [dy], s.parameters.window)) },
        jvp: { s, d in d[0].map { applying(avgPoolGrad, [$0], s.parameters.window) } })
}
