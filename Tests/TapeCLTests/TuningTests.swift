import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// The matmul variant measured at first use (see `OpenCLTuning.swift`).
@Suite("Kernel variants chosen by measurement")
struct TuningTests {
    /// A product large enough to be timed gives the host's values whichever variant wins.
    @Test(arguments: Device.openCL)
    func aTunedProductMatchesTheHost(device: Device) throws {
        let a = Tensor.randomUniform(shape: [512, 256], lowerBound: -1, upperBound: 1, seed: 1)
        let b = Tensor.randomUniform(shape: [256, 512], lowerBound: -1, upperBound: 1, seed: 2)
        let host = matmul(a, b)
        let dev = matmul(a.to(device), b.to(device))
        let tol = Op.named("matmul")!.tolerance.bounds(.float32).forward
        expectClose(dev.to(.host), host, atol: 256 * tol, rtol: tol, "512×256 · 256×512 on \(device)")
    }

    /// In a fresh cache, `tapecl devices` says the choice waits for a measurement; the first large
    /// product (W3) measures every candidate and keeps the fastest on disk, so the next process says
    /// "measured" with each candidate's time; `TAPECL_TUNE=0` keeps the property-based choice.
    @Test func theFirstLargeProductMeasuresEveryCandidate() throws {
        guard let cl = poclDevice() else { return }
        let tool = packageRoot.appendingPathComponent(".build/debug/tapecl")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-tune-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let env = ["TAPECL_CACHE_DIR": cache.path, "TAPECL_QUIET": "1"]
        func line(_ out: String) -> String {
            let lines = out.split(separator: "\n").map(String.init)
            guard let i = lines.firstIndex(where: { $0.contains(cl.name) && $0.contains(cl.info.deviceName) }) else {
                return ""
            }
            return lines[i + 1]
        }
        let before = try run(tool, ["devices"], environment: env)
        #expect(line(before.out).contains("from the device's properties until measured"), "\(before.out)")
        let bench = try run(tool, ["bench", "W3", "--quick", "--device", cl.name], environment: env)
        #expect(bench.status == 0, "\(bench.err)")
        let after = try run(tool, ["devices"], environment: env)
        #expect(line(after.out).contains("(measured"), "\(after.out)")
        let off = try run(tool, ["devices"], environment: env.merging(["TAPECL_TUNE": "0"]) { $1 })
        #expect(line(off.out).contains("(TAPECL_TUNE=0)"), "\(off.out)")
    }
}
