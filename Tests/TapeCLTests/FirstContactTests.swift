import Foundation
import TapeCL
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

/// The package root, from this file's path (Tests/TapeCLTests/…).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite("Errors that print and throw")
struct ErrorTests {
    /// Each misuse of `tapecl-stop` and the message it stops with.
    static let stops: [(String, String)] = [
        ("shape", "add: shapes [3] and [2] do not broadcast"),
        ("matmul", "matmul: shapes [1, 3] and [1, 2] do not fit"),
        ("reshape", "reshape: cannot reshape [3] (3 elements) to [2, 2]"),
        ("scalar", "scalar: a tensor of shape [2] has 2 elements; use scalars"),
        (
            "zeros",
            "Tensor.full: a float32 result of shape [1099511627776, 1024] needs 4503599627370496 bytes; host allocates at most"
        ),
        (
            "sparse-rows",
            "sparseSoftmaxCrossEntropy: logits and labels must have the same leading shape: logits [4, 3] need labels [4], not [3]"
        ),
        ("sparse-float", "sparseSoftmaxCrossEntropy: labels must be int32 class ids, not float32"),
        // layers name themselves and what to do (issue 32, item 2)
        (
            "dense-features",
            "Dense(128→10): the input has 1024 features (shape [4, 1024]) and the layer takes inputSize 128"
        ),
        ("dense-named", "Dense 'head' (128→10): the input has 1024 features (shape [4, 1024])"),
        ("sequential-twice", "Sequential: two layers are named 'a'; give them different names"),
        (
            "conv-nchw",
            "Conv2D(3×3, 1→16): the input must be [batch, height, width, 1]: [2, 1, 8, 8] has 8 channels in its last "
                + "axis; for channels first (NCHW) use x.transposed(permutation: [0, 2, 3, 1])"
        ),
        (
            "conv-image",
            "Conv2D(3×3, 1→16): the input must be [batch, height, width, 1], not [8, 8, 1]; one image [height, width, "
                + "channels] is x.reshaped(to: [1] + x.shape)"
        ),
        (
            "sparse-one-hot",
            "sparseSoftmaxCrossEntropy: labels must be int32 class ids, not float32; labels of the logits' shape look "
                + "one-hot: use softmaxCrossEntropy(logits:labels:)"
        ),
    ]

    /// A stop in an optimised build prints its message (`make test` builds `tapecl-stop` in release).
    @Test(arguments: stops)
    func releaseBuildStopsWithItsMessage(misuse: String, message: String) throws {
        let program = packageRoot.appendingPathComponent(".build/release/tapecl-stop")
        let r = try run(program, [misuse])
        #expect(r.status != 0)
        #expect(r.err.contains("Fatal error: TapeCL: \(message)"), "\(r.err.prefix(400))")
    }

    /// The workloads in an optimised build, on every device: W5 in release crashed once ("Recursive
    /// call to lock Mutex": the optimiser freed cached constants inside the allocator's lock) where
    /// every debug test passed.
    @Test func releaseBuildRunsTheWorkloads() throws {
        let tool = packageRoot.appendingPathComponent(".build/release/tapecl")
        for device in Device.all {
            let r = try run(
                tool, ["bench", "W1", "W2", "W3", "W4", "W5", "--quick", "--json", "--device", device.name])
            #expect(r.status == 0, "\(device): \(r.err.prefix(300))")
            let rows = try r.out.split(separator: "\n").map { try json(String($0)) as! [String: Any] }
            #expect(rows.count == 5, "\(device)")
            let w5 = try #require(rows.first { $0["workload"] as? String == "W5" })
            #expect(w5["live_after_bytes"] as? Int == w5["x_plus_gradient_bytes"] as? Int)
        }
    }

