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
