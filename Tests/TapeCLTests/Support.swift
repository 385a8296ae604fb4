import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// Every device this machine has: the host and each OpenCL device. Device-parameterized tests
/// run once per entry, so the test report counts the OpenCL runs.
let devices = Device.all

/// The first OpenCL device; a missing one is a failure, never a skip (`make test` installs PoCL).
func firstOpenCLDevice(sourceLocation: SourceLocation = #_sourceLocation) -> Device? {
    guard let device = Device.openCL.first else {
        Issue.record("no OpenCL device: this machine's make test installs PoCL", sourceLocation: sourceLocation)
        return nil
    }
    return device
}

/// PoCL's device (the tests of PoCL's own settings, such as `POCL_CACHE_DIR`, need it, whichever
/// index it has); a missing one is a failure, never a skip.
func poclDevice(sourceLocation: SourceLocation = #_sourceLocation) -> Device? {
    guard let device = Device.openCL.first(where: { $0.info.platform == "Portable Computing Language" }) else {
        Issue.record("no PoCL device: this machine's make test installs PoCL", sourceLocation: sourceLocation)
        return nil
    }
    return device
}

/// Expects `actual`'s elements to equal `expected` within `tol` (absolute, and relative to |expected|).
func expectClose(
    _ actual: Tensor?, _ expected: [Double], shape: [Int]? = nil, tol: Double = 1e-6,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let actual else {
        Issue.record("expected \(expected), got nil", sourceLocation: sourceLocation)
        return
    }
    if let shape { #expect(actual.shape == shape, sourceLocation: sourceLocation) }
    let values = actual.scalars(as: Double.self)
    guard values.count == expected.count else {
        Issue.record(
            "expected \(expected.count) elements, got \(values.count): \(values)", sourceLocation: sourceLocation)
        return
    }
    for (i, (a, e)) in zip(values, expected).enumerated() where !(abs(a - e) <= tol * max(1, abs(e))) {
        Issue.record("element \(i): \(a) vs expected \(e) (tolerance \(tol))", sourceLocation: sourceLocation)
        return
    }
}

/// Expects two tensors to agree elementwise (shapes equal, |a−b| ≤ atol + rtol·|b|); records the worst element.
func expectClose(
    _ a: Tensor?, _ b: Tensor?, atol: Double, rtol: Double, _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let a, let b else {
        if (a == nil) != (b == nil) {
            Issue.record("\(what): one side is nil (\(a == nil), \(b == nil))", sourceLocation: sourceLocation)
        }
        return
    }
    #expect(a.shape == b.shape, "\(what)", sourceLocation: sourceLocation)
    let x = a.scalars(as: Double.self)
    let y = b.scalars(as: Double.self)
    var worst: (Int, Double, Double)? = nil
    for i in x.indices where !(abs(x[i] - y[i]) <= atol + rtol * abs(y[i])) {
        if worst == nil || abs(x[i] - y[i]) > abs(worst!.1 - worst!.2) { worst = (i, x[i], y[i]) }
    }
    if let (i, u, v) = worst {
        Issue.record(
            "\(what): element \(i) of \(x.count): \(u) vs \(v) (atol \(atol), rtol \(rtol))",
            sourceLocation: sourceLocation)
    }
}

/// The Float32 a TensorFlow print shows, as Double (so the tests compare to the printed digits).
func f32(_ printed: Float) -> Double { Double(printed) }
