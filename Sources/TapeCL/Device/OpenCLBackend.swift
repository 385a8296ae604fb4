import COpenCL

final class OpenCLBackend: Backend {
    static func discover() -> [OpenCLBackend] { [] }
    var info: DeviceInfo { fatalError() }
    func allocate(bytes: Int) throws -> UnsafeMutableRawPointer { fatalError() }
    func free(_ handle: UnsafeMutableRawPointer) {}
    func write(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer) throws {}
    func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws {}
    func run(_ launch: Launch) throws {}
}
