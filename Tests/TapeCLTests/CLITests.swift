import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// Runs the built `tapecl` (beside the test bundle), as a user would.
func tapecl(
    _ arguments: [String], environment: [String: String] = [:]
) throws -> (status: Int32, out: String, err: String) {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return try run(bundle.appendingPathComponent("tapecl"), arguments, environment: environment)
}

/// Runs `executable` and collects its standard output and error. Both pipes are drained at once
/// (stderr on another thread): a child that fills one pipe's 64 KiB while the parent waits on the
/// other would never finish.
func run(
    _ executable: URL, _ arguments: [String], environment: [String: String] = [:], removing: [String] = [],
    in directory: URL? = nil, process: Process = Process()
) throws -> (status: Int32, out: String, err: String) {
    guard FileManager.default.isExecutableFile(atPath: executable.path) else {
        throw TapeError.argument("\(executable.lastPathComponent) is not built (\(executable.path)); run `make test`")
    }
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    for key in removing { env[key] = nil }
    process.environment = env
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let errors = Collected(err.fileHandleForReading)
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = errors.wait()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A pipe read to its end on another thread; `wait` returns what it read.
final class Collected: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchGroup()
    init(_ handle: FileHandle) {
        DispatchQueue.global().async(group: done) { self.data = handle.readDataToEndOfFile() }
    }
    /// The data, once the writer closed the pipe (the group's wait orders the write before the read).
    func wait() -> Data {
        done.wait()
        return data
    }
}

func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