    /// A program that exits with kernels still queued on PoCL exits cleanly. PoCL compiled them on
    /// worker threads while exit tore its LLVM down: 5 crashes in 5 runs with a cold PoCL cache
    /// (and 3 of 4 runs of `tapecl check --seed 1` once the stack op was added).
    @Test func exitWithQueuedWorkIsClean() throws {
        for device in Device.openCL {
            for _ in 0..<2 {
                let cold = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "tapecl-pending-\(UUID().uuidString)")
                try FileManager.default.createDirectory(
                    at: cold.appendingPathComponent("pocl"), withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: cold) }
                let env = [
                    "TAPECL_CACHE_DIR": cold.appendingPathComponent("tapecl").path,
                    "POCL_CACHE_DIR": cold.appendingPathComponent("pocl").path, "TAPECL_QUIET": "1",
                ]
                let r = try run(
                    packageRoot.appendingPathComponent(".build/release/tapecl-stop"), ["pending", device.name],
                    environment: env)
                #expect(r.status == 0, "\(r.err.prefix(300))")
            }
        }
    }

    @Test func mixedDevicesStopWithBothNames() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let r = try run(packageRoot.appendingPathComponent(".build/release/tapecl-stop"), ["devices", cl.name])
        #expect(
            r.err.contains("Fatal error: TapeCL: add: inputs on host and \(cl.name); move one with to(_:)"),
            "\(r.err.prefix(400))")
        let layer = try run(
            packageRoot.appendingPathComponent(".build/release/tapecl-stop"), ["dense-device", cl.name])
        #expect(
            layer.err.contains(
                "Fatal error: TapeCL: Dense(2→3): the input is on \(cl.name) and the layer's variables on host; move the "
                    + "input with to(.host)"), "\(layer.err.prefix(400))")
    }

    /// Shapes a user can pass to the throwing API never trap: negative, overflowing, too large.
    @Test(arguments: devices)
    func throwingApplyThrowsForImpossibleShapes(device: Device) throws {
        let x = Tensor([1, 2, 3, 4], on: device)
        let one = Tensor(2.0, on: device)
        let cases: [(String, () throws -> Tensor, String)] = [
            (
                "broadcast negative", { try Tensor.apply("broadcast", [one], shape: [-1, 3]) },
                "dimension -1 in shape [-1, 3] is negative"
            ),
            (
                "broadcast overflow", { try Tensor.apply("broadcast", [one], shape: [Int.max, 3]) },
                "more elements than Int can count"
            ),
            (
                "reshape negative", { try Tensor.apply("reshape", [x], shape: [-2, -2]) },
                "dimension -2 in shape [-2, -2] is negative"
            ),
            (
                "reshape overflow", { try Tensor.apply("reshape", [x], shape: [Int.max, Int.max, -1]) },
                "more elements than Int can count"
            ),
            ("reshape two holes", { try Tensor.apply("reshape", [x], shape: [-1, -1]) }, "at most one dimension"),
        ]
        for (what, make, message) in cases {
            #expect(throws: TapeError.self, "\(what)") { try make() }
            do { _ = try make() } catch { #expect("\(error)".contains(message), "\(what): \(error)") }
        }
    }

    /// A result larger than the device can hold throws a `TapeError` naming the op, the shape and
    /// the bytes (on opencl:0 at 4.1 GiB the pending result used to stop in Fusion.swift).
    @Test(arguments: devices)
    func tooLargeResultThrowsWithBytes(device: Device) throws {
        let limit = device.info.maxAllocationBytes
        let n = limit / 4 + 1024
        let one = Tensor(2.0, on: device)
        do {
            _ = try Tensor.apply("broadcast", [one], shape: [n])
            Issue.record("a \(n)-element float32 result on \(device) did not throw")
        } catch let e as TapeError {
            #expect("\(e)".contains("broadcast: a float32 result of shape [\(n)] needs \(n * 4) bytes"), "\(e)")
            #expect("\(e)".contains("at most \(limit) bytes"), "\(e)")
        }
        let big = try Tensor.apply("broadcast", [one], shape: [1 << 16])  // fused (pending) result
        do {
            _ = try Tensor.apply("mul", [big, try Tensor.apply("broadcast", [one], shape: [n])])
            Issue.record("no error")
        } catch let e as TapeError {
            #expect("\(e)".contains("needs \(n * 4) bytes"), "\(e)")
        }
    }

    @Test(arguments: devices)
    func fullWritesOnTheDevice(device: Device) {
        let t = Tensor.full(shape: [3, 70_001], value: -1.5, dtype: .float64, on: device)
        let v = t.scalars(as: Double.self)
        #expect(v.count == 210_003 && v.allSatisfy { $0 == -1.5 })
        let i = Tensor.full(shape: [5], value: 7, dtype: .int8, on: device)
        #expect(i.scalars(as: Int8.self) == [7, 7, 7, 7, 7])
        #expect(Tensor.zeros(shape: [2, 2], dtype: .int32, on: device).scalars(as: Int32.self) == [0, 0, 0, 0])
    }

    /// The CLI tests' helper drains stderr while reading stdout: a child writing more than a
    /// pipe's 64 KiB to stderr used to block forever.
    @Test func helperReadsLargeStandardErrorWithoutDeadlock() throws {
        let r = try run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "head -c 300000 /dev/zero | tr '\\\\0' x >&2; echo done"])
        #expect(r.status == 0)
        #expect(r.out == "done\n")
        #expect(r.err.count == 300_000)
    }
}

