import ArgumentParser
import Foundation
import TapeCL

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the host and every OpenCL platform and device; mark the default.")

    @Flag(help: "Build every kernel program of each OpenCL device now and print the build times (filling the disk cache).")
    var buildKernels = false

    @OptionGroup var options: CommonOptions

    func run() throws {
        try reportingErrors {
            let chosen = try options.resolveDevice()
            if buildKernels {
                for d in Device.openCL {
                    let start = Date()
                    let builds = d.core.backend.buildAll()
                    for b in builds {
                        print("\(d.name)  \(b.program.padding(toLength: 64, withPad: " ", startingAt: 0)) \(String(format: "%6.3f s", b.seconds))  \(b.error.map { "FAILED: \($0)" } ?? (b.fromDiskCache ? "from the disk cache" : "built from source"))")
                    }
                    print("\(d.name)  \(builds.count) programs in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
                }
                return
            }
            let all = Device.all
            if options.json {
                let items = all.map { d -> String in
                    let i = d.info
                    var fields = [
                        "\"name\": \(Format.jsonString(i.name))", "\"device\": \(Format.jsonString(i.deviceName))",
                        "\"vendor\": \(Format.jsonString(i.vendor))", "\"type\": \(Format.jsonString(i.type))",
                        "\"compute_units\": \(i.computeUnits)", "\"global_memory_bytes\": \(i.globalMemoryBytes)",
                        "\"fp64\": \(i.supportsFloat64)", "\"default\": \(d == chosen)",
                    ]
                    if let p = i.platform { fields.append("\"platform\": \(Format.jsonString(p))") }
                    if let v = i.openCLCVersion { fields.append("\"opencl_c_version\": \(Format.jsonString(v))") }
                    if let v = i.driverVersion { fields.append("\"driver_version\": \(Format.jsonString(v))") }
                    return "{" + fields.joined(separator: ", ") + "}"
                }
                print("[" + items.joined(separator: ",\n ") + "]")
                return
            }
            for d in all {
                let i = d.info
                let memory = String(format: "%.1f GiB", Double(i.globalMemoryBytes) / 1_073_741_824)
                print("\(d == chosen ? "*" : " ") \(i.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(i.deviceName)")
                var details = ["\(i.type)", "\(i.computeUnits) compute units", memory, i.supportsFloat64 ? "fp64" : "no fp64"]
                if let v = i.openCLCVersion { details.append(v) }
                if let v = i.driverVersion { details.append("driver \(v)") }
                if let p = i.platform { details.append("platform \(p)") } else { details.append("OpenBLAS for matmul") }
                if i.kind == "opencl" { details.insert("vendor \(i.vendor)", at: 1) }
                print("            " + details.joined(separator: ", "))
            }
            if Device.openCL.isEmpty { print("  (no OpenCL platform found: everything runs on the host)") }
            print("* = default (--device, else TAPECL_DEVICE, else the first GPU, else the first OpenCL device, else the host)")
        }
    }
}
