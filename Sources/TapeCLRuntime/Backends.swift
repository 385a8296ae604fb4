// The device families of this build. A backend is a folder of this target (`Host/` and `OpenCL/`
// are two) with a type conforming to `Backend` and a `DeviceFamily` that finds its devices; adding
// one adds its line here, and nothing else in TapeCL changes (see the "Adding a backend" article).

extension DeviceFamily {
    /// The families whose devices follow the host in `Device.all`, in this order.
    static let registered: [DeviceFamily] = [
        .openCL
    ]
}
