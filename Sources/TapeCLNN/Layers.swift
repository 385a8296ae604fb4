import TapeCL

/// A piece of a model: a function of a tensor with trainable variables, named for saving.
///
/// ```swift
/// let model = Sequential([Conv2D(filterShape: [3, 3, 1, 8], activation: { relu($0) }, seed: 1), Flatten()])
/// let y = model(images)
/// try model.saveWeights(to: url)   // and model.loadWeights(from: url)
/// ```
public protocol Layer: AnyObject {
    /// The layer applied to `x`.
    func callAsFunction(_ x: Tensor) -> Tensor
    /// Every trainable variable, in a fixed order (the optimizer's).
    var variables: [Variable] { get }
    /// The variables by name (`weight`, `bias`, or `0.weight` inside a ``Sequential``): what
    /// ``Layer/saveWeights(to:)`` writes.
    var namedVariables: [String: Variable] { get }
    /// Switches training behaviour (``Dropout`` drops only while training); no effect by default.
    func setTraining(_ training: Bool)
    /// The name given when the layer was made, if any: messages name the layer by it, and a
    /// ``Sequential`` prefixes the layer's variables with it instead of the layer's position.
    var name: String? { get }
}

extension Layer {
    public var name: String? { nil }
    public var variables: [Variable] { namedVariables.sorted { $0.key < $1.key }.map(\.value) }
    public var namedVariables: [String: Variable] { [:] }
    public func setTraining(_ training: Bool) {}
}

/// A fully connected layer: `y = activation(x · weight + bias)`.
///
/// Weights start as normal(0, 1)/√inputSize (from `seed`), biases at zero.
///
/// ```swift
/// let layer = Dense(inputSize: 64, outputSize: 10, seed: 1)
/// let logits = layer(images)          // [batch, 64] -> [batch, 10]
/// ```
public final class Dense: Layer, Sendable {
    /// `[inputSize, outputSize]`.
    public let weight: Variable
    /// `[outputSize]`.
    public let bias: Variable
    public let activation: @Sendable (Tensor) -> Tensor
    public let name: String?

    /// A layer mapping `[batch, inputSize]` to `[batch, outputSize]`; `seed` fixes the initial weights;
    /// `name` names it in messages and in a ``Sequential``'s variable names.
    public init(
        inputSize: Int, outputSize: Int, activation: @escaping @Sendable (Tensor) -> Tensor = { $0 },
        seed: UInt64 = 0, on device: Device? = nil, name: String? = nil
    ) {
        self.name = name
        let scale = 1 / Double(inputSize).squareRoot()
        weight = Variable(
            Tensor.randomNormal(shape: [inputSize, outputSize], stddev: scale, seed: seed, on: device), name: "weight")
        bias = Variable(Tensor.zeros(shape: [outputSize], on: device), name: "bias")
        self.activation = activation
    }

    /// `activation(x · weight + bias)`; `x` is `[batch, inputSize]` or `[batch, steps, inputSize]`.
    /// - Precondition: `x` of that shape, floating point, on the layer's device (else the program
    ///   stops with a message naming the layer: `Dense(128→10): the input has 1024 features …`).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (inputs, outputs) = (weight.shape[0], weight.shape[1])
        let me = "Dense" + (name.map { " '\($0)' " } ?? "") + "(\(inputs)→\(outputs))"
        if let inert = Tensor.inertResult(of: me, x) { return inert }  // see `withErrors`
        if x.rank < 2 || x.rank > 3 {
            let message = "\(me): the input must be [batch, \(inputs)] or [batch, steps, \(inputs)], not \(x.shape)"
            return stop(TapeError.shape(message), else: .inert(dtype: x.dtype))
        }
        if x.shape[x.rank - 1] != inputs {
            let message =
                "\(me): the input has \(x.shape[x.rank - 1]) features (shape \(x.shape)) and the layer takes "
                + "inputSize \(inputs)"
            return stop(TapeError.shape(message), else: .inert(dtype: x.dtype))
        }
        if let error = inputError(x, of: me, on: weight) { return stop(error, else: .inert(dtype: x.dtype)) }
        guard x.rank == 3 else { return activation(matmul(x, weight) + bias) }
        let flat = x.reshaped(to: [-1, x.shape[2]])
        return activation((matmul(flat, weight) + bias).reshaped(to: [x.shape[0], x.shape[1], -1]))
    }

    /// The trainable variables: `[weight, bias]`.
    public var variables: [Variable] { [weight, bias] }
    public var namedVariables: [String: Variable] { ["weight": weight, "bias": bias] }
}

