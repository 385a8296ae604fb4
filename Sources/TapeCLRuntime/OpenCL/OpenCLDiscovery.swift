import COpenCL
import Foundation
import TapeCLKernels

// Finding OpenCL devices, and PoCL's cache folder.
extension OpenCLBackend {
    /// Every device of every platform, in platform order. Called once (by the device registry).
    static func discover() -> [OpenCLBackend] {
        // A write past `ulimit -f` (PoCL's kernel cache, a saved file) fails with EFBIG, reported
        // where it happens, instead of killing the process without a word.
        if let own = signal(SIGXFSZ, SIG_IGN) { signal(SIGXFSZ, own) }  // a program's own choice stays (SIG_DFL is nil)
        let poclCache = preparePoCLCache()
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
            let name = clString { clGetPlatformInfo(platform, cl_platform_info(CL_PLATFORM_NAME), $0, $1, $2) }
            if name == "Portable Computing Language", let problem = poclCacheProblem(poclCache) {
                Notices.warnOnce(
                    "pocl-skipped",
                    "skipping PoCL's devices: its kernel cache cannot take new files (\(problem)), and PoCL stops the "
                        + "process when a cache write fails")
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

    /// Why PoCL could not write its kernel cache, if it could not: a file-size limit under 8 MiB
    /// (`ulimit -f`; PoCL's files reach about 100 KB, its temporary ones more), or under 64 MiB free
    /// on the cache's disk. PoCL aborts the process ("Generic WG function binary does not exist")
    /// or dies of SIGXFSZ on such a write, so its devices are better skipped with a warning.
    static func poclCacheProblem(_ folder: String) -> String? {
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
            limit.rlim_cur < 8 << 20
        {
            return "the file size limit (ulimit -f) is \(limit.rlim_cur) bytes"
        }
        var disk = statvfs()
        if statvfs(folder, &disk) == 0 {
            let free = UInt64(disk.f_bavail) * UInt64(disk.f_frsize)
            if free < 64 << 20 { return "\(folder) is on a disk with \(free) bytes free" }
        }
        return nil
    }

    /// PoCL drops a device (or fails every build) when it cannot write its kernel-cache folder:
    /// a user's `POCL_CACHE_DIR` that is not a writable folder is reported once; unset, PoCL is
    /// pointed at a writable one. Only absolute `XDG_CACHE_HOME` and `HOME` count (an empty or
    /// relative one would create folders in the current directory).
    /// - Returns: the folder PoCL caches its kernels in.
    static func preparePoCLCache() -> String {
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
            return dir
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
            return base.appendingPathComponent("pocl").path
        }
        let fallback = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-pocl-cache")
        try? FileManager.default.createDirectory(at: fallback, withIntermediateDirectories: true)
        setenv("POCL_CACHE_DIR", fallback.path, 1)
        return fallback.path
    }
}
