import CMPI
import Foundation
import TapeCL

/// The processes of a data-parallel job, over MPI (Open MPI or MPICH), in the shape of Horovod.
///
/// Start one process per device with `mpirun`; each takes a share of every batch
/// (``share(of:)``), records its loss on a ``DistributedGradientTape``, and applies the same
/// update with the gradients averaged over all processes. Run without `mpirun`, a program is
/// rank 0 of 1 and nothing calls MPI.
///
/// ```swift
/// import TapeCLDistributed
///
/// Distributed.broadcast(model.variables, root: 0)          // everyone starts from rank 0's values
/// let mine = try Distributed.share(of: batch.count)        // this process's rows of the batch
/// let tape = DistributedGradientTape(GradientTape())
/// let loss = tape.record { lossOn(batch[mine]) }
/// let grads = try tape.gradient(of: loss, wrt: model.variables)   // averaged over all processes
/// optimizer.update(model.variables, gradients: grads)
/// let total = Distributed.allReduce(loss, op: .mean)       // a metric over all processes
/// ```
///
/// Functions here are collective: every process must call them, in the same order, with
/// tensors of the same shapes. Shapes that differ are an error on every process, never a hang.
/// Every wait ends after `TAPECL_MPI_TIMEOUT` seconds (default 300) with an error naming it and the
/// ranks that did not arrive; a process that then exits (or exits with a non-zero status after any
/// error that the other ranks did not share) ends the whole job with `MPI_Abort`.
public enum Distributed {
    /// This process's index, `0 ..< size`.
    public static var rank: Int { MPIWorld.shared.rank }
    /// The number of processes in the job (1 without `mpirun`).
    public static var size: Int { MPIWorld.shared.size }
    /// This process's index among the processes on its own machine.
    public static var localRank: Int { MPIWorld.shared.localRank }

    /// The device this process should use: `TAPECL_DEVICE` when set; else, when the machine has
    /// several devices besides the host, the one numbered ``localRank`` modulo their number (one GPU per
    /// process, as Horovod pins them); else `Device.default`.
    public static var device: Device {
        if ProcessInfo.processInfo.environment["TAPECL_DEVICE"] != nil { return .default }
        let devices = Device.all.filter { $0 != .host }
        guard devices.count > 1 else { return .default }
        return devices[localRank % devices.count]
    }

    /// A reduction across processes.
    public enum ReduceOp: Sendable {
        /// The elementwise sum.
        case sum
        /// The elementwise mean: the sum divided by ``Distributed/size``.
        case mean
        /// The elementwise maximum.
        case max
    }

    /// `tensor` reduced elementwise over all processes; every process gets the same result, on
    /// `tensor`'s device. Not recorded on any tape. float32, float64 and int32 (`.mean` of int32
    /// truncates toward zero).
    ///
    /// Stops with a message naming the shapes when the processes' tensors differ in shape or dtype
    /// (on every process); ``allReduceChecked(_:op:)`` throws instead.
    public static func allReduce(_ tensor: Tensor, op: ReduceOp = .sum) -> Tensor {
        do { return try allReduceChecked(tensor, op: op) } catch { stop(error) }
    }