@Suite("Kernel disk cache")
struct ProgramCacheTests {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tapecl-cache-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func entriesVerifyTheirKeyAndChecksum() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Array("binary for float32".utf8)
        let b = Array("binary for float64, longer".utf8)
        try ProgramCache.store(key: "elementwise -DT=float", binary: a, in: dir)
        try ProgramCache.store(key: "elementwise -DT=double", binary: b, in: dir)
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == a)
        #expect(ProgramCache.load(key: "elementwise -DT=double", in: dir) == b)
        let fileA = ProgramCache.file(for: "elementwise -DT=float", in: dir)!
        let fileB = ProgramCache.file(for: "elementwise -DT=double", in: dir)!
        let entryA = try Data(contentsOf: fileA)

        try FileManager.default.removeItem(at: fileA)  // swapped: B's entry under A's name
        try FileManager.default.copyItem(at: fileB, to: fileA)
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil)

        for position in [0, 30, entryA.count - 1] {  // one flipped byte anywhere
            var flipped = entryA
            flipped[position] ^= 0x10
            try flipped.write(to: fileA)
            #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil, "byte \(position)")
        }
        for length in [0, 10, entryA.count - 1] {  // truncated, empty
            try entryA.prefix(length).write(to: fileA)
            #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil, "\(length) bytes")
        }
        try (entryA + Data([0])).write(to: fileA)  // trailing garbage
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil)
        var random = SystemRandomNumberGenerator()
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }).write(to: fileA)
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil)

        try FileManager.default.removeItem(at: fileA)  // a directory in its place
        try FileManager.default.createDirectory(at: fileA, withIntermediateDirectories: true)
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == nil)
        try ProgramCache.store(key: "elementwise -DT=float", binary: a, in: dir)  // replaced
        #expect(ProgramCache.load(key: "elementwise -DT=float", in: dir) == a)
    }

    /// Writers racing on one key never leave a torn entry: every load sees one whole binary.
    @Test func concurrentWritersLeaveAWholeEntry() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let binaries = (0..<8).map { i in [UInt8](repeating: UInt8(i), count: 20_000 + 1000 * i) }
        await withTaskGroup(of: Void.self) { group in
            for binary in binaries {
                group.addTask {
                    for _ in 0..<10 { try? ProgramCache.store(key: "race", binary: binary, in: dir) }
                }
                group.addTask {
                    for _ in 0..<10 {
                        if let seen = ProgramCache.load(key: "race", in: dir) { #expect(binaries.contains(seen)) }
                    }
                }
            }
        }
        #expect(ProgramCache.load(key: "race", in: dir).map(binaries.contains) == true)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    /// The user's report: entries copied over other entries' names made `tapecl grad` print 0 with
    /// exit 0 on every later run. Now every entry is checked against its key and rebuilt.
    @Test func swappedEntriesAreRebuiltNotTrusted() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tool = packageRoot.appendingPathComponent(".build/debug/tapecl")
        let args = [
            "grad", "sum(w @ v) + (w*w)^2", "--at", "w=[[1,2],[3,4]]", "--at", "v=[[1],[2]]", "--device", cl.name,
        ]
        // d(Σf)/dw = 4vᵀ + 4w³
        let expected = "f = [[17, 32], [97, 272]]\ndf/dw = [[8, 40], [112, 264]]\ndf/dv = [[16], [24]]\n"
        let env = ["TAPECL_CACHE_DIR": dir.path, "TAPECL_QUIET": "1"]
        let first = try run(tool, args, environment: env)
        #expect(first.out == expected, "\(first.err)")
        let entries = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "bin" }.sorted { $0.path < $1.path }
        #expect(entries.count >= 2)
        let contents = try entries.map { try Data(contentsOf: $0) }
        // each under another's name
        for (i, url) in entries.enumerated() { try contents[(i + 1) % contents.count].write(to: url) }
        for _ in 0..<2 {
            let again = try run(tool, args, environment: env)
            #expect(again.status == 0)
            #expect(again.out == expected, "\(again.err)")
            #expect(again.err.isEmpty, "\(again.err)")  // rebuilt, not run on the host
        }
    }

    @Test func unwritableFolderThrows() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tapecl-not-a-folder-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: (any Error).self) { try ProgramCache.store(key: "k", binary: [1, 2], in: file) }
    }
}

