/// What a fused kernel computes, step by step, for each element: an input's element (or its only
/// element), or an op on earlier steps; the last step is the result.
@_spi(Runtime) public struct FusedProgram: Sendable {
    @_spi(Runtime) public enum Step: Sendable {
        case input(Int, single: Bool)
        case unary(String, UnaryLoop, Int)
        case binary(String, BinaryLoop, Int, Int)
    }
    @_spi(Runtime) public let steps: [Step]
    /// The steps as text, with op names: the kernel's identity for the program caches.
    @_spi(Runtime) public let key: String

    @_spi(Runtime) public init(steps: [Step]) {
        self.steps = steps
        key = steps.map { step in
            switch step {
            case .input(_, let single): "i \(single ? "s" : "v");"
            case .unary(let name, _, let a): "u \(name) \(a);"
            case .binary(let name, _, let a, let b): "b \(name) \(a) \(b);"
            }
        }.joined()
    }
}
