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
