import Foundation
import Testing
import TapeCL

@Suite("Backend pieces that need no device")
struct BackendTests {
    @Test func binaryKernelVariantIsChosenByLayout() {
        typealias V = OpenCLBackend.BinaryVariant
        #expect(OpenCLBackend.binaryVariant([3, 4], [3, 4], output: [3, 4]) == V.vv)
        #expect(OpenCLBackend.binaryVariant([], [3, 4], output: [3, 4]) == V.sv)
        #expect(OpenCLBackend.binaryVariant([1, 1], [3, 4], output: [3, 4]) == V.sv)
        #expect(OpenCLBackend.binaryVariant([3, 4], [1], output: [3, 4]) == V.vs)
        #expect(OpenCLBackend.binaryVariant([3, 4], [4], output: [3, 4]) == V.g)
        #expect(OpenCLBackend.binaryVariant([3, 1], [1, 4], output: [3, 4]) == V.g)
        #expect(OpenCLBackend.binaryVariant([], [], output: []) == V.vv)
    }

    @Test func allocatorBlockSizesWasteAtMostAnEighth() {
        for bytes in [1, 255, 256, 4096, 4097, 10_000, 1 << 20, (1 << 24) + 3, 123_456_789] {
            let c = DeviceCore.capacity(for: bytes)
            #expect(c >= bytes && (bytes <= 4096 || Double(c - bytes) <= Double(bytes) / 8), "\(bytes) -> \(c)")
        }
    }

    @Test func programCacheRejectsCorruptEntries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-cache-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary: [UInt8] = Array("not really a program".utf8)
        ProgramCache.store(key: "k", binary: binary, in: dir)
        #expect(ProgramCache.load(key: "k", in: dir) == binary)
        #expect(ProgramCache.load(key: "other", in: dir) == nil)
        let file = try #require(try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).first)
        var bytes = try Data(contentsOf: file)
        bytes.removeLast(3)                                       // truncated: the length no longer matches
        try bytes.write(to: file)
        #expect(ProgramCache.load(key: "k", in: dir) == nil)
        try Data("garbage".utf8).write(to: file)                 // no header
        #expect(ProgramCache.load(key: "k", in: dir) == nil)
    }

    @Test func sumsAreBitIdenticalOnEveryDevice() throws {
        // The fixed reduction order: the same bits everywhere, for short, long and chunked rows.
        for n in [1, 255, 256, 257, 65_536, 65_537, 300_001] {
            let x = Tensor.randomNormal(shape: [n], seed: UInt64(n), on: .host)
            let reference = x.sum().scalars(as: Double.self)
            for d in Device.openCL {
                #expect(x.to(d).sum().scalars(as: Double.self) == reference, "n = \(n) on \(d)")
            }
        }
    }

    /// The kernels' own float sin and cos (range reduction by π/2) on arguments far beyond the
    /// op cases' [-2, 2], up to and past the switch to the builtin at 25000.
    @Test(arguments: Device.openCL)
    func sinAndCosAreAccurateOnLargeArguments(device: Device) {
        var rng = SplitMix64(seed: 5)
        let values = (0..<20_000).map { i -> Double in
            let scale = [1.0, 10, 100, 1000, 10_000, 30_000, 1e6][i % 7]
            return (rng.nextUnit() * 2 - 1) * scale
        } + [0, -0.0, .pi / 4, .pi / 2, .pi, 3 * .pi / 2, 24_999.9, 25_000.1, 1e30]
        let x = Tensor(shape: [values.count], scalars: values, on: .host)
        for (name, f) in [("sin", { (t: Tensor) in sin(t) }), ("cos", { cos($0) })] as [(String, (Tensor) -> Tensor)] {
            expectClose(f(x.to(device)).to(.host), f(x), atol: 4e-7, rtol: 0, "\(name) on \(device)")
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
        #expect(try CrossCheck.compare(Op.named("add")!, [a, a], Attributes(), right) == nil)
        let wrong = Tensor([2.0, 4.0, 7.0], on: device)
        let d = try #require(try CrossCheck.compare(Op.named("add")!, [a, a], Attributes(), wrong))
        #expect(d.op == "add" && d.shapes == [[3], [3]] && d.element == 2 && d.absoluteError == 1)
        #expect(d.description.contains("disagrees with the host"))
    }
}