@Suite("Host BLAS kernels")
struct HostBLASTests {
    static let avx512: Set<String> = [
        "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl",
    ]
    static let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]

    /// The choice is a pure function of the CPU's flags, its vendor, OpenBLAS's own pick and the user's variable.
    @Test func coreChoice() {
        func choose(_ flags: Set<String>, _ vendor: String, _ picked: String, user: Bool = false) -> String? {
            HostBLAS.coreToForce(flags: flags, vendor: vendor, openBLASCore: picked, userSetCore: user)
        }
        #expect(choose(Self.avx512, "GenuineIntel", "Prescott") == "SkylakeX")  // Xeon model 207 on 0.3.21
        #expect(choose(Self.avx512, "AuthenticAMD", "Prescott") == "SkylakeX")  // Zen 4/5 unknown to it
        #expect(choose(Self.avx2, "AuthenticAMD", "Prescott") == "Zen")
        #expect(choose(Self.avx2, "GenuineIntel", "Nehalem") == "Haswell")
        #expect(choose(["sse4_2", "avx"], "GenuineIntel", "Core2") == "Sandybridge")
        #expect(choose(["sse4_2"], "GenuineIntel", "Prescott") == nil)  // nothing better to run
        #expect(choose(Self.avx512, "GenuineIntel", "Prescott", user: true) == nil)  // the user's variable wins
        for known in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {  // OpenBLAS knows the CPU
            #expect(choose(Self.avx512, "GenuineIntel", known) == nil, "\(known)")
        }
    }

    /// The reload path on this machine: a first load that picks Prescott (as on a CPU OpenBLAS does
    /// not know) is replaced by kernels for this CPU, and `tapecl devices` says so.
    @Test func misdetectedCoreIsReplaced() throws {
        let cpu = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(
            cpu.split(separator: "\n").first { $0.hasPrefix("flags") }!.split(separator: " ").map(String.init))
        let vendor = cpu.contains("AuthenticAMD") ? "AuthenticAMD" : "GenuineIntel"
        let expected = HostBLAS.coreToForce(flags: flags, vendor: vendor, openBLASCore: "Prescott", userSetCore: false)
        let r = try run(
            packageRoot.appendingPathComponent(".build/debug/tapecl"), ["devices", "--json"],
            environment: ["TAPECL_TEST_BLAS_FIRST_CORE": "Prescott"], removing: ["OPENBLAS_CORETYPE"])
        #expect(r.status == 0, "\(r.err)")
        let host = (try json(r.out) as! [[String: Any]]).first { $0["name"] as? String == "host" }!
        let blas = host["blas"] as! String
        if let expected {
            #expect(blas.contains("\(expected) kernels (chosen by TapeCL: OpenBLAS picked Prescott)"), "\(blas)")
        } else {
            #expect(blas.contains("Prescott kernels"), "\(blas)")
        }
        // A user's own OPENBLAS_CORETYPE is kept.
        let user = try run(
            packageRoot.appendingPathComponent(".build/debug/tapecl"), ["devices"],
            environment: ["OPENBLAS_CORETYPE": "Haswell", "TAPECL_TEST_BLAS_FIRST_CORE": "Prescott"])
        #expect(user.out.contains("matmul by OpenBLAS 0.3.21, Haswell kernels, "), "\(user.out)")
        // And the product is right after a reload.
        let product = try run(
            packageRoot.appendingPathComponent(".build/debug/tapecl"),
            ["grad", "sum(w @ v)", "--at", "w=[[1,2],[3,4]]", "--at", "v=[[1],[2]]", "--device", "host"],
            environment: ["TAPECL_TEST_BLAS_FIRST_CORE": "Prescott"], removing: ["OPENBLAS_CORETYPE"])
        #expect(product.out == "f = 16\ndf/dw = [[1, 2], [1, 2]]\ndf/dv = [[4], [6]]\n", "\(product.err)")
    }
}

