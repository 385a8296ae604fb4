import ArgumentParser
import Foundation
import TapeCL

@main
struct TapeCLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tapecl",
        abstract: "Reverse-mode automatic differentiation on OpenCL devices, with TensorFlow's GradientTape semantics.",
        discussion:
            "Every subcommand runs on --device NAME (else TAPECL_DEVICE, else the default device: the first "
            + "OpenCL GPU, else the first OpenCL device, else the host).",
        subcommands: [Devices.self, Grad.self, Check.self, Train.self, Bench.self]
    )

    /// Parses the normalised command line (see ``Arguments``) and runs it. Whatever the parser
    /// rejects (an unknown option or subcommand, a missing or malformed value) is one line
    /// `error: ...` and exit status 2, as the commands' own errors are; `--help` prints help.
    static func main() {
        let arguments = Arguments.normalize(Array(CommandLine.arguments.dropFirst()))
        let names = configuration.subcommands.map { $0._commandName }
        if let first = arguments.first, !first.hasPrefix("-"), !names.contains(first), first != "help" {
            FileHandle.standardError.write(
                Data("error: unknown subcommand '\(first)' (\(names.joined(separator: ", ")))\n".utf8))
            Foundation.exit(2)
        }
        // A stop inside an op (out of memory, a shape that does not fit) is one line and status 2, as
        // the commands' own errors are, not a trap with a backtrace. `_exit`: a stop may come with a
        // lock held that an exit handler (the queues' drain) would wait for; under mpirun, a rank that
        // ends without finalising ends the job.
        setStopHandler { error in
            fflush(nil)
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            _exit(2)
        }
        // Every device's queue is drained before the process exits (see `Device.synchronizeAll()`).
        defer { Device.synchronizeAll() }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let code as ExitCode {
            Device.synchronizeAll()
            Foundation.exit(code.rawValue)
        } catch {
            Device.synchronizeAll()
            if exitCode(for: error) == .success { exit(withError: error) }  // --help
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// `--device` and `--json`, shared by every subcommand.
struct CommonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Device to run on: host, opencl, opencl:N, opencl:gpu, opencl:cpu (default: TAPECL_DEVICE, else "
                + "the default device).")
    )
    var device: String?

    @Flag(help: "Print results as JSON.")
    var json = false

    func resolveDevice() throws -> Device {
        guard let device else {
            do { return try Device.defaultDevice() } catch { throw UserError("\(error)") }
        }
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

/// Numbers as people read them (12, -0.5, 4.0205746).
enum Format {
    static func number(_ v: Double) -> String {
        if v.isNaN { return "nan" }  // as TensorFlow prints it, whatever its sign bit
        if !v.isFinite { return "\(v)" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(Float(v))" == "\(v)" ? "\(v)" : "\(Float(v))"
    }

    /// A tensor as a number or nested lists.
    static func tensor(_ t: Tensor) -> String {
        t.nested(t.scalars(as: Double.self).map { number($0) }, empty: "") { "[" + $0.joined(separator: ", ") + "]" }
    }
}

/// Every `--json` output goes through `JSONEncoder`: keys sorted and in snake_case, strings
/// escaped by the encoder, numbers in their shortest round-trip form (a float32 value as the
/// float32 it is), and the non-finite values spelled as the strings "nan", "inf" and "-inf".
enum JSON {
    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        e.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func print(_ value: some Encodable) throws {
        Swift.print(String(decoding: try encoder().encode(value), as: UTF8.self))
    }
}

/// A tensor's values for JSON: a number (as its dtype holds it) or nested lists.
indirect enum TensorJSON: Encodable {
    case float(Float)
    case double(Double)
    case int(Int)
    case list([TensorJSON])

    init(_ t: Tensor) {
        let leaves: [TensorJSON] =
            switch t.dtype {
            case .float32: t.scalars(as: Float.self).map { .float($0.isNaN ? .nan : $0) }
            case .float64: t.scalars(as: Double.self).map { .double($0.isNaN ? .nan : $0) }
            case .int32, .int8, .bool: t.scalars(as: Int.self).map { .int($0) }
            }
        self = t.nested(leaves, empty: .list([])) { .list($0) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .float(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .list(let v): try c.encode(v)
        }
    }
}

/// A value of a JSON object whose keys are known only at run time (benchmark figures): a count
/// stays an exact integer, a measurement a double.
enum JSONField: Encodable {
    case string(String)
    case int(Int)
    case double(Double)

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        }
    }
}
