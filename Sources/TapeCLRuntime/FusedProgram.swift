/// What a fused kernel computes, step by step, for each element: an input's element (or its only
/// element), or an op on earlier steps; the last step is the result. `outputs` are further steps
/// the kernel writes too (values a tape keeps), each to one of the launch's ``Launch/extraOutputs``.
///
/// Two programs are equal when their steps and outputs are (op names, operands, one-element
/// inputs): the kernel caches look a program up by that, through a 64-bit FNV-1a signature computed
/// once (W1 looks one up every few ops; a key string built each time cost more than the lookup).
@_spi(Runtime) public struct FusedProgram: Sendable, Hashable {
    @_spi(Runtime) public enum Step: Sendable {
        case input(Int, single: Bool)
        case unary(String, UnaryLoop, Int)
        case binary(String, BinaryLoop, Int, Int)
    }
    @_spi(Runtime) public let steps: [Step]
    @_spi(Runtime) public let outputs: [Int]
    private let signature: UInt64

    @_spi(Runtime) public init(steps: [Step], outputs: [Int] = []) {
        self.steps = steps
        self.outputs = outputs
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) { h = (h ^ v) &* 0x100_0000_01b3 }
        for step in steps {
            switch step {
            case .input(let j, let single): mix(UInt64(j) << 2 | (single ? 1 : 0))
            case .unary(let name, _, let a):
                for byte in name.utf8 { mix(UInt64(byte)) }
                mix(UInt64(a) << 2 | 2)
            case .binary(let name, _, let a, let b):
                for byte in name.utf8 { mix(UInt64(byte)) }
                mix(UInt64(a) << 16 | UInt64(b) << 2 | 3)
            }
        }
        for k in outputs { mix(UInt64(k) << 2) }
        signature = h
    }

    /// The steps as text, with op names: the program's identity in the disk cache and in `tapecl devices`.
    @_spi(Runtime) public var key: String {
        steps.map { step in
            switch step {
            case .input(_, let single): "i \(single ? "s" : "v");"
            case .unary(let name, _, let a): "u \(name) \(a);"
            case .binary(let name, _, let a, let b): "b \(name) \(a) \(b);"
            }
        }.joined() + outputs.map { "o \($0);" }.joined()
    }

    @_spi(Runtime) public func hash(into hasher: inout Hasher) { hasher.combine(signature) }

    @_spi(Runtime) public static func == (x: FusedProgram, y: FusedProgram) -> Bool {
        guard x.signature == y.signature, x.steps.count == y.steps.count, x.outputs == y.outputs else { return false }
        return zip(x.steps, y.steps).allSatisfy { pair in
            switch pair {
            case (.input(let i, let s), .input(let j, let t)): i == j && s == t
            case (.unary(let m, _, let a), .unary(let n, _, let b)): m == n && a == b
            case (.binary(let m, _, let a, let b), .binary(let n, _, let c, let d)): m == n && a == c && b == d
            default: false
            }
        }
    }
}