@Suite("Devices that cannot build kernels")
struct FallbackTests {
    /// PoCL cannot build anything when its cache folder is a file: `devices` says so, and `check`
    /// fails every op that ran on the host instead (it used to print "32 of 32 ops match the host").
    @Test func checkFailsWhenOpsFellBackToTheHost() throws {
        guard let cl = poclDevice() else { return }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tapecl-pocl-file-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-empty-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(at: cache)
        }
        let env = ["POCL_CACHE_DIR": file.path, "TAPECL_CACHE_DIR": cache.path]
        let tool = packageRoot.appendingPathComponent(".build/debug/tapecl")
        let devices = try run(tool, ["devices"], environment: env)
        #expect(devices.out.contains("CANNOT BUILD KERNELS: clBuildProgram"), "\(devices.out)")
        let check = try run(tool, ["check", "--device", cl.name], environment: env)
        #expect(check.status == 1)
        #expect(check.out.contains("ran on the host, not on \(cl.name)"), "\(check.out.suffix(600))")
        #expect(!check.out.contains("32 of 32 ops match the host"))
    }
}

@Suite("Environment variables")
struct EnvironmentTests {
    let tool = packageRoot.appendingPathComponent(".build/debug/tapecl")

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An unknown TAPECL_DEVICE is an error naming it and the devices (it fell back to the host with a
    /// warning); `--device` does not consult it at all; the library's `Device.defaultDevice()` throws it.
    @Test func unknownDefaultDeviceIsAnError() throws {
        let r = try run(tool, ["grad", "x", "--at", "x=1"], environment: ["TAPECL_DEVICE": "nowhere"])
        #expect(r.status == 2)
        let names = Device.all.map(\.name).joined(separator: ", ")
        #expect(r.err == "error: TAPECL_DEVICE=nowhere names no device; this machine has \(names)\n")
        let given = try run(
            tool, ["grad", "x", "--at", "x=1", "--device", "host"], environment: ["TAPECL_DEVICE": "nowhere"])
        #expect(given.status == 0 && given.err.isEmpty, "\(given.err)")
        let stopped = try run(
            packageRoot.appendingPathComponent(".build/release/tapecl-stop"), ["default"],
            environment: ["TAPECL_DEVICE": "nowhere"])
        #expect(
            stopped.err.contains("Fatal error: TapeCL: TAPECL_DEVICE=nowhere names no device"),
            "\(stopped.err.prefix(300))")
    }

    @Test func crossCheckSaysItIsOnAndSumsUp() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let r = try run(
            tool, ["grad", "sin(x) * x", "--at", "x=1", "--device", cl.name], environment: ["TAPECL_CROSSCHECK": "1"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.err.split(separator: "\n")
        #expect(
            lines.filter { $0.hasPrefix("TAPECL_CROSSCHECK=1: every op on an OpenCL device") }.count == 1, "\(r.err)")
        let summary = try #require(lines.last { $0.hasPrefix("TAPECL_CROSSCHECK: ") })
        #expect(summary.contains(" device ops checked against the host, worst relative error "), "\(summary)")
        #expect(!summary.hasPrefix("TAPECL_CROSSCHECK: 0 "))
    }

