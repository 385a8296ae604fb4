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
    /// The steps and outputs as words (kind and operands, then each op name's bytes, eight to a
    /// word): equal codes, equal programs. Compared without touching the steps' loops.
    private let codes: [UInt64]
    private let signature: UInt64

    @_spi(Runtime) public init(steps: [Step], outputs: [Int] = []) {
        self.steps = steps
        self.outputs = outputs
        var codes: [UInt64] = []
        codes.reserveCapacity(steps.count * 3 + outputs.count)
        func name(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
                var word: UInt64 = 0
                for (i, byte) in bytes.enumerated() {
                    word |= UInt64(byte) << UInt64(8 * (i & 7))
                    if i & 7 == 7 {
                        codes.append(word)
                        word = 0
                    }
                }
                codes.append(word | 1 << 63)  // the last word of a name (op names are ASCII: the top bit is free)
            }
        }
        for k in steps.indices {  // by index: a step's loop is never copied out
            switch steps[k] {
            case .input(let j, let single): codes.append(UInt64(j) << 2 | (single ? 1 : 0))
            case .unary(let op, _, let a):
                codes.append(UInt64(a) << 2 | 2)
                name(op)
            case .binary(let op, _, let a, let b):
                codes.append(UInt64(a) << 32 | UInt64(b) << 2 | 3)
                name(op)
            }
        }
        for k in outputs { codes.append(UInt64(k) << 2 | 1 << 62) }
        self.codes = codes
        signature = codes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ $1) &* 0x100_0000_01b3 }
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
        x.signature == y.signature && x.codes == y.codes
    }
}
