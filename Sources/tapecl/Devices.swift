import ArgumentParser
import Foundation
import TapeCL

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the host and every OpenCL platform and device; mark the default.")

    @Flag(
        help: "Build every kernel program of each OpenCL device now and print the build times (filling the disk cache)."
    )
    var buildKernels = false

    @OptionGroup var options: CommonOptions

    /// One device of `tapecl devices --json`.
    struct Entry: Encodable {
        let name: String
        let device: String
        let vendor: String
        let type: String
        let computeUnits: Int
        let globalMemoryBytes: Int
        let maxAllocationBytes: Int
        let fp64: Bool
        let `default`: Bool
        let platform: String?
        /// The kernel language and its version (e.g. `OpenCL C 1.2 PoCL`).
        let language: String?
        let driverVersion: String?
        /// Why the device cannot build kernels (every op would run on the host), if it cannot.
        let buildProblem: String?
        /// The kernel variants the device runs (chosen from its properties).
        let kernels: String?
        /// The host's matmul library and the kernels it runs (e.g. `OpenBLAS 0.3.21, SkylakeX kernels`).
        let blas: String?
    }

    func run() throws {
        try reportingErrors {
            let chosen = try options.resolveDevice()
            if buildKernels { return try build() }
            let entries = Device.all.map { d in
                let i = d.info
                return Entry(
                    name: i.name, device: i.deviceName, vendor: i.vendor, type: i.type, computeUnits: i.computeUnits,
                    globalMemoryBytes: i.globalMemoryBytes, maxAllocationBytes: i.maxAllocationBytes,
                    fp64: i.supportsFloat64, default: d == chosen, platform: i.platform,
                    language: i.language, driverVersion: i.driverVersion,
                    buildProblem: d.kernelBuildProblem, kernels: d.kernelVariants,
                    blas: d.matmulLibrary)
            }
            if options.json { return try JSON.print(entries) }
            for e in entries {
                let memory = String(format: "%.1f GiB", Double(e.globalMemoryBytes) / 1_073_741_824)
                print(
                    "\(e.default ? "*" : " ") \(e.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(e.device)")
                var details = [e.type, "\(e.computeUnits) compute units", memory, e.fp64 ? "fp64" : "no fp64"]
                if e.platform != nil { details.insert("vendor \(e.vendor)", at: 1) }
                if let v = e.language { details.append(v) }
                if let v = e.driverVersion { details.append("driver \(v)") }
                if let p = e.platform { details.append("platform \(p)") }
                if let b = e.blas { details.append("matmul by \(b)") }
                if let k = e.kernels { details.append(k) }
                print("            " + details.joined(separator: ", "))
                if let problem = e.buildProblem {
                    print("            CANNOT BUILD KERNELS: \(problem); every op on \(e.name) runs on the host")
                }
            }
            if Device.all.count == 1 {
                print("  (no OpenCL platform found: everything runs on the host)")
            } else {
                var implementations: [String: [String]] = [:]
                for e in entries where e.platform != nil { implementations[e.platform!, default: []].append(e.name) }
                let list = implementations.sorted { $0.value[0] < $1.value[0] }.map {
                    "\($0.key) (\($0.value.joined(separator: ", ")))"
                }
                print("Implementations: " + list.joined(separator: "; "))
            }
            let order = "--device, else TAPECL_DEVICE, else the first GPU, else the first OpenCL device, else the host"
            print("* = default (\(order))")
        }
    }

    /// `--build-kernels`: every program of every OpenCL device, with its build time.
    func build() throws {
        let devices = Device.all.filter { $0 != .host }
        guard !devices.isEmpty else {
            let hint = "install an OpenCL driver and its ICD file, e.g. pocl-opencl-icd"
            throw UserError("--build-kernels: no OpenCL platform found (\(hint))")
        }
        var failures = 0
        for d in devices {
            let start = Date()
            let builds = d.buildKernels()
            for b in builds {
                let how =
                    b.error.map { "FAILED: \($0)" } ?? (b.fromDiskCache ? "from the disk cache" : "built from source")
                let program = b.program.padding(toLength: 64, withPad: " ", startingAt: 0)
                print("\(d.name)  \(program) \(String(format: "%6.3f s", b.seconds))  \(how)")
                if b.error != nil { failures += 1 }
            }
            print("\(d.name)  \(builds.count) programs in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
        if failures > 0 { throw UserError("--build-kernels: \(failures) programs did not build") }
    }
}