    /// With HOME and XDG_CACHE_HOME empty, nothing is created in the current directory (PoCL's
    /// cache went to ./pocl, TapeCL's to ./.cache).
    @Test func emptyHomeCreatesNothingHere() throws {
        let here = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: here) }
        let r = try run(
            tool, ["grad", "x * x", "--at", "x=2", "--device", Device.openCL.first?.name ?? "host"],
            environment: ["HOME": "", "XDG_CACHE_HOME": ""], removing: ["TAPECL_CACHE_DIR", "POCL_CACHE_DIR"],
            in: here)
        #expect(r.status == 0, "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: here.path).isEmpty)
    }

    /// Caches that cannot be written are reported once, with the reason; a cold build says what it is doing.
    @Test func cacheProblemsAndColdBuildsAreSaid() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let file = try temporaryFolder().appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let unwritable = try run(
            tool, ["grad", "x * x + 1", "--at", "x=2", "--device", cl.name],
            environment: ["TAPECL_CACHE_DIR": file.appendingPathComponent("sub").path, "TAPECL_QUIET": "1"])
        #expect(unwritable.status == 0)
        let warnings = unwritable.err.split(separator: "\n").filter {
            $0.contains("the kernel cache cannot be written")
        }
        #expect(warnings.count == 1, "\(unwritable.err)")
        let pocl = try run(tool, ["devices"], environment: ["POCL_CACHE_DIR": file.path])
        #expect(
            pocl.err.contains("POCL_CACHE_DIR=\(file.path) cannot hold PoCL's kernel cache (it is not a folder)"),
            "\(pocl.err)")

        let cold = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: cold) }
        let first = try run(
            tool, ["grad", "x * x", "--at", "x=2", "--device", cl.name], environment: ["TAPECL_CACHE_DIR": cold.path])
        #expect(
            first.err.contains(
                "TapeCL: building OpenCL kernels for \(cl.name), first use only; cached in \(cold.path)\n"),
            "\(first.err)")
        let warm = try run(
            tool, ["grad", "x * x", "--at", "x=2", "--device", cl.name], environment: ["TAPECL_CACHE_DIR": cold.path])
        #expect(!warm.err.contains("building OpenCL kernels"), "\(warm.err)")
        let quiet = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: quiet) }
        let silenced = try run(
            tool, ["grad", "x * x", "--at", "x=2", "--device", cl.name],
            environment: ["TAPECL_CACHE_DIR": quiet.path, "TAPECL_QUIET": "1"])
        #expect(silenced.err.isEmpty, "\(silenced.err)")
    }
}

@Suite("Memory a user would notice")
struct DeviceMemoryTests {
    /// Adam's bias corrections are new numbers every step: they used to fill the per-device
    /// constant cache (222 live allocations at step 100, 4,022 at step 2,000 on opencl:0).
    @Test(arguments: devices)
    func adamStepsDoNotAccumulateDeviceMemory(device: Device) throws {
        let own = device.isolated()
        defer { own.release() }
        try withDevice(own) {
            let w = Variable(Tensor.randomNormal(shape: [4, 3], seed: 1))
            let adam = Adam(learningRate: 0.01)
            func step() throws {
                let tape = GradientTape()
                let loss = tape.record { (w * w).sum() }
                adam.update([w], gradients: try tape.gradient(of: loss, wrt: [w]))
            }
            for _ in 0..<200 { try step() }
            let (live, bytes) = (own.memory.liveAllocations, own.memory.liveBytes)
            for _ in 0..<400 { try step() }
            #expect(own.memory.liveAllocations == live)
            #expect(own.memory.liveBytes == bytes)
            #expect(own.constantCount <= Device.constantCapacity)
            _ = w.value.scalars
        }
    }

    /// A device made by `isolated()` (W5, the memory tests) is freed with its cached blocks once
    /// released: its constants no longer keep it alive (a leak LeakSanitizer saw in `bench W5`).
    @Test(arguments: devices)
    func isolatedDeviceIsFreedAfterRelease(device: Device) {
        weak var core: DeviceCore?
        do {
            let own = device.isolated()
            core = own.core
            withDevice(own) {
                let x = Tensor.ones(shape: [1000])
                _ = (x * 0.5 + 2).sum().scalar  // two cached constants, a cached block
            }
            own.release()
        }
        #expect(core == nil)
    }
}

