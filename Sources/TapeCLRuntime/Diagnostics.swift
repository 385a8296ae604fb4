// What a program can learn about how its devices run: what `tapecl devices` prints, as public API.

extension Device {
    /// Builds every kernel program of this device now (else each is built on first use) and reports
    /// each build: what `tapecl devices --build-kernels` prints.
    ///
    /// ```swift
    /// for build in try Device.named("opencl:0").buildKernels() where build.error != nil { print(build.program) }
    /// ```
    public func buildKernels() -> [ProgramBuild] { core.backend.buildAll() }

    /// The kernel variants this device runs, chosen from its properties (on the host, the vector
    /// width of its sin, cos and exp loops).
    public var kernelVariants: String? { core.backend.kernelVariants }

    /// Why this device cannot build kernels (every op would then run on the host), or nil.
    public var kernelBuildProblem: String? { core.backend.buildProblem() }

    /// What runs matrix products here: OpenBLAS and the kernels it chose, on the host; nil on a
    /// device that runs TapeCL's own kernels.
    public var matmulLibrary: String? { core.backend.matmulLibrary }

    /// About how many bytes of host memory this process can still allocate: the least of the
    /// machine's available memory, the address-space limit (`ulimit -v`) less what is mapped, and
    /// its cgroup's `memory.max` less its usage.
    public static var availableHostMemory: Int { HostMemory.available() }
}
