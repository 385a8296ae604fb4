import COpenCL
import Foundation
import TapeCLKernels

// Finding OpenCL devices, and PoCL's cache folder.
extension OpenCLBackend {
    /// Every device of every platform, in platform order. Called once (by the device registry).
    static func discover() -> [OpenCLBackend] {
        preparePoCLCache()
        var count: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &count) == CL_SUCCESS, count > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        guard clGetPlatformIDs(count, &platforms, nil) == CL_SUCCESS else { return [] }
        var found: [OpenCLBackend] = []
        for case let platform? in platforms {
            var n: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n) == CL_SUCCESS, n > 0 else {
                continue
            }
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil) == CL_SUCCESS else {
                continue
            }
            for case let id? in ids {
                do { found.append(try OpenCLBackend(platform: platform, device: id, index: found.count)) } catch {
                    printError("TapeCL warning: skipping an OpenCL device: \(error)")
                }
            }
        }
        return found
    }

    /// PoCL drops a device (or fails every build) when it cannot write its kernel-cache folder:
    /// a user's `POCL_CACHE_DIR` that is not a writable folder is reported once; unset, PoCL is
    /// pointed at a writable one. Only absolute `XDG_CACHE_HOME` and `HOME` count (an empty or
    /// relative one would create folders in the current directory).
    static func preparePoCLCache() {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["POCL_CACHE_DIR"] {
            var isDirectory: ObjCBool = false
            let created =
                (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil
            let exists = FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory)
            let reason =
                !exists
                ? "it cannot be created"
                : !isDirectory.boolValue
                    ? "it is not a folder"
                    : !created || !FileManager.default.isWritableFile(atPath: dir) ? "it is not writable" : nil
            if let reason {
                Notices.warnOnce(
                    "pocl-cache",
                    "POCL_CACHE_DIR=\(dir) cannot hold PoCL's kernel cache (\(reason)): PoCL may hide its "
                        + "device or fail every kernel build"
                )
            }
            return
        }
        let base =
            env["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : nil }
            ?? env["HOME"].flatMap {
                $0.hasPrefix("/") ? URL(fileURLWithPath: $0).appendingPathComponent(".cache") : nil
            }
        if let base,
            (try? FileManager.default.createDirectory(
                at: base.appendingPathComponent("pocl"), withIntermediateDirectories: true)) != nil,
            FileManager.default.isWritableFile(atPath: base.appendingPathComponent("pocl").path)
        {
            return
        }
        let fallback = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-pocl-cache")
        try? FileManager.default.createDirectory(at: fallback, withIntermediateDirectories: true)
        setenv("POCL_CACHE_DIR", fallback.path, 1)
    }
}
