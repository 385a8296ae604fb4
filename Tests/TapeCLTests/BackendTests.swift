import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

@Suite("Backend pieces that need no device")
struct BackendTests {
    @Test func binaryKernelVariantIsChosenByLayout() {
        typealias V = OpenCLBackend.BinaryVariant
        #expect(OpenCLBackend.binaryVariant([3, 4], [3, 4], output: [3, 4]) == V.vv)
        #expect(OpenCLBackend.binaryVariant([], [3, 4], output: [3, 4]) == V.sv)
        #expect(OpenCLBackend.binaryVariant([1, 1], [3, 4], output: [3, 4]) == V.sv)
        #expect(OpenCLBackend.binaryVariant([3, 4], [1], output: [3, 4]) == V.vs)
        #expect(OpenCLBackend.binaryVariant([3, 4], [4], output: [3, 4]) == V.vr)
        #expect(OpenCLBackend.binaryVariant([1, 4], [3, 4], output: [3, 4]) == V.rv)
        #expect(OpenCLBackend.binaryVariant([2, 3, 4], [3, 4], output: [2, 3, 4]) == V.vr)
        #expect(OpenCLBackend.binaryVariant([3, 1], [3, 4], output: [3, 4]) == V.g)
        #expect(OpenCLBackend.binaryVariant([3, 1], [1, 4], output: [3, 4]) == V.g)
        #expect(OpenCLBackend.binaryVariant([], [], output: []) == V.vv)
    }

