import Foundation
@_spi(Runtime) import TapeCL
import Testing

/// Comparisons, select, argmax/argmin, min, gather, slice and split, with values worked by hand
/// or from TensorFlow's documentation, on every device.
@Suite("selection ops")
struct SelectionTests {
    @Test(arguments: devices)
    func comparisonsGiveBoolMasksAndAreNotRecorded(device: Device) throws {
        try withDevice(device) {
            let x = Tensor([1, 2, 3, 4])
            let m = x .> 2
            #expect(m.dtype == .bool)
            #expect(m.scalars(as: Int.self) == [0, 0, 1, 1])
            #expect((2 .< x).scalars(as: Int.self) == [0, 0, 1, 1])
            #expect((x .>= Tensor([[3], [1]])).scalars(as: Int.self) == [0, 0, 1, 1, 1, 1, 1, 1])
            #expect((x .<= 2).scalars(as: Int.self) == [1, 1, 0, 0])
            #expect((x .== 3).scalars(as: Int.self) == [0, 0, 1, 0])
            #expect((x .!= 3).scalars(as: Int.self) == [1, 1, 0, 1])
            #expect((Tensor([Float.nan]) .== Tensor([Float.nan])).scalars(as: Int.self) == [0])
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { (x .> 2).cast(to: .float32) * x }
            let g = try tape.gradient(of: y, wrt: x)
            #expect(g?.scalars == [0, 0, 1, 1])  // through the product only: the mask is a constant
        }
    }

    @Test(arguments: devices)
    func selectBroadcastsAndRoutesTheGradient(device: Device) throws {
        try withDevice(device) {
            let x = Tensor([-2, -1, 1, 2])
            let leaky = select(x .> 0, x, 0.1 * x)
            expectClose(leaky, [-0.2, -0.1, 1, 2])
            let a = Tensor([[1, 2], [3, 4]])
            let b = Tensor([10, 20])
            let mask = Tensor([1, 0], dtype: .bool)
            #expect(select(mask, a, b).scalars == [1, 20, 3, 20])
            let tape = GradientTape()
            tape.watch([a, b])
            let y = tape.record { (select(mask, a, b) * Tensor([[1, 2], [3, 4]])).sum() }
            let g = try tape.gradient(of: y, wrt: [a, b])
            #expect(g[0]?.scalars == [1, 0, 3, 0])
            #expect(g[1]?.scalars == [0, 6])  // b broadcast along rows: summed back
        }
    }

    @Test(arguments: devices)
    func argmaxArgminAndMin(device: Device) throws {
        withDevice(device) {
            let x = Tensor([[1, 5, 5], [7, -1, 7]])
            #expect(x.argmax(axis: -1).scalars(as: Int32.self) == [1, 0])  // the first of ties
            #expect(x.argmax(axis: 0).scalars(as: Int32.self) == [1, 0, 1])
            #expect(x.argmin(axis: 1).scalars(as: Int32.self) == [0, 1])
            #expect(x.argmax(axis: 1).dtype == .int32)
            #expect(x.min(axes: [1]).scalars == [1, -1])
            #expect(x.min().scalar == -1)
            #expect(Tensor([[3, 1], [2, 4]], dtype: .int32).min(axes: [0]).scalars(as: Int32.self) == [2, 1])
        }
    }