    /// ``allReduce(_:op:)``, throwing instead of stopping.
    public static func allReduceChecked(_ tensor: Tensor, op: ReduceOp = .sum) throws -> Tensor {
        let world = MPIWorld.shared
        guard world.size > 1 else { return tensor }
        try agree("Distributed.allReduce", [tensor])
        let type = try MPIWorld.ElementType(tensor.dtype)
        let mpiOp = Int32(op == .max ? TAPECL_MPI_MAX : TAPECL_MPI_SUM)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: tensor.byteCount, alignment: 16)
        defer { storage.deallocate() }
        try tensor.copyBytes(into: storage)
        try world.allReduce(storage.baseAddress!, count: tensor.count, type, mpiOp)
        if op == .mean { divide(storage, type, by: world.size) }
        return try Tensor(
            shape: tensor.shape, dtype: tensor.dtype, bytes: UnsafeRawBufferPointer(storage), on: tensor.device)
    }

    /// Sets every variable to its value on process `root`, so all processes start alike. Not recorded.
    ///
    /// Stops with a message on every process when their variables differ in number, shape or dtype;
    /// ``broadcastChecked(_:root:)`` throws instead.
    public static func broadcast(_ variables: [Variable], root: Int = 0) {
        do { try broadcastChecked(variables, root: root) } catch { stop(error) }
    }

    /// ``broadcast(_:root:)``, throwing instead of stopping.
    public static func broadcastChecked(_ variables: [Variable], root: Int = 0) throws {
        let world = MPIWorld.shared
        guard (0..<world.size).contains(root) else {
            throw TapeError.argument("Distributed.broadcast: root \(root) is not a rank (0..<\(world.size))")
        }
        guard world.size > 1 else { return }
        try agree("Distributed.broadcast", variables.map(\.value))
        for v in variables {
            let value = v.value
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: value.byteCount, alignment: 16)
            defer { storage.deallocate() }
            try value.copyBytes(into: storage)
            try world.broadcast(storage, root: root)
            v.assign(
                try Tensor(
                    shape: value.shape, dtype: value.dtype, bytes: UnsafeRawBufferPointer(storage), on: value.device))
        }
    }

    /// The rows of a batch of `count` examples that this process takes: `count` split into
    /// ``size`` contiguous shares whose lengths differ by at most one, the first ones longer.
    ///
    /// - Throws: `TapeError.argument` on every process when `count < size`, since some process
    ///   would have no examples (its mean loss would be 0/0).
    public static func share(of count: Int) throws -> Range<Int> {
        try share(of: count, rank: rank, size: size)
    }

    static func share(of count: Int, rank: Int, size: Int) throws -> Range<Int> {
        guard count >= size else {
            throw TapeError.argument(
                "Distributed.share: a batch of \(count) over \(size) processes leaves process \(size - 1) without "
                    + "examples; use a batch of at least \(size)")
        }
        let (base, extra) = count.quotientAndRemainder(dividingBy: size)
        let start = rank * base + Swift.min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Checks that every process passes tensors of the same number, shapes and dtypes: one small
    /// exchange through rank 0, so that a mismatch is the same clear error on every process.
    static func agree(_ what: String, _ tensors: [Tensor]) throws {
        let world = MPIWorld.shared
        guard world.size > 1 else { return }
        let signature = layout(tensors)
        let all = try world.allGather("\(what): agreement on the tensors' shapes", [Int64(tensors.count), signature])
        guard Set(all.map { $0[1] }).count == 1, Set(all.map { $0[0] }).count == 1 else {
            world.failingAlike()
            let counts = all.map { $0[0] }
            throw TapeError.shape(
                "\(what): the processes differ in what they pass: process \(rank) has \(tensors.count) tensors "
                    + "(layout \(String(UInt64(bitPattern: signature), radix: 16))), the processes have "
                    + "\(counts.min()!) to \(counts.max()!); every process must pass the same tensors, in the same "
                    + "order")
        }
    }

    /// Checks that every process runs with the same settings (a learning rate, a seed, a number of
    /// epochs…), before any of them trains: processes that differ would train apart without an
    /// error. One small exchange of hashes through rank 0; when they differ, a second one of the
    /// differing values, so that the error names each process's value.
    ///
    /// ```swift
    /// try Distributed.agree(on: [("--seed", "\(seed)"), ("--learning-rate", "\(learningRate)")])
    /// ```
    ///
    /// - Throws: `TapeError.argument` on every process, naming each setting that differs and
    ///   every process's value of it: `the processes disagree on --seed (rank 0: 0, rank 1: 1)`.
    public static func agree(on settings: [(name: String, value: String)]) throws {
        let world = MPIWorld.shared
        guard world.size > 1 else { return }
        let hashes = settings.map { Int64(bitPattern: stableHash("\($0.name)=\($0.value)")) }
        let all = try world.allGather("agreement on the settings", [Int64(settings.count)] + hashes)
        guard Set(all.map { $0[0] }).count == 1 else {
            world.failingAlike()
            throw TapeError.argument(
                "the processes pass different numbers of settings (\(all.map { $0[0] })); every process must run "
                    + "the same program")
        }
        let differing = settings.indices.filter { i in Set(all.map { $0[i + 1] }).count > 1 }
        guard !differing.isEmpty else { return }
        let text = Array(differing.map { settings[$0].value }.joined(separator: "\u{0}").utf8)
        let width = try world.allGather("agreement on the settings", [Int64(text.count)]).map { $0[0] }.max()!
        let values = try world.allGather(
            "agreement on the settings", text + Array(repeating: 0, count: Int(width) - text.count)
        ).map { row in
            String(decoding: row, as: UTF8.self).split(separator: "\u{0}", omittingEmptySubsequences: false)
        }
        world.failingAlike()
        let described = differing.enumerated().map { k, i in
            let each = values.enumerated().map { r, v in "rank \(r): \(k < v.count ? String(v[k]) : "?")" }
            return "\(settings[i].name) (\(each.joined(separator: ", ")))"
        }
        throw TapeError.argument(
            "the processes disagree on \(described.joined(separator: " and ")); every process must run with the same "
                + "settings")
    }

    /// Says that the error about to be thrown is found the same way on every process (a check of
    /// values they agreed on), so that a non-zero exit ends each process normally instead of
    /// aborting the job before the others have printed it.
    package static func failingAlike() { MPIWorld.shared.failingAlike() }

    /// A 64-bit FNV-1a hash of the tensors' dtypes and shapes.
    static func layout(_ tensors: [Tensor]) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: Int) {
            h = (h ^ UInt64(bitPattern: Int64(v))) &* 0x100_0000_01b3
        }
        for t in tensors {
            mix(t.dtype.byteSize * 1000 + (t.dtype.isFloatingPoint ? 1 : 0))
            mix(t.rank)
            t.shape.forEach(mix)
        }
        return Int64(bitPattern: h)
    }

    /// Divides `count` elements of `type` in place by `n` (the mean after a sum).
    static func divide(_ storage: UnsafeMutableRawBufferPointer, _ type: MPIWorld.ElementType, by n: Int) {
        func divide<T>(_ type: T.Type, _ by: T, _ op: (T, T) -> T) {
            let items = storage.bindMemory(to: T.self)
            for i in items.indices { items[i] = op(items[i], by) }
        }
        switch type {
        case .float: divide(Float.self, Float(n), /)
        case .double: divide(Double.self, Double(n), /)
        case .int32: divide(Int32.self, Int32(n), /)
        case .int64, .byte: break
        }
    }

    /// What a non-throwing collective does on bad input: the message on standard error and exit
    /// status 2 — on every process when they all found it (a disagreement), else the job is aborted.
    static func stop(_ error: any Error) -> Never {
        FileHandle.standardError.write(Data("TapeCLDistributed: \(error)\n".utf8))
        exit(2)
    }
}

// MARK: For the data-parallel benchmark (`tapecl bench W2 --distributed`)

extension Distributed {
    /// Returns once every process has called it.
    package static func barrier() throws {
        var one: Int64 = 1
        try withUnsafeMutableBytes(of: &one) { try MPIWorld.shared.allReduce($0.baseAddress!, count: 1, .int64, 0) }
    }

    /// Seconds one blocking `MPI_Allreduce` of `count` floats takes, host memory to host memory:
    /// the communication a data-parallel step cannot do without (the median of `repetitions`).
    package static func bareAllReduceSeconds(count: Int, repetitions: Int = 5) throws -> Double {
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(count, 1))
        defer { storage.deallocate() }
        _ = storage.initialize(from: repeatElement(1, count: storage.count))
        var times: [Double] = []
        for _ in 0..<repetitions {
            try barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            try MPIWorld.shared.allReduce(UnsafeMutableRawPointer(storage.baseAddress!), count: count, .float, 0)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }
}
