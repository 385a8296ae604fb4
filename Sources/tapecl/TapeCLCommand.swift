import ArgumentParser
import Foundation
import TapeCL

@main
struct TapeCLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tapecl",
        abstract: "Reverse-mode automatic differentiation on OpenCL devices, with TensorFlow's GradientTape semantics.",
        discussion: "Every subcommand runs on --device NAME (else TAPECL_DEVICE, else the default device: the first OpenCL GPU, else the first OpenCL device, else the host).",
        subcommands: [Devices.self, Grad.self, Check.self, Train.self, Bench.self]
    )
}

/// `--device` and `--json`, shared by every subcommand.
struct CommonOptions: ParsableArguments {
    @Option(help: "Device to run on: host, opencl, opencl:N, opencl:gpu, opencl:cpu (default: TAPECL_DEVICE, else the default device).")
    var device: String?

    @Flag(help: "Print results as JSON.")
    var json = false

    func resolveDevice() throws -> Device {
        guard let device else { return Device.default }
        do { return try Device.named(device) } catch { throw UserError("--device: \(error)") }
    }
}

/// A one-line `error: ...` and exit status 2, never a trap or a stack trace.
struct UserError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ParsableCommand {
    /// Runs `body`, turning any error into one line on standard error and exit status 2.
    func reportingErrors(_ body: () throws -> Void) throws {
        do { try body() } catch let exit as ExitCode { throw exit } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// Numbers as people read them (12, -0.5, 4.0205746) and as JSON (non-finite values as strings).
enum Format {
    static func number(_ v: Double, json: Bool = false) -> String {
        if v.isNaN { return json ? "\"nan\"" : "nan" }                 // as TensorFlow prints it, whatever its sign bit
        if !v.isFinite { return json ? "\"\(v)\"" : "\(v)" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(Float(v))" == "\(v)" ? "\(v)" : "\(Float(v))"
    }

    /// A tensor as a number or nested lists.
    static func tensor(_ t: Tensor, json: Bool = false) -> String {
        Shape.nested(t.scalars(as: Double.self).map { number($0, json: json) }[...], t.shape[...])
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out += c.value < 0x20 ? String(format: "\\u%04x", c.value) : String(c)
            }
        }
        return out + "\""
    }
}