    /// tf.gather's documented examples, and the gradient of repeated ids (an unsorted segment sum).
    @Test(arguments: devices)
    func gatherAsTensorFlowDocumentsIt(device: Device) throws {
        try withDevice(device) {
            let params = Tensor([0, 1, 2, 3, 4, 5])
            #expect(gather(params, indices: Tensor([Int32(3), 1])).scalars == [3, 1])
            #expect(gather(params, indices: Tensor([[Int32(2), 0], [2, 5]])).shape == [2, 2])
            #expect(gather(params, indices: Tensor([[Int32(2), 0], [2, 5]])).scalars == [2, 0, 2, 5])
            let m = Tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14], [20, 21, 22, 23, 24]])
            let cols = gather(m, indices: Tensor([Int32(1), 3]), axis: 1)
            #expect(cols.shape == [3, 2])
            #expect(cols.scalars == [1, 3, 11, 13, 21, 23])
            let tape = GradientTape()
            tape.watch(m)
            let y = tape.record {
                (gather(m, indices: Tensor([Int32(2), 0, 2]), axis: 0) * Tensor([[1], [2], [3]])).sum()
            }
            let g = try tape.gradient(of: y, wrt: m)
            #expect(g?.scalars == [2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4])  // row 2 twice: 1 + 3
        }
    }

    @Test(arguments: devices)
    func sliceAndSplit(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(shape: [3, 4], scalars: (0..<12).map(Float.init))
            let s = x.slice(begin: [0, 1], size: [2, -1])
            #expect(s.shape == [2, 3])
            #expect(s.scalars == [1, 2, 3, 5, 6, 7])
            #expect(x.slice(begin: [1, 0], size: [2, 4]).scalars == (4..<12).map(Float.init))
            let parts = split(x, sizes: [1, -1], axis: 1)
            #expect(parts.map(\.shape) == [[3, 1], [3, 3]])
            #expect(parts[0].scalars == [0, 4, 8])
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { (x.slice(begin: [1, 1], size: [1, 2]) * Tensor([[2, 3]])).sum() }
            let g = try tape.gradient(of: y, wrt: x)
            #expect(g?.scalars == [0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0])
        }
    }

    @Test func badIndicesAreErrorsNamingTheValueAndBound() throws {
        let x = Tensor([[1, 2], [3, 4]])
        #expect(
            throws: TapeError.argument(
                "gather: index 2 (at position 1 of the indices) is out of range for axis 0 of [2, 2] (0..<2)")
        ) {
            try Tensor.gathered(x, Tensor([Int32(0), 2]), axis: 0)
        }
        #expect(
            throws: TapeError.argument(
                "gather: index -1 (at position 0 of the indices) is out of range for axis 1 of [2, 2] (0..<2)")
        ) {
            try Tensor.gathered(x, Tensor([Int32(-1)]), axis: 1)
        }
        #expect(throws: TapeError.argument("slice: axis 1: elements 1..<3 reach outside 0..<2 of [2, 2]")) {
            try x.sliceChecked(begin: [0, 1], size: [1, 2])
        }
        #expect(throws: TapeError.shape("split: sizes [1, 2] do not add up to 2, axis 0 of [2, 2]")) {
            try x.splitChecked(sizes: [1, 2], axis: 0)
        }
        // Tensor.apply, the throwing way in: the same errors, and results like the operators'
        #expect(
            throws: TapeError.argument(
                "gather: index 5 (at position 0 of the indices) is out of range for axis 1 of [2, 2] (0..<2)")
        ) {
            try Tensor.apply("gather", [x, Tensor([Int32(5)])], axes: [1])
        }
        #expect(throws: TapeError.dtype("select: the mask is float32; it must be bool (a comparison's result)")) {
            try Tensor.apply("select", [x, x, x])
        }
        #expect(try Tensor.apply("select", [x .> 2, x, -x]).scalars == [-1, -2, 3, 4])
        #expect(try Tensor.apply("argmax", [x], axes: [0]).scalars(as: Int32.self) == [1, 1])
        #expect(try Tensor.apply("compareLess", [x, Tensor(3)]).scalars(as: Int.self) == [1, 1, 0, 0])
    }

    /// An id out of range never reaches a kernel: the check reads the ids first, on every device.
    @Test func anIdOutOfRangeNeverReachesTheDevice() throws {
        guard let cl = firstOpenCLDevice() else { return }
        let x = Tensor.ones(shape: [4, 3], on: cl)
        #expect(throws: TapeError.self) { try Tensor.gathered(x, Tensor([Int32(1 << 30)], on: cl), axis: 0) }
        #expect(throws: TapeError.self) { try Tensor.gathered(x, Tensor([Int32(-5)], on: cl), axis: 1) }
    }

    @Test(arguments: devices)
    func softmaxAndLogSumExp(device: Device) throws {
        try withDevice(device) {
            expectClose(softmax(Tensor([1, 2, 3])), [0.09003057, 0.24472848, 0.66524094], tol: 1e-6)
            expectClose(Tensor([[1, 2, 3], [1000, 1000, 1000]]).logSumExp(axes: [1]), [3.4076059, 1001.0986])
            expectClose(logSoftmax(Tensor([1, 2, 3])), [-2.407606, -1.4076059, -0.40760595], tol: 1e-6)
            let x = Tensor([-2, -1, 0, 1, 2])
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { clipByValue(x, -1, 1).sum() }
            let g = try tape.gradient(of: y, wrt: x)
            #expect(g?.scalars == [0, 1, 1, 1, 0])
            #expect(clipByValue(x, -1, 1).scalars == [-1, -1, 0, 1, 1])
        }
    }

    /// `tf.one_hot`'s documented behaviour: the shape gains a last axis of `depth`; an index out of
    /// range (negative or ≥ depth) gives zeros; the dtype is float32 unless asked.
    @Test(arguments: devices) func oneHotAsTensorFlow(device: Device) throws {
        try withDevice(device) {
            let ids = Tensor(shape: [2, 2], scalars: [Int32(0), 2, -1, 3])
            let y = oneHot(ids, depth: 3)
            #expect(y.shape == [2, 2, 3] && y.dtype == .float32)
            #expect(y.scalars == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
            #expect(oneHot(Tensor([Int32(1)]), depth: 2, dtype: .float64).scalars(as: Double.self) == [0, 1])
            #expect(throws: TapeError.self) { try withErrors { oneHot(Tensor([1, 2]), depth: 3) } }
        }
    }
}
