import Foundation
@_spi(Runtime) import TapeCL
import Testing

/// conv2d and pooling against values worked by hand with TensorFlow's rules (NHWC, HWIO, `SAME`
/// padding with the smaller half on top and left, max pooling's gradient to the first maximum).
@Suite("images")
struct ImageTests {
    static func image(_ h: Int, _ w: Int) -> Tensor {
        Tensor(shape: [1, h, w, 1], scalars: (1...(h * w)).map(Float.init))
    }

    @Test(arguments: devices)
    func conv2dSamePadsAsTensorFlow(device: Device) throws {
        withDevice(device) {
            let ones = Tensor.ones(shape: [3, 3, 1, 1])
            // 3×3 neighbourhood sums of 1...9 with a zero border: tf.nn.conv2d(x, ones, 1, 'SAME')
            let y = conv2d(Self.image(3, 3), filter: ones, strides: (1, 1), padding: .same)
            #expect(y.shape == [1, 3, 3, 1])
            #expect(y.scalars == [12, 21, 16, 27, 45, 33, 24, 39, 28])
            // 4×4, stride 2: output 2×2, one row and column of padding, at the bottom and right
            let z = conv2d(Self.image(4, 4), filter: ones, strides: (2, 2), padding: .same)
            #expect(z.scalars == [54, 45, 72, 54])
            #expect(
                conv2d(Self.image(4, 4), filter: ones, strides: (1, 1), padding: .valid).scalars == [54, 63, 90, 99])
        }
    }

    @Test(arguments: devices)
    func conv2dOfSeveralChannelsIsTheSumOverThem(device: Device) throws {
        withDevice(device) {
            let x = Tensor(shape: [1, 1, 1, 2], scalars: [2, 3])
            let w = Tensor(shape: [1, 1, 2, 3], scalars: [1, 10, 100, 2, 20, 200])  // HWIO
            #expect(conv2d(x, filter: w).scalars == [8, 80, 800])
        }
    }

    @Test(arguments: devices)
    func maxPoolSendsTheGradientToTheFirstMaximum(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(shape: [1, 2, 4, 1], scalars: [1, 1, 5, 2, 1, 1, 2, 5])
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { maxPool2d(x, size: (2, 2), strides: (2, 2)) }
            #expect(y.scalars == [1, 5])
            let g = try tape.gradient(of: y, wrt: x)
            #expect(g?.scalars == [1, 0, 1, 0, 0, 0, 0, 0])  // ties: the first in row order
        }
    }

    @Test(arguments: devices)
    func avgPoolSameAveragesTheRealElementsOnly(device: Device) throws {
        try withDevice(device) {
            let y = avgPool2d(Self.image(3, 3), size: (2, 2), strides: (2, 2), padding: .same)
            #expect(y.scalars == [3, 4.5, 7.5, 9])
            let x = Self.image(3, 3)
            let tape = GradientTape()
            tape.watch(x)
            let z = tape.record { avgPool2d(x, size: (2, 2), strides: (2, 2), padding: .same).sum() }
            let g = try tape.gradient(of: z, wrt: x)
            #expect(g?.scalars == [0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1])
        }
    }

    /// col2im's contract, bit for bit: each pixel is 0 plus its entries in the columns in (kh, kw)
    /// order. Geometries with gaps between windows (stride above the window), uneven padding
    /// and outputs large enough that the host splits them over its cores mid-pixel (3 channels).
    @Test(arguments: devices)
    func col2imAddsEachPixelsEntriesInWindowOrder(device: Device) throws {
        let geometries: [(image: [Int], size: (Int, Int), strides: (Int, Int), padding: Padding)] = [
            ([1, 37, 29, 3], (3, 3), (1, 1), .same), ([2, 23, 31, 3], (3, 3), (2, 2), .valid),
            ([3, 19, 17, 5], (2, 2), (3, 3), .valid), ([2, 21, 25, 3], (5, 4), (2, 1), .same),
        ]
        for (index, g) in geometries.enumerated() {
            let (n, h, w, c) = (g.image[0], g.image[1], g.image[2], g.image[3])
            let (kh, kw, sh, sw) = (g.size.0, g.size.1, g.strides.0, g.strides.1)
            // TensorFlow's output size and padding (the smaller half on top and left)
            let same = g.padding == .same
            let (oh, ow) = same ? ((h + sh - 1) / sh, (w + sw - 1) / sw) : ((h - kh) / sh + 1, (w - kw) / sw + 1)
            let padTop = same ? max((oh - 1) * sh + kh - h, 0) / 2 : 0
            let padLeft = same ? max((ow - 1) * sw + kw - w, 0) / 2 : 0
            let columns = Tensor.randomNormal(shape: [n * oh * ow, kh * kw * c], seed: UInt64(index + 1))
            let entries = columns.scalars
            var expected = [Float](repeating: 0, count: n * h * w * c)
            for b in 0..<n {
                for ih in 0..<h {
                    for iw in 0..<w {
                        for ch in 0..<c {
                            var sum: Float = 0
                            for u in 0..<kh {
                                for v in 0..<kw {
                                    let (th, tw) = (ih + padTop - u, iw + padLeft - v)
                                    guard th >= 0, th % sh == 0, th / sh < oh, tw >= 0, tw % sw == 0, tw / sw < ow
                                    else { continue }
                                    let row = (b * oh + th / sh) * ow + tw / sw
                                    sum += entries[(row * kh * kw + u * kw + v) * c + ch]
                                }
                            }
                            expected[((b * h + ih) * w + iw) * c + ch] = sum
                        }
                    }
                }
            }
            try withDevice(device) {
                let summed = try Tensor.imageOp(
                    "col2im", [columns.to(device)], imageShape: g.image, size: g.size, strides: g.strides,
                    padding: g.padding)
                #expect(summed.scalars.map(\.bitPattern) == expected.map(\.bitPattern), "geometry \(index)")
            }
        }
    }

    @Test func badShapesAreErrorsNamingThem() {
        let x = Tensor.zeros(shape: [1, 4, 4, 3])
        #expect(
            throws: TapeError.shape(
                "conv2d: the filter's input depth 2 (filter [3, 3, 2, 8]) differs from the input's 3 channels (input [1, 4, 4, 3])"
            )
        ) {
            try Tensor.convolved(x, Tensor.zeros(shape: [3, 3, 2, 8]), strides: (1, 1), padding: .same)
        }
        #expect(throws: TapeError.shape("conv2d: a 5×5 window does not fit in 4×4 images with .valid padding")) {
            try Tensor.convolved(x, Tensor.zeros(shape: [5, 5, 3, 1]), strides: (1, 1), padding: .valid)
        }
        #expect(throws: TapeError.shape("maxPool: the input is [4, 4]; it must be [N, H, W, C]")) {
            try Tensor.pooled(
                Op.named("maxPool")!, Tensor.zeros(shape: [4, 4]), size: (2, 2), strides: (2, 2), padding: .valid)
        }
    }
}
