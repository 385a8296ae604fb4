import COpenCL
import Foundation
import TapeCLKernels

// Plans for the ops that are more than one kernel: device copies, reductions, matmul.
extension OpenCLBackend {
    /// A device-side copy (`clEnqueueCopyBuffer`), queued behind the batch like a kernel.
    func copy(_ source: Buffer, from: Int, to target: Buffer, at: Int, bytes: Int) throws {
        guard bytes > 0 else { return }
        let waits: [cl_event?] = try closedGate().map { [$0] } ?? []
        let status = waits.withUnsafeBufferPointer { w in
            clEnqueueCopyBuffer(
                queue, OpaquePointer(source.handle), OpaquePointer(target.handle), from, at, bytes,
                cl_uint(w.count), w.isEmpty ? nil : w.baseAddress, nil)
        }
        try check(status, "clEnqueueCopyBuffer")
        queued = true
        gated += 1
        if gated >= Self.batch { openGate() }
    }

    func reduce(_ l: Launch, _ kind: ReduceKind) throws {
        let lanes = ReduceOrder.lanes
        let chunk = ReduceOrder.chunk
        guard maxWorkGroupSize >= lanes else {
            throw Unsupported(reason: "work groups of \(lanes) items are too large here")
        }
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.parameters.reduction.axes)
        guard extent < Int(Int32.max) else { throw Unsupported(reason: "reduction of \(extent) elements") }
        let rows = try kernel("reduce_rows_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
        let x = Argument.buffer(l.inputs[0].buffer.handle)
        let out = Argument.buffer(l.output.handle)
        if inner == 1 && extent > chunk {
            let chunks = (extent + chunk - 1) / chunk
            let partial = try allocate(bytes: outer * chunks * l.dtype.byteSize)
            defer { free(partial) }  // OpenCL keeps it alive until the queued kernels are done
            let chunked = try kernel("reduce_chunks_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
            try set(chunked, [x, .buffer(partial), .int(Int32(extent)), .int(Int32(chunks)), .int(Int32(chunk))])
            try enqueue(chunked, global: [outer * chunks * lanes / 8], local: [lanes / 8])
            try set(rows, [.buffer(partial), out, .int(Int32(chunks)), .int(1)])
            try enqueue(rows, global: [outer * lanes], local: [lanes])
        } else if inner % 8 == 0 {  // eight columns to a work-group
            let columns = try kernel("reduce_cols8_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
            try set(columns, [x, out, .int(Int32(extent)), .int(Int32(inner))])
            try enqueue(columns, global: [outer * inner / 8 * lanes], local: [lanes])
        } else {
            try set(rows, [x, out, .int(Int32(extent)), .int(Int32(inner))])
            try enqueue(rows, global: [outer * inner * lanes], local: [lanes])
        }
    }

    /// op(A)·op(B) as in `matmul.cl`: pack op(B) into zero-padded panels (this also applies its
    /// transpose), then one work-item of `gemm` per 6 × 2·VEC block of C, reading op(A) where it is
    /// or, for a transposed A with long k, from panels packed the same way.
    func matmul(_ l: Launch) throws {
        let (variant, ran) = try matmulVariant(l)
        if !ran { try matmul(l, variant) }
    }

    /// op(A)·op(B) by `variant`.
    func matmul(_ l: Launch, _ variant: KernelVariants.Matmul) throws {
        switch variant {
        case .tiled(let tile): try matmulTiled(l, tile: tile)
        case .packed(let vector): try matmulPacked(l, vector: vector)
        }
    }

    /// op(A)·op(B) by `gemm` with blocks of 6 × 2·`vector` (see ``matmul(_:)``).
    func matmulPacked(_ l: Launch, vector: Int) throws {
        let (a, b) = (l.inputs[0], l.inputs[1])
        let g = MatmulShape(a.shape, b.shape, l.parameters.transposes.a, l.parameters.transposes.b)!
        let (rows, cols) = (6, 2 * vector)  // PANEL_ROWS, PANEL_COLS
        let (panelsA, panelsB) = ((g.m + rows - 1) / rows, (g.n + cols - 1) / cols)
        let (batchA, batchB) = (a.rank == 3 ? g.batch : 1, b.rank == 3 ? g.batch : 1)
        let (ta, tb) = (l.parameters.transposes.a, l.parameters.transposes.b)
        let pack = try kernel("pack", family: "matmul", dtype: l.dtype)
        let packedB = try allocate(bytes: batchB * panelsB * g.k * cols * l.dtype.byteSize)
        defer { free(packedB) }  // kept alive by OpenCL until the kernels are done
        try set(
            pack,
            [
                .buffer(b.buffer.handle), .ulong(UInt64(g.k * g.n)), .int(Int32(tb ? g.k : g.n)), .int(tb ? 0 : 1),
                .int(Int32(g.n)), .int(Int32(g.k)), .int(Int32(cols)), .buffer(packedB),
            ])
        try enqueue(pack, global: [(g.k + 7) / 8, panelsB, batchB])
        // op(A) is read where it is; a transposed A only while a block's k steps (one cache line each) fit
        // a 32 KiB L1 cache, and packed into panels beyond that. Row i of op(A) starts at
        // (i / 6)·panelStep + (i % 6)·rowStep and steps by kStep along k.
        let packsA = ta && g.k > Self.inPlaceTransposedK
        let packedA = packsA ? try allocate(bytes: batchA * panelsA * g.k * rows * l.dtype.byteSize) : nil
        defer { packedA.map(free) }
        if let packedA {
            try set(
                pack,
                [
                    .buffer(a.buffer.handle), .ulong(UInt64(g.m * g.k)), .int(Int32(g.m)), .int(1),
                    .int(Int32(g.m)), .int(Int32(g.k)), .int(Int32(rows)), .buffer(packedA),
                ])
            try enqueue(pack, global: [(g.k + 7) / 8, panelsA, batchA])
        }
        let (rowStep, kStep) = packsA ? (1, rows) : ta ? (1, g.m) : (g.k, 1)
        let panelStep = packsA ? rows * g.k : rows * rowStep
        let strideA = batchA == 1 ? 0 : packsA ? panelsA * g.k * rows : g.m * g.k
        let gemm = try kernel("gemm", family: "matmul", dtype: l.dtype, defines: "-DVEC=\(vector)")
        try set(
            gemm,
            [
                .int(Int32(g.m)), .int(Int32(g.n)), .int(Int32(g.k)), .buffer(packedA ?? a.buffer.handle),
                .ulong(UInt64(strideA)), .int(Int32(panelStep)), .int(Int32(rowStep)), .int(Int32(kStep)),
                .buffer(packedB), .ulong(UInt64(batchB > 1 ? panelsB * g.k * cols : 0)), .buffer(l.output.handle),
            ])
        try enqueue(gemm, global: [panelsB, panelsA, g.batch])
    }

    /// The longest k of a transposed A that `gemm` reads where it is (see `matmul`).
    static let inPlaceTransposedK = 512

    /// op(A)·op(B) by `gemm_tiled`: one 16 × 16 work-group per `tile` × `tile` block of C, reading
    /// the operands where they are (the transposes are the kernel's), no packing.
    func matmulTiled(_ l: Launch, tile: Int) throws {
        let (a, b) = (l.inputs[0], l.inputs[1])
        let (ta, tb) = (l.parameters.transposes.a, l.parameters.transposes.b)
        let g = MatmulShape(a.shape, b.shape, ta, tb)!
        let gemm = try kernel("gemm_tiled", family: "matmul", dtype: l.dtype, defines: "-DTILE=\(tile)")
        try set(
            gemm,
            [
                .int(Int32(g.m)), .int(Int32(g.n)), .int(Int32(g.k)),
                .buffer(a.buffer.handle), .ulong(UInt64(a.rank == 3 ? g.m * g.k : 0)), .int(Int32(ta ? g.m : g.k)),
                .int(ta ? 1 : 0),
                .buffer(b.buffer.handle), .ulong(UInt64(b.rank == 3 ? g.k * g.n : 0)), .int(Int32(tb ? g.k : g.n)),
                .int(tb ? 1 : 0),
                .buffer(l.output.handle),
            ])
        let groups = ((g.n + tile - 1) / tile, (g.m + tile - 1) / tile)
        try enqueue(gemm, global: [groups.0 * 16, groups.1 * 16, g.batch], local: [16, 16, 1])
    }
}
