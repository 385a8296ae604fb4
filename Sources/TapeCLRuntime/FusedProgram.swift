/// What a fused kernel computes, step by step, for each element: an input's element (or its only
/// element), or an op on earlier steps; the last step is the result. `outputs` are further steps
/// the kernel writes too (values a tape keeps), each to one of the launch's ``Launch/extraOutputs``.
@_spi(Runtime) public struct FusedProgram: Sendable {
    @_spi(Runtime) public enum Step: Sendable {
        case input(Int, single: Bool)
        case unary(String, UnaryLoop, Int)
        case binary(String, BinaryLoop, Int, Int)
    }
    @_spi(Runtime) public let steps: [Step]
    @_spi(Runtime) public let outputs: [Int]
    /// The steps as text, with op names: the kernel's identity for the program caches.
    @_spi(Runtime) public let key: String

    @_spi(Runtime) public init(steps: [Step], outputs: [Int] = []) {
        self.steps = steps
        self.outputs = outputs
        key =
            steps.map { step in
                switch step {
                case .input(_, let single): "i \(single ? "s" : "v");"
                case .unary(let name, _, let a): "u \(name) \(a);"
                case .binary(let name, _, let a, let b): "b \(name) \(a) \(b);"
                }
            }.joined() + outputs.map { "o \($0);" }.joined()
    }
}