/// The error, naming `layer`, unless `x` is floating point and on `variable`'s device.
func inputError(_ x: Tensor, of layer: String, on variable: Variable) -> TapeError? {
    if !x.dtype.isFloatingPoint {
        return TapeError.dtype(
            "\(layer): the input must be float32 or float64, not \(x.dtype); convert it with cast(to:)")
    }
    let device = variable.value.device
    if x.device != device {
        return TapeError.device(
            "\(layer): the input is on \(x.device) and the layer's variables on \(device); move the input with "
                + "to(\(device == .host ? ".host" : "Device.named(\"\(device)\")"))")
    }
    return nil
}

/// A 2-D convolution layer (NHWC, filters HWIO): `activation(conv2d(x, filter) + bias)`.
///
/// Filters start as normal(0, 1)/√(KH·KW·Cin) (from `seed`), biases at zero.
///
/// ```swift
/// let conv = Conv2D(filterShape: [3, 3, 1, 16], padding: .same, activation: { relu($0) }, seed: 1)
/// let features = conv(images)        // [N, 8, 8, 1] -> [N, 8, 8, 16]
/// ```
public final class Conv2D: Layer, Sendable {
    /// `[KH, KW, Cin, Cout]`.
    public let filter: Variable
    /// `[Cout]`.
    public let bias: Variable
    public let strides: (Int, Int)
    public let padding: Padding
    public let activation: @Sendable (Tensor) -> Tensor
    public let name: String?

    /// Filters of `filterShape` `[KH, KW, Cin, Cout]` from `seed`; `name` names the layer in messages
    /// and in a ``Sequential``'s variable names.
    /// - Precondition: `filterShape` has four sizes of 1 or more (else a stop naming it).
    public init(
        filterShape: [Int], strides: (Int, Int) = (1, 1), padding: Padding = .valid,
        activation: @escaping @Sendable (Tensor) -> Tensor = { $0 }, seed: UInt64 = 0, on device: Device? = nil,
        name: String? = nil
    ) {
        self.name = name
        var filterShape = filterShape
        if filterShape.count != 4 || filterShape.contains(where: { $0 < 1 }) {
            let error = TapeError.shape(
                "Conv2D: filterShape \(filterShape) must be [KH, KW, Cin, Cout], each 1 or more")
            filterShape = stop(error, else: [1, 1, 1, 1])  // inside `withErrors`: a layer that does nothing
        }
        let fanIn = Double(filterShape[0] * filterShape[1] * filterShape[2])
        filter = Variable(
            Tensor.randomNormal(shape: filterShape, stddev: 1 / fanIn.squareRoot(), seed: seed, on: device),
            name: "filter")
        bias = Variable(Tensor.zeros(shape: [filterShape[3]], on: device), name: "bias")
        self.strides = strides
        self.padding = padding
        self.activation = activation
    }

