// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "TapeCL",
    products: [
        // MARK: - Public API
        .library(name: "TapeCL", targets: ["TapeCL"]),
        .executable(name: "tapecl", targets: ["tapecl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // MARK: - Public API
        .target(
            name: "TapeCL",
            dependencies: [
                "COpenCL", "COpenBLAS", "CHostMath", "TapeCLKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .executableTarget(
            name: "tapecl",
            dependencies: ["TapeCL", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: - Implementation details
        // The OpenCL C API (Debian: ocl-icd-opencl-dev).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
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
        .testTarget(name: "TapeCLTests", dependencies: ["TapeCL"]),
        // Misuses TapeCL on purpose; `make test` builds it in release, where a stop must still print its message.
        .executableTarget(name: "tapecl-stop", dependencies: ["TapeCL"], path: "Tests/Programs/tapecl-stop"),
    ],
    swiftLanguageModes: [.v6]
)
