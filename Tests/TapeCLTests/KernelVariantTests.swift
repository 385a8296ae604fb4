import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

@Suite("Kernel variants chosen from the device")
struct KernelVariantTests {
    typealias P = KernelVariants.DeviceProperties

    /// The choice is a pure function of the device's properties (and the forcing variable).
    @Test func matmulVariantFromProperties() {
        let h200 = P(type: "GPU", localMemoryBytes: 48 * 1024, maxWorkGroupSize: 1024)
        let pocl = P(type: "CPU", localMemoryBytes: 4 * 1024 * 1024, maxWorkGroupSize: 4096)  // AVX2: 8 floats
        let avx512 = P(
            type: "CPU", localMemoryBytes: 4 * 1024 * 1024, maxWorkGroupSize: 4096, floatVectorWidth: 16,
            doubleVectorWidth: 8)
        let smallGPU = P(type: "GPU", localMemoryBytes: 16 * 1024, maxWorkGroupSize: 256)
        let tinyGroups = P(type: "GPU", localMemoryBytes: 64 * 1024, maxWorkGroupSize: 128)
        #expect(KernelVariants.matmul(h200, elementSize: 4, forced: nil) == .tiled(tile: 64))  // 2·64·65·4 = 33,280 B
        #expect(KernelVariants.matmul(h200, elementSize: 8, forced: nil) == .tiled(tile: 32))  // 64 would need 66,560
        #expect(KernelVariants.matmul(smallGPU, elementSize: 4, forced: nil) == .tiled(tile: 32))
        #expect(KernelVariants.matmul(smallGPU, elementSize: 8, forced: nil) == .tiled(tile: 16))
        // 16 × 16 items do not fit
        #expect(KernelVariants.matmul(tinyGroups, elementSize: 4, forced: nil) == .packed(vector: 8))
        #expect(KernelVariants.matmul(pocl, elementSize: 4, forced: nil) == .packed(vector: 8))
        #expect(KernelVariants.matmul(avx512, elementSize: 4, forced: nil) == .packed(vector: 16))  // 6×32 blocks
        // 8 doubles fill a zmm register
        #expect(KernelVariants.matmul(avx512, elementSize: 8, forced: nil) == .packed(vector: 8))
        #expect(KernelVariants.matmul(pocl, elementSize: 4, forced: "gpu") == .tiled(tile: 64))
        #expect(KernelVariants.matmul(h200, elementSize: 4, forced: "cpu") == .packed(vector: 8))
        #expect(KernelVariants.matmul(pocl, elementSize: 4, forced: "packed 16") == .packed(vector: 16))
        #expect(KernelVariants.matmul(pocl, elementSize: 8, forced: "tiled 32") == .tiled(tile: 32))
        #expect(KernelVariants.matmulCandidates(pocl, elementSize: 4).count >= 2)
    }

    /// The CPU variant reads op(A) in place, or packs it when A is transposed with k past
    /// `inPlaceTransposedK` (512): each branch, with rows and columns that fill no whole block
    /// (M = 13, N = 37), a batch of A against one B, and both element types, against float64 sums.
    @Test func matmulReadsAInPlaceOrPacksItOnOpenCL() throws {
        guard let cl = firstOpenCLDevice() else { return }
        for dtype in [DType.float32, .float64] {
            for (k, ta, tb) in [(512, true, false), (513, true, true), (600, false, false), (7, false, true)] {
                let (m, n, batch) = (13, 37, 2)
                let a = Tensor.randomNormal(shape: ta ? [batch, k, m] : [batch, m, k], seed: 1, dtype: dtype)
                let b = Tensor.randomNormal(shape: tb ? [n, k] : [k, n], seed: 2, dtype: dtype)
                let (x, y) = (a.scalars(as: Double.self), b.scalars(as: Double.self))
                var expected: [Double] = []
                for l in 0..<batch {
                    for i in 0..<m {
                        for j in 0..<n {
                            expected.append(
                                (0..<k).reduce(0.0) { sum, p in
                                    sum + x[l * m * k + (ta ? p * m + i : i * k + p)] * y[tb ? j * k + p : p * n + j]
                                })
                        }
                    }
                }
                let product = withDevice(cl) { matmul(a.to(cl), b.to(cl), transposeA: ta, transposeB: tb) }
                expectClose(product, expected, shape: [batch, m, n], tol: dtype == .float32 ? 1e-4 : 1e-10)
            }
        }
    }

    /// The limits `tapecl bench` compares a GPU with, from what OpenCL reports and the two tables.
    @Test func devicePeaks() {
        let lanes = DevicePeaks.nvidiaLanesPerUnit(major: 9, minor: 0)
        #expect(lanes == 128)
        let h200 = DevicePeaks.fp32GFLOPS(computeUnits: 132, clockMHz: 1980, lanesPerUnit: lanes)
        #expect(h200 != nil && Swift.abs(h200! - 66_908.16) < 0.01)  // "about 67 TFLOP/s"
        #expect(DevicePeaks.nvidiaLanesPerUnit(major: 8, minor: 0) == 64)  // A100
        #expect(DevicePeaks.nvidiaLanesPerUnit(major: 3, minor: 5) == nil)  // unknown: no figure
        #expect(DevicePeaks.fp32GFLOPS(computeUnits: 132, clockMHz: 1980, lanesPerUnit: nil) == nil)
        #expect(DevicePeaks.bandwidthGBps(deviceName: "NVIDIA H200") == 4800)
        #expect(DevicePeaks.bandwidthGBps(deviceName: "NVIDIA H100 PCIe") == 2000)
        #expect(DevicePeaks.bandwidthGBps(deviceName: "NVIDIA H100 80GB HBM3") == 3350)
        #expect(DevicePeaks.bandwidthGBps(deviceName: "pthread-skylake-avx512-AMD EPYC") == nil)
    }

    /// The GPU variants, forced on PoCL, pass every op of `tapecl check` and the seed example:
    /// GPU code is tested on every commit although no GPU is here.
    @Test func forcedGPUVariantsPassOnPoCL() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let tool = packageRoot.appendingPathComponent(".build/debug/tapecl")
        let env = ["TAPECL_KERNEL_VARIANTS": "gpu", "TAPECL_QUIET": "1"]
        let devices = try run(tool, ["devices"], environment: env)
        #expect(devices.out.contains("matmul by 64×64 local-memory tiles (forced by TAPECL_KERNEL_VARIANTS=gpu)"))
        var matmulShapes: [String] = []
        for seed in 1...3 {  // random shapes: transposes, batches, odd sizes
            let check = try run(tool, ["check", "--device", cl.name, "--json", "--seed", "\(seed)"], environment: env)
            #expect(check.status == 0, "seed \(seed): \(check.out.suffix(400))")
            let report = try json(check.out) as! [String: Any]
            let rows = try #require(report["ops"] as? [[String: Any]])
            #expect(rows.count == Op.all.count && rows.allSatisfy { $0["ok"] as? Bool == true }, "seed \(seed)")
            matmulShapes += rows.filter { $0["op"] as? String == "matmul" }.compactMap { $0["shapes"] as? String }
        }
        #expect(Set(matmulShapes).count == 3, "\(matmulShapes)")
        let grad = try run(
            tool, ["grad", "sum(w @ v)", "--at", "w=[[1,2],[3,4]]", "--at", "v=[[1],[2]]", "--device", cl.name],
            environment: env)
        #expect(grad.out == "f = 16\ndf/dw = [[1, 2], [1, 2]]\ndf/dv = [[4], [6]]\n", "\(grad.err)")
    }
}
