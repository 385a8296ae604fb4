/// A GPU's limits to compare a benchmark with: FP32 peak and memory bandwidth.
///
/// OpenCL reports compute units and the clock but not how many FP32 lanes a compute unit has,
/// nor the memory's bandwidth, so those come from small tables: lanes per streaming
/// multiprocessor by NVIDIA compute capability (`cl_nv_device_attribute_query`), bandwidth by
/// device name. Unknown devices get no figure, never a guess.
@_spi(Runtime) public enum DevicePeaks {
    /// FP32 lanes per streaming multiprocessor for an NVIDIA compute capability, if known.
    public static func nvidiaLanesPerUnit(major: Int, minor: Int) -> Int? {
        switch (major, minor) {
        case (6, 0), (7, _), (8, 0): 64  // P100, Volta, Turing, A100
        case (6, _), (8, _), (9, 0), (10, _), (12, _): 128  // Pascal consumer, Ampere consumer, Ada, Hopper, Blackwell
        default: nil
        }
    }

    /// Peak FP32 GFLOP/s: compute units × clock × lanes × 2 (a fused multiply-add is two flops).
    /// H200: 132 × 1,980 MHz × 128 × 2 = 66,908 GFLOP/s.
    public static func fp32GFLOPS(computeUnits: Int, clockMHz: Int, lanesPerUnit: Int?) -> Double? {
        guard let lanesPerUnit, computeUnits > 0, clockMHz > 0 else { return nil }
        return Double(computeUnits) * Double(clockMHz) * Double(lanesPerUnit) * 2 / 1000
    }

    /// Memory bandwidth in GB/s for a device name (`CL_DEVICE_NAME`), from the vendors' data sheets.
    public static func bandwidthGBps(deviceName: String) -> Double? {
        let name = deviceName.uppercased()
        let table: [(String, Double)] = [
            ("H200", 4800), ("H100 PCIE", 2000), ("H100", 3350), ("A100-PCIE-40GB", 1555), ("A100-SXM4-40GB", 1555),
            ("A100", 2039), ("L40S", 864), ("L4", 300), ("V100", 900), ("A10G", 600), ("T4", 320),
        ]
        return table.first { name.contains($0.0) }?.1
    }
}