    /// The host loops' own sin, cos and exp (Cephes in double precision, branch-free) against
    /// libm: within 2 ulp of a double (within 1e-30 next to a zero of sin or cos, where π/4 in three
    /// parts limits the reduction), so float32 results are libm's rounded; libm itself
    /// beyond the reduction's range; NaN, ±∞, ±0, overflow and subnormal results as libm gives them.
    @Test func hostSinCosExpAgreeWithLibm() {
        var rng = SplitMix64(seed: 7)
        var xs: [Double] = [
            0, -0.0, .nan, .infinity, -.infinity, .pi, -.pi / 2, 1e-300, Double.leastNonzeroMagnitude, 708, -708, 709.7,
            710, -745, -746,
            1048575.9, 1048576, 1048577, 3e9, -1e22, .greatestFiniteMagnitude,
        ]
        for scale in [1e-6, 1.0, 4.0, 100.0, 1e4, 1e6] {
            xs += (0..<20_000).map { _ in (rng.nextUnit() * 2 - 1) * scale }
        }
        xs += (0..<20_000).map { _ in rng.nextUnit() * 1400 - 700 }
        for (name, loop, reference) in [
            ("sin", HostMath.sin, Foundation.sin), ("cos", HostMath.cos, Foundation.cos),
            ("exp", HostMath.exp, Foundation.exp),
        ] as [(String, UnaryLoop, @Sendable (Double) -> Double)] {
            var out = [Double](repeating: 0, count: xs.count)
            xs.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { loop.double(x.baseAddress!, $0.baseAddress!, xs.count) }
            }
            var worst = (ulps: 0.0, x: 0.0)
            for (x, y) in zip(xs, out) {
                let r = reference(x)
                if r.isNaN || r.isInfinite || r == 0 || !r.isNormal {
                    #expect(
                        y.bitPattern == r.bitPattern || (r.isNaN && y.isNaN) || Swift.abs(y - r) <= r.ulp,
                        "\(name)(\(x)) = \(y), libm \(r)")
                    continue
                }
                if name != "exp" && Swift.abs(r) < 1e-12 {
                    #expect(Swift.abs(y - r) <= 1e-30, "\(name)(\(x)) = \(y), libm \(r)")
                    continue
                }
                let ulps = Swift.abs(y - r) / r.ulp
                if ulps > worst.ulps { worst = (ulps, x) }
                #expect(Float(y) == Float(r) || ulps <= 2, "\(name)(\(x)) = \(y), libm \(r)")
            }
            #expect(worst.ulps <= 2, "\(name): worst \(worst.ulps) ulp at \(worst.x)")
        }
    }

    /// Every elementwise op's float32 host loop, run on float32 memory, gives its float64 loop's
    /// values rounded once, bit for bit: values of every exponent, halfway cases, subnormals,
    /// NaN, ±0, ±∞ (the float32 loops are what float32 tensors run; the float64 loops are checked
    /// against libm and float64 references elsewhere). The streaming copy of large outputs copies
    /// bits exactly from an unaligned start and for an odd length.
    @Test func hostFloatLoopsAreTheFloat64LoopsRounded() {
        var rng = SplitMix64(seed: 11)
        var a: [Float] = [
            0, -0.0, .nan, .infinity, -.infinity, 1, -1, 0.5, 2, 1 + 0x1p-23, 0x1p-149, -0x1p-126,
            .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, 3e9, 88.7, -103.9, 1048577, .pi,
        ]
        a += (0..<2000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }  // every exponent
        a += (0..<2000).map { _ in Float((rng.nextUnit() * 2 - 1) * 10) }
        let b = a.map { _ in Float((rng.nextUnit() * 2 - 1) * 4) }
        let (da, db) = (a.map(Double.init), b.map(Double.init))
        for op in Op.all {
            var (wide, narrow) = ([Double](repeating: 0, count: a.count), [Float](repeating: 0, count: a.count))
            switch op.forward {
            case .unary(_, let f):
                f.double(da, &wide, a.count)
                f.float(a, &narrow, a.count)
            case .binary(_, let f):
                f.double(da, db, &wide, a.count)
                f.float(a, b, &narrow, a.count)
            default: continue
            }
            let wrong = zip(wide, narrow).filter { Float($0).bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }
            #expect(
                wrong.isEmpty,
                "\(op.name): \(wrong.count) float32 results differ, first \(wrong.first.map { "\($0)" } ?? "")")
        }
        var streamed = [Float](repeating: 1, count: a.count + 1)
        streamed.withUnsafeMutableBytes { HostMath.stream(a, $0.baseAddress! + 4, bytes: a.count * 4) }
        #expect(streamed[0] == 1 && zip(a, streamed.dropFirst()).allSatisfy { $0.bitPattern == $1.bitPattern })
    }

    /// The host's elementwise loops run in blocks of 1024 split over the cores: operands that
    /// repeat by rows (rows longer and shorter than a block, cut by a worker's boundary) or broadcast
    /// in general give the plain nested loop's values; so do outputs beyond `streamingBytes`, stored
    /// around the cache (a row operand, and a fused chain with one element).
    @Test(arguments: [
        ([50, 1500], [1500]), ([1500], [50, 1500]), ([30000, 3], [3]), ([7, 1, 5], [4, 1]), ([70000], []),
        ([2, 4_194_305], [4_194_305]), ([8_388_609], []),
    ])
    func hostBroadcastingInBlocks(_ shapes: ([Int], [Int])) {
        let (sa, sb) = shapes
        let a = Tensor.randomNormal(shape: sa, seed: 1, on: .host)
        let b = Tensor.randomNormal(shape: sb, seed: 2, on: .host)
        let out = (a - b).scalars
        let av = a.scalars
        let bv = b.scalars
        let shape = Shape.broadcast(sa, sb)!
        let (stA, stB) = (Shape.broadcastStrides(sa, to: shape), Shape.broadcastStrides(sb, to: shape))
        #expect(out.count == Shape.count(shape))
        var mismatches = 0
        for i in 0..<out.count {
            var (rest, ia, ib) = (i, 0, 0)
            for d in stride(from: shape.count - 1, through: 0, by: -1) {
                let k = rest % shape[d]
                rest /= shape[d]
                ia += k * stA[d]
                ib += k * stB[d]
            }
            if out[i] != av[ia] - bv[ib] { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    /// Integer elementwise ops (on the host block by block through the float64 loop) with a row,
    /// a column and a one-element operand: int32 and int8 against Swift's arithmetic, on every
    /// device, small and past one block and one worker (300 × 331, blocks not aligned to rows).
    @Test func integerElementwiseOpsBroadcast() {
        let (rows, cols) = (300, 331)
        let big: [Int32] = (0..<rows * cols).map { Int32($0 * 7 % 11) - 5 }
        let row: [Int32] = (0..<cols).map { Int32($0 % 9) - 2 }
        let column: [Int32] = (0..<rows).map { Int32($0 % 5) - 2 }
        let a: [Int32] = (0..<12).map { Int32($0 * 7 % 11) - 5 }
        let b: [Int32] = [3, -2, 0, 9]
        for device in [Device.host] + Device.openCL {
            for dtype in [DType.int32, .int8] {
                let t = { (shape: [Int], values: [Int32]) in
                    Tensor(shape: shape, scalars: values, dtype: dtype, on: device)
                }
                let (x, r, c) = (t([rows, cols], big), t([cols], row), t([rows, 1], column))
                // Counted, not compared as arrays: a failing comparison of 99,300 elements would diff them.
                let wrong = { (y: Tensor, want: (Int) -> Int32) in
                    zip(0..., y.scalars(as: Int.self)).count { $1 != Int(want($0)) }
                }
                #expect(wrong(x * x - r) { big[$0] * big[$0] - row[$0 % cols] } == 0, "\(dtype) on \(device)")
                #expect(wrong(c - x) { column[$0 / cols] - big[$0] } == 0, "\(dtype) on \(device)")
                #expect(wrong(abs(x)) { Swift.abs(big[$0]) } == 0, "\(dtype) on \(device)")
                let ta = Tensor(shape: [3, 4], scalars: a, dtype: dtype, on: device)
                let tb = Tensor(shape: [4], scalars: b, dtype: dtype, on: device)
                #expect(
                    (ta - tb).scalars(as: Int.self) == a.indices.map { Int(a[$0] - b[$0 % 4]) }, "\(dtype) on \(device)"
                )
                #expect(
                    (tb * ta).scalars(as: Int.self) == a.indices.map { Int(a[$0] * b[$0 % 4]) }, "\(dtype) on \(device)"
                )
                #expect(
                    (-ta + Tensor(shape: [], scalars: [Int32(3)], dtype: dtype, on: device)).scalars(as: Int.self)
                        == a.map { Int(3 - $0) }, "\(dtype) on \(device)")
            }
        }
    }

    @Test func allocatorBlockSizesWasteAtMostAnEighth() {
        for bytes in [1, 255, 256, 4096, 4097, 10_000, 1 << 20, (1 << 24) + 3, 123_456_789] {
            let c = DeviceCore.capacity(for: bytes)
            #expect(c >= bytes && (bytes <= 4096 || Double(c - bytes) <= Double(bytes) / 8), "\(bytes) -> \(c)")
        }
    }

    @Test func programCacheRejectsCorruptEntries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tapecl-cache-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary: [UInt8] = Array("not really a program".utf8)
        try ProgramCache.store(key: "k", binary: binary, in: dir)
        #expect(ProgramCache.load(key: "k", in: dir) == binary)
        #expect(ProgramCache.load(key: "other", in: dir) == nil)
        let file = try #require(
            try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).first)
        var bytes = try Data(contentsOf: file)
        bytes.removeLast(3)  // truncated: the length no longer matches
        try bytes.write(to: file)
        #expect(ProgramCache.load(key: "k", in: dir) == nil)
        try Data("garbage".utf8).write(to: file)  // no header
        #expect(ProgramCache.load(key: "k", in: dir) == nil)
    }

    @Test func sumsAreBitIdenticalOnEveryDevice() throws {
        // The fixed reduction order: the same bits everywhere, for short, long and chunked rows.
        for n in [1, 255, 256, 257, 65_536, 65_537, 300_001] {
            let x = Tensor.randomNormal(shape: [n], seed: UInt64(n), on: .host)
            for d in Device.openCL {
                #expect(
                    x.to(d).sum().scalars(as: Double.self) == x.sum().scalars(as: Double.self), "sum, n = \(n) on \(d)")
                #expect(
                    x.to(d).max().scalars(as: Double.self) == x.max().scalars(as: Double.self), "max, n = \(n) on \(d)")
            }
        }
        // A NaN anywhere in a long row wins the max, on every device (here in a vector of lanes, third chunk).
        var values = [Float](repeating: 1, count: 200_003)
        values[131_077] = .nan
        let withNaN = Tensor(values, on: .host)
        #expect(withNaN.max().scalar.isNaN)
        for d in Device.openCL { #expect(withNaN.to(d).max().scalar.isNaN, "max with NaN on \(d)") }
    }

    @Test func hostPoolRunsEveryPartOnceFromManyThreadsAndNested() {
        // The host loops' pool: callers on four threads at once, each with a nested parallelFor;
        // every index must be visited exactly once per call, whoever runs its part.
        let n = 1 << 16
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let counts = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
            counts.initialize(repeating: 0, count: n)
            defer { counts.deallocate() }
            for round in 0..<40 {
                if round % 2 == 0 {
                    parallelFor(n, grain: 1 << 10) { r in for i in r { counts[i] &+= 1 } }
                } else {
                    parallelFor(8, grain: 1) { outer in  // parts that split again
                        for part in outer {
                            parallelFor(n / 8, grain: 1 << 9) { r in for i in r { counts[part * n / 8 + i] &+= 1 } }
                        }
                    }
                }
            }
            #expect((0..<n).allSatisfy { counts[$0] == 40 }, "caller \(caller)")
        }
    }

    @Test func columnReductionsKeepTheOrderOfOneRow() throws {
        // The host reduces up to 16 columns side by side; each column must still add (and max) in
        // the order of a single row, so summing axis 0 equals summing the transposed rows bit for bit.
        for shape in [[300, 37], [256, 512], [5, 16], [1000, 1]] {
            var values = Tensor.randomNormal(shape: shape, seed: UInt64(shape[0]), on: .host).scalars
            values[values.count / 2] = .nan  // one column's max is NaN
            let x = Tensor(shape: shape, scalars: values, on: .host)
            let rows = x.transposed()
            for d in Device.all {
                let (xd, rd) = (x.to(d), rows.to(d))
                #expect(
                    xd.sum(axes: [0]).scalars(as: Double.self).map(\.bitPattern)
                        == rd.sum(axes: [1]).scalars(as: Double.self).map(\.bitPattern), "sum \(shape) on \(d)")
                let (m, r) = (xd.max(axes: [0]).scalars, rd.max(axes: [1]).scalars)
                #expect(
                    zip(m, r).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                    "max \(shape) on \(d)")
                #expect(m.contains { $0.isNaN }, "max \(shape) keeps the NaN on \(d)")
            }
        }
    }

    /// The kernels' own float sin and cos (range reduction by π/2) on arguments far beyond the
    /// op cases' [-2, 2], up to and past the switch to the builtin at 25000.
    @Test(arguments: Device.openCL)
    func sinAndCosAreAccurateOnLargeArguments(device: Device) {
        var rng = SplitMix64(seed: 5)
        let values =
            (0..<20_000).map { i -> Double in
                let scale = [1.0, 10, 100, 1000, 10_000, 30_000, 1e6][i % 7]
                return (rng.nextUnit() * 2 - 1) * scale
            } + [0, -0.0, .pi / 4, .pi / 2, .pi, 3 * .pi / 2, 24_999.9, 25_000.1, 1e30]
        // Large tensors take two passes (vectorised, then the fixup); small ones one.
        for part in [values[...], values.suffix(200)] {
            let x = Tensor(shape: [part.count], scalars: Array(part), on: .host)
            for (name, f) in [("sin", { (t: Tensor) in sin(t) }), ("cos", { cos($0) })]
                as [(String, (Tensor) -> Tensor)]
            {
                expectClose(
                    f(x.to(device)).to(.host), f(x), atol: 4e-7, rtol: 0, "\(name) of \(part.count) on \(device)")
            }
        }
    }

    /// A kernel that fails to build would run on the host with a warning and every other test
    /// would still pass: this one fails instead.
    @Test(arguments: Device.openCL)
    func everyKernelProgramBuilds(device: Device) {
        let failures = device.core.backend.buildAll().filter { $0.error != nil }
        #expect(failures.isEmpty, "\(failures.map { "\($0.program): \($0.error!)" }.joined(separator: "\n"))")
    }

    @Test(arguments: Device.openCL)
    func crossCheckReportsADisagreement(device: Device) throws {
        let a = Tensor([1.0, 2.0, 3.0], on: device)
        let right = a + a
        #expect(try CrossCheck.compare(Op.named("add")!, [a, a], .none, right) == nil)
        let wrong = Tensor([2.0, 4.0, 7.0], on: device)
        let d = try #require(try CrossCheck.compare(Op.named("add")!, [a, a], .none, wrong))
        #expect(d.op == "add" && d.shapes == [[3], [3]] && d.element == 2 && d.absoluteError == 1)
        #expect(d.description.contains("disagrees with the host"))
    }
}
