import Foundation
import TapeCL
import Testing

/// Which OpenCL implementations this run tests. `make test` installs three and names the two that
/// run the whole suite in `TAPECL_EXPECT_OPENCL` (Intel's CPU runtime and PoCL; Oclgrind runs a
/// subset in scripts/oclgrind.sh): each must be found here, so that an implementation that failed to
/// install fails the run, saying why, instead of leaving its device-parameterized tests out.
@Suite("OpenCL implementations under test")
struct ImplementationTests {
    @Test func everyExpectedImplementationIsFound() {
        let platforms = Device.openCL.map { $0.info.platform ?? "" }
        for device in Device.openCL {
            let i = device.info
            print(
                "OpenCL under test: \(device.name) \(i.platform ?? "?"), \(i.deviceName), driver \(i.driverVersion ?? "?")"
            )
        }
        guard let expected = ProcessInfo.processInfo.environment["TAPECL_EXPECT_OPENCL"], !expected.isEmpty else {
            #expect(!platforms.isEmpty, "no OpenCL device: make test installs PoCL")
            return
        }
        for name in expected.split(separator: ",").map(String.init) where !platforms.contains(name) {
            let message =
                "\(name) was expected (TAPECL_EXPECT_OPENCL) but is not among the OpenCL platforms found (\(platforms)): "
                + "make intel-opencl installs Intel's runtime into .build/intel-opencl, make deps installs PoCL"
            Issue.record(Comment(rawValue: message))
        }
    }
}