@Suite("Thread safety")
struct ThreadSafetyTests {
    /// Four threads recording on one tape at once (it segfaulted): every entry is kept, and each
    /// thread's gradient is its own.
    @Test(arguments: devices)
    func oneTapeFromFourThreads(device: Device) throws {
        let x = Tensor.randomNormal(shape: [64], seed: 3, on: device)
        let tape = GradientTape(persistent: true)
        tape.watch(x)
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            for k in 0..<100 {
                let y = tape.record { (x * Double(i + 1) + Double(k)).sum() }
                results.add(i, y)
            }
        }
        let all = results.all
        #expect(all.count == 400)
        for (i, y) in all.enumerated() where i % 37 == 0 {
            let g = try tape.gradient(of: y.1, wrt: x)
            expectClose(g, [Double](repeating: Double(y.0 + 1), count: 64))
        }
        let acc = ForwardAccumulator(primals: [x], tangents: [Tensor.ones(shape: [64], on: device)])
        let pushed = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            for _ in 0..<50 { pushed.add(i, acc.record { (x * Double(i + 1)).sum() }) }
        }
        for (i, y) in pushed.all { expectClose(acc.jvp(y), [64 * Double(i + 1)], tol: 1e-5) }
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [(Int, Tensor)] = []
        func add(_ i: Int, _ t: Tensor) { lock.withLock { items.append((i, t)) } }
        var all: [(Int, Tensor)] { lock.withLock { items } }
    }
}

@Suite("Array literals of tensors")
struct StackTests {
    /// `let s: Tensor = [a, b]` is a recorded stack, as TensorFlow packs a list of tensors (every
    /// gradient through it was nil): loss = Σ w ⊙ [2a, b²] with w = [[1, 2], [3, 4]].
    @Test(arguments: devices)
    func arrayLiteralIsARecordedStack(device: Device) throws {
        try withDevice(device) {
            let a = Variable(Tensor([1, 2]))
            let b = Tensor([3, 4])
            let tape = GradientTape()
            tape.watch(b)
            let loss = tape.record { () -> Tensor in
                let s: Tensor = [a * 2, b * b]
                return (s * Tensor([[1, 2], [3, 4]])).sum()
            }
            let g = try tape.gradient(of: loss, wrt: [a, b])
            expectClose(g[0], [2, 4], shape: [2])
            expectClose(g[1], [18, 32], shape: [2])
            expectClose(loss, [2 + 8 + 27 + 64])
        }
    }

    @Test(arguments: devices)
    func stackAlongEveryAxisMatchesTensorFlow(device: Device) throws {
        let a = Tensor([[1, 2, 3], [4, 5, 6]], on: device)
        let b = a + 10
        // tf.stack([a, b], axis=k) for k = 0, 1, 2 and -1.
        expectClose(stack([a, b]), [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16], shape: [2, 2, 3])
        expectClose(stack([a, b], axis: 1), [1, 2, 3, 11, 12, 13, 4, 5, 6, 14, 15, 16], shape: [2, 2, 3])
        expectClose(stack([a, b], axis: 2), [1, 11, 2, 12, 3, 13, 4, 14, 5, 15, 6, 16], shape: [2, 3, 2])
        expectClose(stack([a, b], axis: -1), [1, 11, 2, 12, 3, 13, 4, 14, 5, 15, 6, 16], shape: [2, 3, 2])
        let nested: Tensor = [[1, 2], [3, 4]]
        expectClose(nested, [1, 2, 3, 4], shape: [2, 2])
        let empty: Tensor = []
        #expect(empty.shape == [0])
        #expect(throws: TapeError.self) { try Tensor.stacked([a, Tensor([1, 2], on: device)], axis: 0) }
        #expect(throws: TapeError.self) { try Tensor.stacked([a, b], axis: 3) }
        #expect(throws: TapeError.self) { try Tensor.stacked([], axis: 0) }
    }
}
