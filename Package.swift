// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "TapeCL",
    products: [
        // MARK: - Public API
        // `import TapeCL`: tensors, devices, tapes (the runtime is re-exported).
        .library(name: "TapeCL", targets: ["TapeCL"]),
        // `import TapeCLNN`: layers, losses, optimizers, written against TapeCL's public API only.
        .library(name: "TapeCLNN", targets: ["TapeCLNN"]),
        // `import TapeCLData`: the data sets shipped with TapeCL (`Digits.load(split:seed:)`).
        .library(name: "TapeCLData", targets: ["TapeCLData"]),
        // `import TapeCLDistributed`: data-parallel training over MPI (needs an MPI library: libopenmpi-dev).
        .library(name: "TapeCLDistributed", targets: ["TapeCLDistributed"]),
        .executable(name: "tapecl", targets: ["tapecl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        // `make docs`: the DocC catalogs of the public modules.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: - The layers, bottom up (each may use only the ones above it in this list)
        // Devices, buffers, the caching allocator, kernel programs and their cache, launching, host loops and
        // BLAS. Knows buffers, shapes, dtypes and kernels; never a Tensor or a tape.
        .target(
            name: "TapeCLRuntime",
            dependencies: ["COpenCL", "COpenBLAS", "CHostMath", "TapeCLKernels"]
        ),
        // Tensor, Variable, the op table, GradientTape, ForwardAccumulator, custom gradients, Jacobians.
        .target(
            name: "TapeCL",
            dependencies: ["TapeCLRuntime", .product(name: "RealModule", package: "swift-numerics")]
        ),
        // Layers, losses, optimizers: TapeCL's public API only.
        .target(name: "TapeCLNN", dependencies: ["TapeCL"]),
        // The data sets shipped with TapeCL (the digits), embedded as string literals by the plugin.
        .target(name: "TapeCLData", dependencies: ["TapeCL"], plugins: ["EmbedKernelsPlugin"]),
        // Data-parallel training over MPI (Open MPI or MPICH); only this target and those above it need MPI.
        .target(name: "TapeCLDistributed", dependencies: ["TapeCL", "CMPI"]),
        // Not products: the op-check runner (`tapecl check`, the tests) and the benchmark workloads.
        .target(name: "TapeCLCheck", dependencies: ["TapeCL"]),
        .target(name: "TapeCLBenchmarks", dependencies: ["TapeCL", "TapeCLNN"]),
        // Example models (the attention model of Examples/Attention), shared with the tests.
        .target(name: "TapeCLExamples", dependencies: ["TapeCL", "TapeCLNN"]),
        .executableTarget(
            name: "tapecl-attention", dependencies: ["TapeCL", "TapeCLExamples"], path: "Examples/Attention"),
        .executableTarget(
            name: "tapecl",
            dependencies: [
                "TapeCL", "TapeCLNN", "TapeCLData", "TapeCLDistributed", "TapeCLCheck", "TapeCLBenchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - C APIs and kernels
        // The OpenCL C API (Debian: ocl-icd-opencl-dev).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        // MPI's C API through a shim of static inline functions (Debian: libopenmpi-dev; pkg-config's `mpi`
        // is Open MPI's or MPICH's, whichever is the system's default).
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "mpi",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // OpenBLAS through dlopen at first use (Debian: libopenblas0), so TapeCL can pick its CPU kernels first.
        .target(name: "COpenBLAS", linkerSettings: [.linkedLibrary("dl")]),
        // The host's sin, cos and exp loops and its streaming copy, in C for one reason: compiled for AVX2 and for
        // baseline x86-64, the CPU choosing at load time (Swift has no per-function target).
        .target(name: "CHostMath"),
        // Kernels/*.cl and *.h, embedded as string literals at build time by the plugin below,
        // so an installed `tapecl` needs no source tree.
        .target(name: "TapeCLKernels", path: "Kernels", plugins: ["EmbedKernelsPlugin"]),
        .executableTarget(name: "EmbedKernels"),
        .plugin(name: "EmbedKernelsPlugin", capability: .buildTool(), dependencies: ["EmbedKernels"]),

        // MARK: - Tests
        .testTarget(
            name: "TapeCLTests",
            dependencies: [
                "TapeCL", "TapeCLNN", "TapeCLData", "TapeCLDistributed", "TapeCLCheck", "TapeCLBenchmarks",
                "TapeCLExamples",
                "CHostMath",
            ]
        ),
        // Misuses TapeCL on purpose; `make test` builds it in release, where a stop must still print its message.
        .executableTarget(
            name: "tapecl-stop", dependencies: ["TapeCL", "TapeCLNN"], path: "Tests/Programs/tapecl-stop"),
        // Started under mpirun by the distributed tests.
        .executableTarget(
            name: "tapecl-mpi-check", dependencies: ["TapeCL", "TapeCLNN", "TapeCLDistributed"],
            path: "Tests/Programs/tapecl-mpi-check"),
    ],
    swiftLanguageModes: [.v6]
)
