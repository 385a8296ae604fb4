// OpenCL's devices: their family (registered in Backends.swift) and the public list of them.

extension DeviceFamily {
    /// Every device of every OpenCL platform (see `OpenCLBackend.discover()`), named `opencl:N`.
    static let openCL = DeviceFamily(name: "opencl", cacheLimit: 1 << 30) { OpenCLBackend.discover() }
}

extension Device {
    /// The OpenCL devices, in `opencl:N` order.
    public static var openCL: [Device] { Registry.shared.devices(of: DeviceFamily.openCL.name) }
}
