import Foundation

/// Which kernel of each family an OpenCL device runs, chosen from the device's own properties.
///
/// Elementwise kernels are one element per work-item and reductions a 256-lane tree in local
/// memory on every device; what differs is the matrix product. A CPU device (PoCL) runs
/// `gemm_packed`: register-blocked panels and no local memory, which PoCL emulates slowly. A GPU
/// runs `gemm_tiled`: 16 × 16 work-groups sharing tiles of both operands in local memory, each item
/// computing a block of outputs, with the largest tile whose two copies fit the device's local
/// memory. `TAPECL_KERNEL_VARIANTS=gpu` (or `cpu`) forces a choice, so the GPU variants are tested
/// on PoCL on every commit.
@_spi(Runtime) public enum KernelVariants {
    /// What the choice depends on (`CL_DEVICE_TYPE`, `CL_DEVICE_LOCAL_MEM_SIZE`, `CL_DEVICE_MAX_WORK_GROUP_SIZE`).
    @_spi(Runtime) public struct DeviceProperties: Equatable, Sendable {
        public var type: String
        public var localMemoryBytes: Int
        public var maxWorkGroupSize: Int

        public init(type: String, localMemoryBytes: Int, maxWorkGroupSize: Int) {
            self.type = type
            self.localMemoryBytes = localMemoryBytes
            self.maxWorkGroupSize = maxWorkGroupSize
        }
    }

    @_spi(Runtime) public enum Matmul: Equatable, Sendable, CustomStringConvertible {
        /// `gemm_packed`: 6 × 16 register blocks over packed panels.
        case packed
        /// `gemm_tiled` with `tile` × `tile` tiles in local memory.
        case tiled(tile: Int)

        public var description: String {
            switch self {
            case .packed: "packed 6×16 register blocks"
            case .tiled(let t): "\(t)×\(t) local-memory tiles"
            }
        }
    }

    /// The matmul kernel for elements of `elementSize` bytes. Pure, so it is unit-tested without a
    /// device; `forced` is `TAPECL_KERNEL_VARIANTS` ("gpu", "cpu" or nil).
    @_spi(Runtime) public static func matmul(_ p: DeviceProperties, elementSize: Int, forced: String?) -> Matmul {
        let wantsTiles = forced == "gpu" || (forced != "cpu" && p.type == "GPU")
        guard wantsTiles, p.maxWorkGroupSize >= 256 else { return .packed }
        for tile in [64, 32, 16] where 2 * tile * (tile + 1) * elementSize <= p.localMemoryBytes {
            return .tiled(tile: tile)
        }
        return .packed
    }

    /// `TAPECL_KERNEL_VARIANTS`, read once.
    static let forced: String? = {
        let value = ProcessInfo.processInfo.environment["TAPECL_KERNEL_VARIANTS"]?.lowercased()
        return value == "gpu" || value == "cpu" ? value : nil
    }()
}