@Suite("tapecl command line")
struct CLITests {
    @Test(arguments: ["host"] + Device.openCL.map(\.name))
    func gradOfTheSeedExample(device: String) throws {
        let r = try tapecl(["grad", "(x+y)^2 + 2*x*y", "--at", "x=2", "--at", "y=-4", "--device", device])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "f = -12\ndf/dx = -12\ndf/dy = 0\n")
        let j =
            try json(
                try tapecl([
                    "grad", "(x+y)^2 + 2*x*y", "--at", "x=2", "--at", "y=-4", "--order", "2", "--json", "--device",
                    device,
                ]).out) as! [String: Any]
        #expect(j["value"] as? Double == -12)
        #expect((j["gradient"] as! [String: Double]) == ["x": -12, "y": 0])
        #expect((j["hessian"] as! [String: [String: Double]]) == ["x": ["x": 2, "y": 4], "y": ["x": 4, "y": 2]])
    }

    @Test func gradJSONShapesForVectorsAndMatrices() throws {
        let r = try tapecl([
            "grad", "sum(w @ v) + mean(w * w)", "--at", "w=[[1,2],[3,4]]", "--at", "v=[[1],[2]]", "--order", "2",
            "--json", "--device", "host",
        ])
        #expect(r.status == 0, "\(r.err)")
        let j = try json(r.out) as! [String: Any]
        #expect(j["value"] as? Double == 16 + 7.5)
        let g = j["gradient"] as! [String: Any]
        #expect(g["w"] as? [[Double]] == [[1.5, 3], [2.5, 4]])  // v broadcast per row + w/2
        #expect(g["v"] as? [[Double]] == [[4], [6]])
        let h = j["hessian"] as! [String: [String: Any]]
        let hww = h["w"]!["w"] as! [[[[Double]]]]  // shape w.shape + w.shape
        #expect(hww.count == 2 && hww[0].count == 2 && hww[0][0].count == 2 && hww[0][0][0].count == 2)
        #expect(hww[0][0][0][0] == 0.5 && hww[0][0][0][1] == 0)
        let hwv = h["w"]!["v"] as! [[[[Double]]]]  // [2, 2] + [2, 1]
        #expect(hwv[0][0] == [[1], [0]] && hwv[1][1] == [[0], [1]])
        let vec =
            try json(try tapecl(["grad", "x * x", "--at", "x=[1,2,3]", "--json", "--device", "host"]).out)
            as! [String: Any]
        #expect(vec["value"] as? [Double] == [1, 4, 9])
        #expect((vec["gradient"] as! [String: [Double]])["x"] == [2, 4, 6])
    }

    /// NaN prints as `nan`, as TensorFlow prints it (x ** y at x = -2, y = 0.5: f = nan, dx = nan,
    /// dy = nan), although 0 · NaN here has its sign bit set, which Swift prints as `-nan`.
    @Test func nanPrintsAsTensorFlowPrintsIt() throws {
        let r = try tapecl(["grad", "x^y", "--at", "x=-2", "--at", "y=0.5", "--device", "host"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "f = nan\ndf/dx = nan\ndf/dy = nan\n")
        let j =
            try json(try tapecl(["grad", "x^y", "--at", "x=-2", "--at", "y=0.5", "--json", "--device", "host"]).out)
            as! [String: Any]
        #expect(j["value"] as? String == "nan")
        #expect(Tensor([-Float.nan, 1]).description == "Tensor([nan, 1.0], shape: [2], dtype: float32)")
    }

    @Test(arguments: [
        (["grad", "(x+y", "--at", "x=1", "--at", "y=2"], "column 5"),
        (["grad", "x +* y", "--at", "x=1", "--at", "y=2"], "column 4"),
        (["grad", "foo(x)", "--at", "x=1"], "unknown function 'foo'"),
        (["grad", "x + z", "--at", "x=1"], "'z' is not bound"),
        (["grad", "x", "--at", "x=[[1,2],[3]]"], "ragged"),
        (["grad", "x", "--at", "x=[1,2"], "expected ',' or ']'"),
        (["grad", "x @ y", "--at", "x=[1,2]", "--at", "y=[[1,2]]"], "matmul"),
        (["grad", "x", "--at", "x"], "NAME=VALUE"),
        (["grad", "x", "--at", "x=1", "--device", "nowhere"], "unknown device"),
        (
            ["grad", String(repeating: "(", count: 300) + "x" + String(repeating: ")", count: 300), "--at", "x=1"],
            "nests deeper"
        ),
        // What the argument parser rejects is one line too (it printed usage and exited 64).
        (["grad", "x", "--at", "x=1", "--order", "-1"], "--order must be 1 or 2, not -1"),
        (["grad", "x", "--at", "x=1", "--order", "abc"], "'abc' is invalid for '--order"),
        (["grad", "x", "--at", "x=1", "--order", "99999999999999999999"], "is invalid for '--order"),
        (["grad", "x", "--at", "x=1", "--bogus"], "Unknown option '--bogus'"),
        (["grad", "--at", "x=1"], "Missing expected argument '<expression>'"),
        (["bogus"], "unknown subcommand 'bogus' (devices, grad, check, train, bench)"),
        (["check", "--seed", "-3"], "'-3' is invalid for '--seed"),
        // train's ranges, checked up front.
        (["train", "--epochs", "-1"], "--epochs must be from 0 to 1000000, not -1"),
        (["train", "--epochs", "3000000000"], "--epochs must be from 0 to 1000000, not 3000000000"),
        (["train", "--batch-size", "9223372036854775807"], "--batch-size must be from 1 to"),
        (["train", "--hidden", "4611686018427387904"], "--hidden must be from 1 to"),
        (["train", "--hidden", "16000000"], "needs about"),
        (["train", "--learning-rate", "inf"], "--learning-rate must be a finite number above 0, not inf"),
        (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number above 0, not nan"),
        // a file that cannot be read, named once (it printed Foundation's NSCocoaErrorDomain dump)
        (
            ["train", "--epochs", "0", "--load", "/nonexistent/w.safetensors"],
            "--load: no such file: /nonexistent/w.safetensors"
        ),
        (["train", "--epochs", "0", "--load", "/tmp"], "--load: is a folder: /tmp"),
        // without mpirun there is one process: nothing to measure (it printed "1 processes", "goal met")
        (["bench", "W2", "--distributed"], "start it under MPI, as in 'mpirun -np 2 tapecl bench W2 --distributed'"),
    ])
    func badInputIsOneLineAndStatus2(arguments: [String], expected: String) throws {
        let r = try tapecl(arguments + (arguments.contains("--device") ? [] : ["--device", "host"]))
        #expect(r.status == 2)
        #expect(r.out.isEmpty)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: ") && r.err.contains(expected), "\(r.err)")
    }

    /// A run whose loss becomes NaN or infinite stops with exit 2 instead of printing NaNs and exit 0.
    @Test func divergingTrainingIsAnError() throws {
        let r = try tapecl(["train", "--learning-rate", "1e30", "--epochs", "2", "--device", "host"])
        #expect(r.status == 2)
        #expect(r.err == "error: training diverged in epoch 1: the loss is nan; try a smaller --learning-rate\n")
    }

    /// A leading minus is maths, before or after the options, and after `--` (it used to print
    /// the help text, exit 0, for `-(tanh(x))`, and fail for `-(x*y)` and `-- -x --at x=3`).
    @Test(arguments: [
        (["grad", "-(tanh(x))", "--at", "x=1"], "f = -0.7615942\ndf/dx = -0.41997433\n"),
        (["grad", "-(x*y)", "--at", "x=2", "--at", "y=3"], "f = -6\ndf/dx = -3\ndf/dy = -2\n"),
        (["grad", "--at", "x=2", "--at", "y=3", "-(x*y)"], "f = -6\ndf/dx = -3\ndf/dy = -2\n"),
        (["grad", "--", "-x", "--at", "x=3"], "f = -3\ndf/dx = -1\n"),
        (["grad", "-x", "--at", "x=-3", "--order", "2"], "f = 3\ndf/dx = -1\nd2f/dxdx = 0\n"),
        (["grad", "-h*h", "--at", "h=2"], "f = -4\ndf/dh = -4\n"),
    ])
    func leadingMinusIsMaths(arguments: [String], expected: String) throws {
        let r = try tapecl(arguments + ["--device", "host"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == expected)
    }

    /// JSON comes from JSONEncoder: counts are exact integers, names with quotes stay valid.
    @Test func jsonIsEncodedNotInterpolated() throws {
        let bench = try tapecl(["bench", "W5", "--quick", "--json", "--device", "host"])
        #expect(bench.status == 0, "\(bench.err)")
        let w5 = try json(bench.out) as! [String: Any]
        let after = try #require(w5["live_after_bytes"] as? Int)
        let expected = try #require(w5["x_plus_gradient_bytes"] as? Int)
        #expect(after == expected && after > 0)
        #expect(bench.out.contains("\"live_after_bytes\":\(after)"))
        let grad =
            try json(try tapecl(["grad", "log(x)", "--at", "x=[0,-1]", "--json", "--device", "host"]).out)
            as! [String: Any]
        #expect(grad["value"] as? [String] == ["-inf", "nan"])
        let dx = try #require((grad["gradient"] as? [String: [Any]])?["x"])
        #expect(dx.first as? String == "inf" && dx.last as? Double == -1)
        let check = try tapecl(["check", "--json", "--device", "host"])
        let report = try json(check.out) as! [String: Any]
        let rows = try #require(report["ops"] as? [[String: Any]])
        #expect(rows.count == Op.all.count && rows.allSatisfy { $0["ok"] as? Bool == true })
    }

    @Test func longExpressionsWork() throws {
        let r = try tapecl([
            "grad", Array(repeating: "x", count: 5000).joined(separator: "+"), "--at", "x=0.5", "--device", "host",
        ])
        #expect(r.status == 0)
        #expect(r.out == "f = 2500\ndf/dx = 5000\n")
    }

    @Test(arguments: ["host"] + Device.openCL.map(\.name))
    func checkPassesAgainstTheHost(device: String) throws {
        let r = try tapecl(["check", "--device", device, "--json"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        let report = try json(r.out) as! [String: Any]
        let rows = try #require(report["ops"] as? [[String: Any]])
        #expect(rows.count == Op.all.count)
        #expect(rows.allSatisfy { $0["ok"] as? Bool == true })
        let special = try #require(report["special_values"] as? [[String: Any]])
        let bad = special.filter { $0["ok"] as? Bool != true }.map { "\($0["op"]!) \($0["what"]!): \($0["mismatch"]!)" }
        #expect(special.count > 100 && bad.isEmpty, "\(bad)")
        #expect(report["ok"] as? Bool == true)
    }

    @Test func devicesListsHostAndOpenCL() throws {
        let r = try tapecl(["devices", "--json"])
        #expect(r.status == 0)
        let rows = try json(r.out) as! [[String: Any]]
        #expect(rows.map { $0["name"] as! String } == Device.all.map(\.name))
        #expect(rows.filter { $0["default"] as? Bool == true }.count == 1)
    }

    @Test(arguments: ["host"] + Device.openCL.map(\.name))
    func trainOneEpochIsDeterministic(device: String) throws {
        let args = ["train", "--epochs", "1", "--json", "--device", device, "--seed", "3"]
        let a = try tapecl(args)
        let b = try tapecl(args)
        #expect(a.status == 0, "\(a.err)")
        func numbers(_ s: String) throws -> [NSDictionary] {
            try s.split(separator: "\n").map { line in
                var object = try json(String(line)) as! [String: Any]
                object["seconds"] = nil  // the one field that may differ
                return object as NSDictionary
            }
        }
        #expect(try numbers(a.out) == numbers(b.out))
        let last = try json(String(a.out.split(separator: "\n").last!)) as! [String: Any]
        #expect((last["held_out_accuracy"] as! Double) > 0.8, "\(a.out)")
    }

    @Test func benchQuickRuns() throws {
        let r = try tapecl(["bench", "W1", "W5", "--quick", "--json", "--device", "host"])
        #expect(r.status == 0, "\(r.err)")
        let rows = r.out.split(separator: "\n").map { try! json(String($0)) as! [String: Any] }
        #expect(rows.count == 2)
        #expect(
            Swift.abs((rows[0]["y"] as! Double) - 1.21319) < 1e-4
                && Swift.abs((rows[0]["dy_dx"] as! Double) - 1.95439) < 1e-4)
        #expect(rows[1]["live_after_bytes"] as? Double == rows[1]["x_plus_gradient_bytes"] as? Double)
    }
}
