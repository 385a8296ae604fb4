import Foundation

/// Which kernel of each family an OpenCL device runs, chosen from the device's own properties.
///
/// Elementwise kernels are one element per work-item and reductions a 256-lane tree in local
/// memory on every device; what differs is the matrix product. A CPU device (PoCL) runs `gemm`:
/// register blocks over B's packed panels and no local memory, which PoCL emulates slowly, its
/// vectors as wide as the device prefers (`CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT`/`_DOUBLE`: 16
/// floats with AVX-512, 8 with AVX2), two of them per row of the 6-row block. A GPU runs
/// `gemm_tiled`: 16 × 16 work-groups sharing tiles of both operands in local memory, each item
/// computing a block of outputs, with the largest tile whose two copies fit the device's local
/// memory. `TAPECL_KERNEL_VARIANTS=gpu` (or `cpu`) forces a choice, so the GPU variants are tested
/// on PoCL on every commit.
@_spi(Runtime) public enum KernelVariants {
    /// What the choice depends on (`CL_DEVICE_TYPE`, `CL_DEVICE_LOCAL_MEM_SIZE`, `CL_DEVICE_MAX_WORK_GROUP_SIZE`,
    /// `CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT` and `_DOUBLE`).
    @_spi(Runtime) public struct DeviceProperties: Equatable, Sendable {
        public var type: String
        public var localMemoryBytes: Int
        public var maxWorkGroupSize: Int
        public var floatVectorWidth: Int
        public var doubleVectorWidth: Int

        public init(
            type: String, localMemoryBytes: Int, maxWorkGroupSize: Int, floatVectorWidth: Int = 8,
            doubleVectorWidth: Int = 4
        ) {
            self.type = type
            self.localMemoryBytes = localMemoryBytes
            self.maxWorkGroupSize = maxWorkGroupSize
            self.floatVectorWidth = floatVectorWidth
            self.doubleVectorWidth = doubleVectorWidth
        }
    }

    @_spi(Runtime) public enum Matmul: Equatable, Sendable, CustomStringConvertible {
        /// `gemm`: 6 × (2·`vector`) register blocks over packed panels of B, `vector` 8 or 16 elements.
        case packed(vector: Int)
        /// `gemm_tiled` with `tile` × `tile` tiles in local memory.
        case tiled(tile: Int)

        public var description: String {
            switch self {
            case .packed(let v): "packed 6×\(2 * v) register blocks"
            case .tiled(let t): "\(t)×\(t) local-memory tiles"
            }
        }

        /// `packed 8`, `tiled 32`: how the tuner stores a choice on disk.
        var key: String {
            switch self {
            case .packed(let v): "packed \(v)"
            case .tiled(let t): "tiled \(t)"
            }
        }

        init?(key: String) {
            let parts = key.split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]) else { return nil }
            switch parts[0] {
            case "packed" where n == 8 || n == 16: self = .packed(vector: n)
            case "tiled" where [16, 32, 64].contains(n): self = .tiled(tile: n)
            default: return nil
            }
        }
    }

    /// Every matmul variant a device can run, for the tuner to time (see `OpenCLTuning.swift`): both
    /// register-block widths, and each local-memory tile that fits, on a device with work-groups of 256.
    @_spi(Runtime) public static func matmulCandidates(_ p: DeviceProperties, elementSize: Int) -> [Matmul] {
        let tiles = [64, 32, 16].filter { 2 * $0 * ($0 + 1) * elementSize <= p.localMemoryBytes }
        let tiled = p.maxWorkGroupSize >= 256 ? tiles.map { Matmul.tiled(tile: $0) } : []
        return [.packed(vector: 8), .packed(vector: 16)] + tiled
    }

    /// The matmul kernel for elements of `elementSize` bytes. Pure, so it is unit-tested without a
    /// device; `forced` is `TAPECL_KERNEL_VARIANTS` ("gpu", "cpu" or nil).
    @_spi(Runtime) public static func matmul(_ p: DeviceProperties, elementSize: Int, forced: String?) -> Matmul {
        if let forced, let variant = Matmul(key: forced) { return variant }  // one variant by name: `packed 16`
        // The preferred vector in elements; 16 only where it fills a 64-byte register (AVX-512 floats).
        let width = elementSize == 8 ? p.doubleVectorWidth : p.floatVectorWidth
        let packed = Matmul.packed(vector: width * elementSize >= 64 && elementSize == 4 ? 16 : 8)
        let wantsTiles = forced == "gpu" || (forced != "cpu" && p.type == "GPU")
        guard wantsTiles, p.maxWorkGroupSize >= 256 else { return packed }
        for tile in [64, 32, 16] where 2 * tile * (tile + 1) * elementSize <= p.localMemoryBytes {
            return .tiled(tile: tile)
        }
        return packed
    }

    /// `TAPECL_KERNEL_VARIANTS`, read once: `gpu` or `cpu` (a family), or one variant by its key
    /// (`packed 8`, `packed 16`, `tiled 16`, `tiled 32`, `tiled 64`), to measure each by hand.
    static let forced: String? = {
        let value = ProcessInfo.processInfo.environment["TAPECL_KERNEL_VARIANTS"]?.lowercased()
        return value == "gpu" || value == "cpu" || value.flatMap(Matmul.init(key:)) != nil ? value : nil
    }()
}