    /// `activation(conv2d(x, filter) + bias)` for `x` of shape `[batch, height, width, Cin]`.
    /// - Precondition: `x` of that shape (an NCHW input `[batch, Cin, height, width]` is named and the
    ///   transposition suggested), floating point, on the layer's device.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let f = filter.shape
        let me = "Conv2D" + (name.map { " '\($0)' " } ?? "") + "(\(f[0])×\(f[1]), \(f[2])→\(f[3]))"
        if let inert = Tensor.inertResult(of: me, x) { return inert }  // see `withErrors`
        if x.rank != 4 {
            let hint = x.rank == 3 ? "; one image [height, width, channels] is x.reshaped(to: [1] + x.shape)" : ""
            let message = "\(me): the input must be [batch, height, width, \(f[2])], not \(x.shape)\(hint)"
            return stop(TapeError.shape(message), else: .inert(dtype: x.dtype))
        }
        if x.shape[3] != f[2] {
            let nchw =
                x.shape[1] == f[2]
                ? "; for channels first (NCHW) use x.transposed(permutation: [0, 2, 3, 1])" : ""
            let message =
                "\(me): the input must be [batch, height, width, \(f[2])]: \(x.shape) has \(x.shape[3]) channels "
                + "in its last axis\(nchw)"
            return stop(TapeError.shape(message), else: .inert(dtype: x.dtype))
        }
        if let error = inputError(x, of: me, on: filter) { return stop(error, else: .inert(dtype: x.dtype)) }
        return activation(conv2d(x, filter: filter, strides: strides, padding: padding) + bias)
    }

    public var variables: [Variable] { [filter, bias] }
    public var namedVariables: [String: Variable] { ["filter": filter, "bias": bias] }
}

/// Max pooling over `size` windows (TapeCL's `maxPool2d(_:size:strides:padding:)`); no variables.
public final class MaxPool2D: Layer, Sendable {
    public let size: (Int, Int)
    /// The window's size unless given: non-overlapping windows.
    public let strides: (Int, Int)
    public let padding: Padding

    public init(size: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid) {
        (self.size, self.strides, self.padding) = (size, strides ?? size, padding)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { maxPool2d(x, size: size, strides: strides, padding: padding) }
}

/// Average pooling over `size` windows (TapeCL's `avgPool2d(_:size:strides:padding:)`); no variables.
public final class AvgPool2D: Layer, Sendable {
    public let size: (Int, Int)
    /// The window's size unless given: non-overlapping windows.
    public let strides: (Int, Int)
    public let padding: Padding

    public init(size: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid) {
        (self.size, self.strides, self.padding) = (size, strides ?? size, padding)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { avgPool2d(x, size: size, strides: strides, padding: padding) }
}

/// `[N, ...]` to `[N, product of the rest]`.
public final class Flatten: Layer, Sendable {
    public init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.reshaped(to: [x.shape[0], -1]) }
}

/// Layers applied one after another. Variables are named by position, `0.weight`, `2.filter`, or by
/// the layer's name where it has one: `encoder.weight`.
///
/// ```swift
/// let cnn = Sequential([
///     Conv2D(filterShape: [3, 3, 1, 16], padding: .same, activation: { relu($0) }, seed: 1), MaxPool2D(),
///     Flatten(), Dense(inputSize: 256, outputSize: 10, seed: 2),
/// ])
/// ```
public final class Sequential: Layer {
    public let layers: [any Layer]

    /// - Precondition: the layers' prefixes (each one's ``Layer/name``, else its position) differ.
    public init(_ layers: [any Layer]) {
        self.layers = layers
        let prefixes = layers.enumerated().map { $1.name ?? "\($0)" }
        if let twice = prefixes.first(where: { p in prefixes.filter { $0 == p }.count > 1 }) {
            stop(TapeError.argument("Sequential: two layers are named '\(twice)'; give them different names"), else: ())
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }

    public var variables: [Variable] { layers.flatMap(\.variables) }

    public var namedVariables: [String: Variable] {
        var all: [String: Variable] = [:]
        for (i, layer) in layers.enumerated() {
            for (name, v) in layer.namedVariables { all["\(layer.name ?? "\(i)").\(name)"] = v }
        }
        return all
    }

    public func setTraining(_ training: Bool) { layers.forEach { $0.setTraining(training) } }
}
