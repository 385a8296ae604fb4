import Foundation
import TapeCL
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

/// A folder on a tmpfs of `bytes` bytes (a disk that fills), for `body`; unmounted after it.
func withSmallDisk<T>(bytes: Int, _ body: (URL) throws -> T) throws -> T {
    let folder = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let mount = try run(
        URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", folder.path])
    guard mount.status == 0 else { throw TapeError.argument("mount: \(mount.err)") }
    defer { _ = try? run(URL(fileURLWithPath: "/bin/umount"), [folder.path]) }
    return try body(folder)
}

/// Whether this machine lets the tests mount a tmpfs (root with CAP_SYS_ADMIN, as here and in CI).
let canMountSmallDisks: Bool = (try? withSmallDisk(bytes: 4096) { _ in true }) ?? false

/// The files in `folder`, hidden ones too.
func contents(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
}

/// `sh -c 'ulimit -f BLOCKS; exec tapecl ARGUMENTS'` (1 KiB blocks).
func tapeclUnderFileLimit(
    _ blocks: Int, _ arguments: [String], in directory: URL
) throws -> (status: Int32, out: String, err: String) {
    let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "tapecl")
    let quoted = ([tool.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
    return try run(URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -f \(blocks); exec \(quoted)"], in: directory)
}

/// Nothing a user had is lost, and a full disk or a file-size limit is one line, not a signal
/// (issue 28, items 8, 10, 11 and 12).
@Suite("files, disks and cold starts under faults", .serialized)
struct FaultTests {
    static let train = ["train", "--epochs", "2", "--device", "host"]

    /// `--save` into a folder that does not exist failed after training, and the weights were lost.
    @Test func saveIsCheckedBeforeTraining() throws {
        let r = try tapecl(Self.train + ["--save", "/nonexistent/dir/w.safetensors"])
        #expect(r.status == 2)
        #expect(r.out.isEmpty, "it trained first: \(r.out)")
        #expect(r.err == "error: --save: no such folder: /nonexistent/dir\n")
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let onFolder = try tapecl(Self.train + ["--save", folder.path])
        #expect(onFolder.status == 2 && onFolder.out.isEmpty)
        #expect(onFolder.err == "error: --save: is a folder: \(folder.path)\n")
    }

    /// `--save` onto a symbolic link replaced the link with a file; it now writes the link's target,
    /// as a whole, and leaves nothing else in the folder.
    @Test func saveWritesThroughASymlinkAndLeavesNoDebris() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("weights.safetensors")
        let link = folder.appendingPathComponent("latest.safetensors")
        try Data("old".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "weights.safetensors")
        let r = try tapecl(Self.train + ["--save", link.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == "weights.safetensors")
        #expect(try loadSafetensors(from: target).keys.sorted() == ["0.bias", "0.weight", "1.bias", "1.weight"])
        #expect(contents(folder) == ["latest.safetensors", "weights.safetensors"])
        let reloaded = try tapecl(["train", "--epochs", "0", "--device", "host", "--load", link.path])
        #expect(reloaded.status == 0, "\(reloaded.err)")
    }

    /// Under `ulimit -f` the process died of SIGXFSZ with no message; the write now fails with a line
    /// naming the file, and no partial or temporary file is left.
    @Test func aFileSizeLimitIsAnErrorNotASignal() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("w.safetensors").path
        let r = try tapeclUnderFileLimit(8, Self.train + ["--save", path], in: folder)
        #expect(r.status == 2, "\(r.err)")
        #expect(r.out.contains("held-out accuracy"))
        #expect(
            r.err.contains(
                "\nerror: --save: file size limit (ulimit -f) reached while writing \(path); the weights could "),
            "\(r.err)")
        #expect(contents(folder).isEmpty, "\(contents(folder))")
    }

    /// A disk that fills while training: the error says so and where the weights went instead.
    @Test(.enabled(if: canMountSmallDisks, "cannot mount a tmpfs here (needs root)"))
    func aFullDiskSavesTheWeightsElsewhere() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try withSmallDisk(bytes: 8192) { disk in
            let path = disk.appendingPathComponent("w.safetensors").path
            let r = try run(
                URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                    "tapecl"),
                Self.train + ["--save", path], in: work)
            #expect(r.status == 2)
            let saved = try #require(contents(work).first, "no weights in the working directory")
            #expect(
                r.err == "error: --save: disk full while writing \(path); the trained weights are in "
                    + "\(work.appendingPathComponent(saved).path) instead\n", "\(r.err)")
            #expect(try loadSafetensors(from: work.appendingPathComponent(saved)).count == 4)
            #expect(contents(disk).isEmpty, "debris on the full disk: \(contents(disk))")
        }
    }

    /// TapeCL's kernel cache on a full disk left a `.tmp` file per program; now it leaves none, and
    /// says once that the cache cannot be written.
    @Test(.enabled(if: canMountSmallDisks && poclDevice() != nil, "needs PoCL and a tmpfs (root)"))
    func aFullCacheDiskLeavesNoTemporaryFiles() throws {
        let device = try #require(poclDevice())
        try withSmallDisk(bytes: 4096) { cache in
            let r = try tapecl(
                ["grad", "sum(tanh(x)*x)", "--at", "x=[1,2]", "--device", device.name],
                environment: ["TAPECL_CACHE_DIR": cache.path])
            #expect(r.status == 0, "\(r.err)")
            #expect(r.out == "f = 2.6896493\ndf/dx = [1.1815685, 1.1053293]\n", "\(r.out)")
            #expect(r.err.components(separatedBy: "the kernel cache cannot be written").count == 2, "\(r.err)")
            #expect(contents(cache).allSatisfy { !$0.hasSuffix(".tmp") }, "\(contents(cache))")
        }
    }

    /// PoCL aborted ("Generic WG function binary does not exist") or died of SIGXFSZ when its kernel
    /// cache could not take a file; its devices are now skipped with a warning, and the host runs.
    @Test func aFileLimitTooSmallForPoCLSkipsItWithAWarning() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let r = try tapeclUnderFileLimit(64, ["grad", "tanh(x)*x", "--at", "x=1"], in: folder)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "f = 0.7615942\ndf/dx = 1.1815685\n")
        if Device.openCL.contains(where: { $0.info.platform == "Portable Computing Language" }) {
            #expect(r.err.contains("skipping PoCL's devices: its kernel cache cannot take new files"), "\(r.err)")
        }
    }

    /// Processes starting cold at once each built every program (and six of 66 once failed to);
    /// now the first build of a program is serialised, the others load its binary.
    @Test(.enabled(if: poclDevice() != nil, "needs PoCL"))
    func concurrentColdStartsBuildEachProgramOnce() throws {
        let device = try #require(poclDevice())
        let (pocl, cache) = (try temporaryDirectory(), try temporaryDirectory())
        defer {
            try? FileManager.default.removeItem(at: pocl)
            try? FileManager.default.removeItem(at: cache)
        }
        let environment = ["POCL_CACHE_DIR": pocl.path, "TAPECL_CACHE_DIR": cache.path]
        let results = Array(repeating: (Int32(0), "", ""), count: 4)
        let box = UncheckedResults(results)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let r = try? tapecl(
                ["grad", "sum(tanh(x)*x+exp(x))", "--at", "x=[1,2]", "--device", device.name], environment: environment)
            box.set(i, r ?? (-1, "", "did not start"))
        }
        let programs = contents(cache).filter { $0.hasSuffix(".bin") }.count
        var builders = 0
        for (status, out, err) in box.values {
            #expect(status == 0, "\(err)")
            #expect(out == "f = 12.796988\ndf/dx = [3.8998504, 8.494385]\n", "\(out)")
            #expect(!err.contains("warning"), "\(err)")
            if err.contains("building OpenCL kernels") { builders += 1 }
        }
        #expect(programs >= 1)
        #expect(builders <= programs, "\(builders) processes built kernels for \(programs) programs")
    }

    /// Under an address-space cap (`ulimit -v`), large tensors ended in Swift's allocation abort (the
    /// read-back array), a PoCL assertion (`pocl_create_migration_commands`) or exit 132. Under every cap
    /// tried, a 1 GiB read-back and a 4 GiB tensor now work or stop with a message naming the op, the
    /// shape and the bytes (a program's stop, in an optimised build).
    @Test(arguments: ["host"] + (poclDevice().map { [$0.name] } ?? []))
    func outOfMemoryIsAnErrorNamingTheOp(device: String) throws {
        let program = packageRoot.appendingPathComponent(".build/release/tapecl-stop").path
        var messages: Set<String> = []
        for cap in [1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000] {
            for misuse in ["read-back", "allocate"] {
                let r = try run(
                    URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -v \(cap); exec '\(program)' \(misuse) \(device)"])
                if r.status == 0 {
                    #expect(misuse == "read-back" && r.out == "268435456\n", "\(misuse) under \(cap) KiB: \(r.out)")
                    continue
                }
                let line = r.err.split(separator: "\n").first { $0.contains("Fatal error: TapeCL: ") }
                let message = try #require(line, "\(misuse) under \(cap) KiB: \(r.err.prefix(300))")
                #expect(
                    message.contains("Tensor.full: a float32 result of shape [") && message.contains("out of memory")
                        || message.contains(
                            "scalars: reading a float32 tensor of shape [268435456] into host memory: 1073741824 bytes "
                                + "of host memory cannot be had"),
                    "\(message)")
                messages.insert(String(message.components(separatedBy: "TapeCL: ")[1].prefix { $0 != ":" }))
            }
        }
        #expect(messages.contains("Tensor.full"), "\(messages)")
    }

    /// `train --hidden 3000000` under a cap exited 132 (a trap); its estimate, which now counts the
    /// held-out images evaluated at once and the memory the process can really have, refuses it.
    @Test func trainRefusesANetworkThatCannotFit() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "tapecl")
        let r = try run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "ulimit -v 4000000; exec '\(tool.path)' train --hidden 3000000 --epochs 1 --device host"], in: folder
        )
        #expect(r.status == 2)
        #expect(r.out.isEmpty)
        #expect(
            r.err.hasPrefix("error: --hidden 3000000 with --batch-size 64 needs about ")
                && r.err.contains("; host can have about ") && r.err.split(separator: "\n").count == 1, "\(r.err)")
    }

    /// Names from a file are escaped and cut: a file of 100,000 tensors printed all their names
    /// on one line, and a name with an escape sequence recoloured the terminal.
    @Test func namesFromAFileAreEscapedAndCut() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let entries = (0..<100_000).map { #""t\#($0)":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"# }
        let escape = #""\u001b[31mred":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#
        let url = folder.appendingPathComponent("many.safetensors")
        try safetensorsFile("{" + ([escape] + entries).joined(separator: ",") + "}", []).write(to: url)
        let r = try tapecl(["train", "--epochs", "0", "--device", "host", "--load", url.path])
        #expect(r.status == 2)
        #expect(
            r.err.hasPrefix(
                "error: --load: loadWeights: \(url.path): 4 missing: '0.bias', '0.weight', '1.bias', '1.weight'; "
                    + "100001 unexpected: '\\u{1B}[31mred', 't0', 't1', "), "\(r.err.prefix(300))")
        #expect(r.err.hasSuffix(" and 99993 more (--model mlp)\n"), "\(r.err.suffix(100))")
        #expect(!r.err.contains("\u{1B}") && r.err.count < 400, "\(r.err.count) characters")
    }
}

/// Results written from concurrent iterations, each to its own index.
final class UncheckedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Int32, String, String)]
    init(_ items: [(Int32, String, String)]) { self.items = items }
    func set(_ i: Int, _ value: (Int32, String, String)) { lock.withLock { items[i] = value } }
    var values: [(Int32, String, String)] { lock.withLock { items } }
}
