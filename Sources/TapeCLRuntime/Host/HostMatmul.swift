import COpenBLAS
import Dispatch
import Foundation

extension HostBackend {
    func matmul(_ l: Launch) throws {
        try HostBLAS.ready()
        guard l.dtype.isFloatingPoint else {
            throw TapeError.dtype("matmul: \(l.dtype) is not supported (float32 and float64 are)")
        }
        let (a, b) = (l.inputs[0], l.inputs[1])
        let (ta, tb) = (l.parameters.transposes.a, l.parameters.transposes.b)
        let g = MatmulShape(a.shape, b.shape, ta, tb)!
        let lda = ta ? g.m : g.k
        let ldb = tb ? g.k : g.n
        let parts = g.m * g.n * g.k >= 1 << 20 ? min(hostCores, g.m) : 1
        parallelFor(g.batch * parts, grain: 1) { r in
            for item in r {
                let (batch, part) = item.quotientAndRemainder(dividingBy: parts)
                let (r0, r1) = (g.m * part / parts, g.m * (part + 1) / parts)
                // Rows r0..<r1 of op(A): row offset r0·lda, or column offset r0 when A is stored transposed.
                let ia = (a.rank == 3 ? batch * g.m * g.k : 0) + (ta ? r0 : r0 * lda)
                let ib = b.rank == 3 ? batch * g.k * g.n : 0
                let io = batch * g.m * g.n + r0 * g.n
                gemm(
                    l.dtype, ta, tb, r1 - r0, g.n, g.k, a.buffer.handle, ia, lda, b.buffer.handle, ib, ldb,
                    l.output.handle, io)
            }
        }
    }

    /// One single-threaded CBLAS product on row-major data, offsets in elements.
    func gemm(
        _ dtype: DType, _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int,
        _ a: UnsafeMutableRawPointer, _ ia: Int, _ lda: Int, _ b: UnsafeMutableRawPointer, _ ib: Int, _ ldb: Int,
        _ c: UnsafeMutableRawPointer, _ ic: Int
    ) {
        let (opA, opB) = (ta ? Int32(1) : 0, tb ? Int32(1) : 0)
        if dtype == .float32 {
            tapecl_sgemm(
                opA, opB, Int32(m), Int32(n), Int32(k), a.assumingMemoryBound(to: Float.self) + ia, Int32(lda),
                b.assumingMemoryBound(to: Float.self) + ib, Int32(ldb), c.assumingMemoryBound(to: Float.self) + ic,
                Int32(n))
        } else {
            tapecl_dgemm(
                opA, opB, Int32(m), Int32(n), Int32(k), a.assumingMemoryBound(to: Double.self) + ia, Int32(lda),
                b.assumingMemoryBound(to: Double.self) + ib, Int32(ldb), c.assumingMemoryBound(to: Double.self) + ic,
                Int32(n))
        }
    }
}

/// The geometry of `op(a) @ op(b)`: a is `[batch?, M, K]` (or `[batch?, K, M]` transposed),
/// b is `[batch?, K, N]`; a rank-2 operand is shared by every batch. `nil` when they do not fit.
@_spi(Runtime) public struct MatmulShape {
    @_spi(Runtime) public let batch: Int, m: Int, n: Int, k: Int
    @_spi(Runtime) public let output: [Int]

    @_spi(Runtime) public init?(_ a: [Int], _ b: [Int], _ ta: Bool, _ tb: Bool) {
        guard (2...3).contains(a.count), (2...3).contains(b.count) else { return nil }
        let ba = a.count == 3 ? a[0] : nil
        let bb = b.count == 3 ? b[0] : nil
        if let ba, let bb, ba != bb { return nil }
        let (ar, ac) = (a[a.count - 2], a[a.count - 1])
        let (br, bc) = (b[b.count - 2], b[b.count - 1])
        let (m, ka) = ta ? (ac, ar) : (ar, ac)
        let (kb, n) = tb ? (bc, br) : (br, bc)
        guard ka == kb else { return nil }
        self.batch = ba ?? bb ?? 1
        (self.m, self.n, self.k) = (m, n, ka)
        output = (ba ?? bb).map { [$0, m, n] } ?? [m, n]
    }
}
