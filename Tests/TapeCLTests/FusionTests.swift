import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// Fusion must be invisible: a fused chain gives the bits that separate ops give, on every device.
@Suite("Elementwise fusion")
struct FusionTests {
    /// Large enough to fuse, and not a multiple of 64 (the kernels' tail launch is covered too).
    static let n = Fusion.minimumCount + 3

    static func bits(_ t: Tensor?) -> [UInt64] { t?.scalars(as: Double.self).map(\.bitPattern) ?? [] }
    /// How many elements differ in their bits (all of them if the counts differ). Counted, so a
    /// failure prints a number: Swift Testing diffs two unequal arrays, which takes minutes here.
    static func differences(_ a: Tensor?, _ b: Tensor?) -> Int {
        let (x, y) = (bits(a), bits(b))
        return x.count != y.count ? max(x.count, y.count) : zip(x, y).count { $0 != $1 }
    }
    static func unfused<R>(_ body: () throws -> R) rethrows -> R {
        try Fusion.$enabled.withValue(false, operation: body)
    }
    /// Fused kernels built before they run (else a first use runs the steps while the kernel builds).
    static func fusedKernels<R>(_ body: () throws -> R) rethrows -> R {
        try Fusion.$kernels.withValue(.now, operation: body)
    }
    /// Uniform in [0.3, 1.2]: inside every op's domain (log, sqrt, pow, div, tan).
    static func input(seed: UInt64, on device: Device) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor((0..<n).map { _ in 0.3 + 0.9 * rng.nextUnit() }, on: device)
    }

    @Test(arguments: devices)
    func everyFusableOpGivesTheUnfusedBits(device: Device) throws {
        let a = Self.input(seed: 1, on: device)
        let b = Self.input(seed: 2, on: device)
        let ops = Op.all.filter { op in
            switch op.forward {
            case .unary, .binary: op.fusable == .always
            default: false
            }
        }
        #expect(ops.count >= 15)
        for op in ops {
            func run() throws -> Tensor {
                let scaled = exp(a) * 0.5  // pending: the op consumes an expression
                let y = op.arity == 1 ? try op.apply([scaled]) : try op.apply([scaled, b])
                let z = op.arity == 1 ? y : try op.apply([a, Tensor(0.7, on: device)])  // a one-element operand
                let pending = y.isPending
                #expect(pending == Fusion.enabled, "\(op.name) on \(device)")
                return y + z
            }
            let fused = try Self.fusedKernels(run)
            let plain = try Self.unfused(run)
            let (plainPending, differing) = (plain.isPending, Self.differences(fused, plain))
            #expect(!plainPending)
            #expect(differing == 0, "\(op.name) on \(device)")
        }
    }

    @Test(arguments: devices, [DType.float32, .float64])
    func longChainsWithSharedValuesGiveTheUnfusedBits(device: Device, dtype: DType) {
        let x = Self.input(seed: 3, on: device).cast(to: dtype)
        func run() -> Tensor {
            var y = x
            // y used three times a link
            for _ in 0..<(3 * Fusion.maximumOps) { y = y * 0.99 + y * y * 0.001 - sqrt(y) * 0.0001 }
            return y
        }
        let fused = Self.fusedKernels(run)
        #expect(fused.dtype == dtype)
        #expect(Self.differences(fused, Self.unfused(run)) == 0, "\(dtype) on \(device)")
    }

    @Test(arguments: devices)
    func aBroadcastElementWaitsAndFills(device: Device) {
        let c = Tensor(2.5, on: device)
        let b = c.broadcast(to: [Self.n])
        let pending = b.isPending
        #expect(pending)
        #expect(b.scalars.count == Self.n && b.scalars.allSatisfy { $0 == 2.5 })
        let x = Self.input(seed: 6, on: device)
        #expect(
            Self.differences(x * c.broadcast(to: [Self.n]) + 1, Self.unfused { x * c.broadcast(to: [Self.n]) + 1 }) == 0
        )
    }

    @Test(arguments: devices)
    func gradientsThroughFusedChainsGiveTheUnfusedBits(device: Device) throws {
        let x = Self.input(seed: 4, on: device)
        func run() throws -> [Tensor?] {
            let tape = GradientTape(persistent: true)
            tape.watch(x)
            let (w4, chain) = tape.record { () -> (Tensor, Tensor) in
                var y = x
                for _ in 0..<10 { y = y + sin(y) * 0.001 }
                return ((sin(x) * x + exp(-x)).sum(), y.sum())
            }
            return [try tape.gradient(of: w4, wrt: x), try tape.gradient(of: chain, wrt: x)]
        }
        let fused = try Self.fusedKernels(run)
        let plain = try Self.unfused(run)
        #expect(fused.allSatisfy { $0.map { !$0.isPending } ?? false }, "gradient returns computed tensors")
        for k in 0..<2 { #expect(Self.differences(fused[k], plain[k]) == 0, "gradient \(k) on \(device)") }
    }

    @Test(arguments: devices)
    func aPendingResultHoldsNoMemoryUntilRead(device: Device) {
        let own = device.isolated()  // its own allocator statistics
        defer { own.release() }
        withDevice(own) {
            let (x, two, one) = (Self.input(seed: 5, on: own), Tensor(2.0, on: own), Tensor(1.0, on: own))
            let before = own.memory.liveBytes
            let y = exp(-x) * two + one
            let pending = y.isPending
            #expect(pending)
            #expect(own.memory.liveBytes == before)
            _ = y.scalars
            let stillPending = y.isPending
            #expect(!stillPending)
            #expect(own.memory.liveBytes == before + y.byteCount)
        }
    }

    // MARK: Small results (a device whose launches cost more than a small op: OpenCL)

    /// W1's chain and its gradient, with every small op of the table that fuses, on `shape`.
    static func smallChain(_ x: Tensor, links: Int) throws -> [Tensor?] {
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { () -> Tensor in
            var y = x
            for k in 0..<links {
                y = y + sin(y) * 0.001
                if k % 7 == 3 { y = cos(y) * exp(-y) * 0.1 + sqrt(y * y + 1) - tanh(y) / 3 }
            }
            return y
        }
        let g = try tape.gradient(of: y.sum(), wrt: x)
        return [y, g]
    }

    @Test(
        arguments: devices, [FusedBuild.now, .never, .whenRepeated])
    func smallChainsAndTheirGradientsGiveTheUnfusedBits(device: Device, kernels: FusedBuild) throws {
        for shape in [[], [1], [37]] as [[Int]] {
            var rng = SplitMix64(seed: 9)
            let x = Tensor(
                shape: shape, scalars: (0..<Shape.count(shape)).map { _ in 0.2 + rng.nextUnit() }, on: device)
            let fused = try Fusion.$kernels.withValue(kernels) { try Self.smallChain(x, links: 60) }
            let plain = try Self.unfused { try Self.smallChain(x, links: 60) }
            for k in 0..<2 {
                #expect(Self.differences(fused[k], plain[k]) == 0, "\(k == 0 ? "y" : "dy/dx") \(shape) on \(device)")
            }
        }
    }

    /// A large chain's kernel is built at its first use: its steps one launch each would cost a pass
    /// over memory and a temporary each (W5's peak on PoCL grew by 80 MiB when they did).
    @Test(arguments: devices)
    func aLargeChainRunsAsOneKernelAtItsFirstUse(device: Device) {
        let own = device.isolated()
        defer { own.release() }
        let x = Self.input(seed: 7, on: own)
        let half = Tensor(0.5, on: own)
        let before = own.core.launches
        let y = exp(x) * half + x * x / 3
        y.evaluate()
        #expect(own.core.launches - before == 1, "\(device)")
    }

    @Test(arguments: devices)
    func smallResultsWaitOnlyWhereLaunchesCostMore(device: Device) {
        let y = sin(Tensor([0.5, 0.25], on: device)) * 2 + 1
        let pending = y.isPending
        #expect(pending == device.core.fusesSmallResults, "\(device)")
        #expect(Self.differences(y, Self.unfused { sin(Tensor([0.5, 0.25], on: device)) * 2 + 1 }) == 0)
    }

    /// W1 on OpenCL: a scalar chain and its gradient run in a tenth of the launches, and the values
    /// the tape keeps are written by the kernels that pass them (no launch of their own).
    @Test(arguments: devices.filter { $0.core.fusesSmallResults })
    func aScalarChainRunsInFewLaunches(device: Device) throws {
        let own = device.isolated()
        defer { own.release() }
        let x = Tensor(0.5, on: own)
        _ = try Self.fusedKernels { try Self.smallChain(x, links: 100) }  // builds the kernels
        let start = own.core.launches
        let fused = try Self.fusedKernels { try Self.smallChain(x, links: 100) }
        let fusedLaunches = own.core.launches - start
        let plain = try Self.unfused { try Self.smallChain(x, links: 100) }
        let plainLaunches = own.core.launches - start - fusedLaunches
        #expect(Self.differences(fused[1], plain[1]) == 0)
        #expect(fusedLaunches * 10 <= plainLaunches, "\(fusedLaunches) fused launches, \(plainLaunches) unfused")
    }

    /// W1's chain on OpenCL: a cut chain's kernel writes the values it reads that are read again
    /// (the backward's cotangent), so no pending value is computed in two kernels: 300 links (900
    /// recorded ops) and their gradient take at most one launch per 12 recorded ops (69 here; 104
    /// when the cotangent was computed twice).
    @Test(arguments: devices.filter { $0.core.fusesSmallResults })
    func aCutChainComputesEachValueOnce(device: Device) throws {
        let own = device.isolated()
        defer { own.release() }
        func run() throws -> Int {
            let start = own.core.launches
            let x = Tensor(0.5, on: own)
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { (0..<300).reduce(x) { y, _ in y + sin(y) * 0.001 } }
            let g = try tape.gradient(of: y, wrt: x)!
            #expect(abs(g.scalar - 1.2) < 0.1)
            return own.core.launches - start
        }
        _ = try Self.fusedKernels(run)  // builds the kernels
        let launches = try Self.fusedKernels(run)
        #expect(launches * 12 <= 900, "\(launches) launches")
    }

    /// Chains that grow from one pending value on many threads at once share its node list's
    /// storage: each thread's results are those of the same chains built on one thread.
    @Test(arguments: devices.filter { $0.core.fusesSmallResults })
    func chainsGrownOnManyThreadsFromOnePendingValue(device: Device) async throws {
        let root = withDevice(device) { (0..<5).reduce(Tensor(0.5)) { y, _ in y + sin(y) * 0.01 } }
        #expect(root.isPending)
        func branch(_ k: Int) -> [Float] {
            let y = (0..<20).reduce(root) { y, j in y * 0.99 + cos(y + Float(k)) * 0.001 * Float(j) }
            return [y.scalar]
        }
        let alone = (0..<8).map(branch)
        let together = await withTaskGroup(of: (Int, [Float]).self) { group in
            for k in 0..<8 { group.addTask { (k, branch(k)) } }
            return await group.reduce(into: [[Float]](repeating: [], count: 8)) { $0[$1.0] = $1.1 }
        }
        #expect(together == alone)
    }
}
