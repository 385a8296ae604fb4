import Foundation
@_spi(Runtime) import TapeCL
import Testing

/// `concat(_:axis:)`, `x[i]`, `x[range]`, raw bytes in and out, and the walk's `whenReady` hook.
@Suite("indexing, joining, bytes")
struct IndexingTests {
    @Test(arguments: devices)
    func concatAlongEachAxisAndItsGradient(device: Device) throws {
        try withDevice(device) {
            let a = Tensor(shape: [2, 2, 3], scalars: (0..<12).map(Float.init))
            let b = Tensor(shape: [2, 1, 3], scalars: (100..<106).map(Float.init))
            let c = concat([a, b], axis: 1)
            #expect(c.shape == [2, 3, 3])
            #expect(c.scalars == [0, 1, 2, 3, 4, 5, 100, 101, 102, 6, 7, 8, 9, 10, 11, 103, 104, 105])
            let d = concat([a, a], axis: -1)
            #expect(d.shape == [2, 2, 6])
            #expect(d[1][0].scalars == [6, 7, 8, 6, 7, 8])
            let tape = GradientTape()
            tape.watch([a, b])
            let weights = Tensor(shape: [2, 3, 3], scalars: (0..<18).map(Float.init))
            let y = tape.record { (concat([a, b], axis: 1) * weights).sum() }
            let g = try tape.gradient(of: y, wrt: [a, b])
            #expect(g[0]!.scalars == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14])
            #expect(g[1]!.scalars == [6, 7, 8, 15, 16, 17])
        }
    }

    @Test(arguments: devices)
    func rowsAndRangesOfTheFirstAxis(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(shape: [4, 2], scalars: (0..<8).map(Float.init))
            #expect(x[2].scalars == [4, 5])
            #expect(x[2].shape == [2])
            #expect(x[-1].scalars == [6, 7])
            #expect(x[1..<3].scalars == [2, 3, 4, 5])
            #expect(x[1...].shape == [3, 2])
            #expect(x[..<1].scalars == [0, 1])
            #expect(x[2..<2].shape == [0, 2])
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { (x[1..<3] * 3).sum() + x[-1].sum() }
            let g = try tape.gradient(of: y, wrt: x)
            #expect(g?.scalars == [0, 0, 3, 3, 3, 3, 1, 1])
        }
    }

    @Test func badIndicesAndJoinsAreErrorsNamingTheBound() throws {
        let x = Tensor(shape: [4, 2], scalars: (0..<8).map(Float.init))
        #expect(throws: TapeError.argument("x[4]: index 4 is out of range for 4 rows (-4..<4)")) { try x.row(4) }
        #expect(throws: TapeError.argument("x[-5]: index -5 is out of range for 4 rows (-4..<4)")) { try x.row(-5) }
        #expect(throws: TapeError.argument("x[3..<5]: rows 3..<5 reach outside the 4 rows of [4, 2]")) {
            try x.rows(3..<5)
        }
        #expect(
            throws: TapeError.shape(
                "concat: tensor 1 is [4, 3] but tensor 0 is [4, 2]; all dimensions but axis 0 must agree")
        ) {
            try Tensor.concatenated([x, Tensor.zeros(shape: [4, 3])], axis: 0)
        }
        #expect(throws: TapeError.argument("concat: axis 2 is out of range for rank 2 (-2..<2)")) {
            try Tensor.concatenated([x, x], axis: 2)
        }
    }

    @Test(arguments: devices)
    func rawBytesInAndOut(device: Device) throws {
        let values: [Double] = [1.5, -2, 3.25, .pi]
        let t = try values.withUnsafeBytes { try Tensor(shape: [2, 2], dtype: .float64, bytes: $0, on: device) }
        #expect(t.scalars(as: Double.self) == values)
        var back = [Double](repeating: 0, count: 4)
        try back.withUnsafeMutableBytes { try t.copyBytes(into: $0) }
        #expect(back == values)
        #expect(throws: TapeError.self) {
            try values.withUnsafeBytes { try Tensor(shape: [3], dtype: .float64, bytes: $0, on: device) }
        }
    }

    /// `whenReady` hands over each gradient once, as soon as it is final: the source used last
    /// comes first, and the values are those returned.
    @Test func gradientsAreHandedOverAsSoonAsTheyAreFinal() throws {
        let w1 = Variable(Tensor([1, 2]))
        let w2 = Variable(Tensor([3, 4]))
        let x = Tensor([0.5, -1])
        let tape = GradientTape()
        let y = tape.record { (tanh(x * w1) * w2).sum() }
        var order: [Int] = []
        var handed: [Int: [Float]] = [:]
        let g = try tape.gradient(of: y, wrt: [w1, w2, x]) { i, gradient in
            order.append(i)
            handed[i] = gradient?.scalars
        }
        #expect(order == [2, 1, 0])  // x, not watched, has none (known at once); then w2, used last; then w1
        #expect(handed[0] == g[0]?.scalars)
        #expect(handed[1] == g[1]?.scalars)
        #expect(g[2] == nil)
    }
}
