import Foundation
import TapeCL

#if canImport(Glibc)
    import Glibc
#endif

/// Whole-file writes: a reader of the path sees the old file or the complete new one, never a part.
///
/// The bytes go to an unnamed file in the destination's folder (Linux's `O_TMPFILE`), which is
/// given a name only once it is complete and synced, then renamed over the destination; a process
/// killed while writing leaves nothing behind. Where the file system has no unnamed files, a named
/// temporary file (`.NAME.tapecl-PID.tmp`) is used and removed on every error. A symbolic link is
/// written through: its target is replaced, the link stays.
package enum FileWriting {
    /// Writes `data` to `url` as a whole.
    ///
    /// - Throws: `TapeError.argument` in one line naming the path: `disk full while writing PATH`,
    ///   `file size limit (ulimit -f) reached while writing PATH`, `no such folder: DIR`,
    ///   `is a folder: PATH`, `cannot write in DIR: permission denied`.
    package static func write(_ data: Data, to url: URL) throws {
        let path = try destination(url)
        let temporary = try Temporary(for: path)
        do {
            try data.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Glibc.write(temporary.descriptor, raw.baseAddress! + done, raw.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw failure(errno, writing: path) }
                    done += n
                }
            }
            guard fsync(temporary.descriptor) == 0 else { throw failure(errno, writing: path) }
            try temporary.publish(as: path)
        } catch {
            temporary.discard()
            throw error
        }
    }

    /// Checks, before hours of work, that `url` can be written: its folder exists and takes a new
    /// file, and it is not a folder. Leaves nothing behind.
    package static func checkWritable(_ url: URL) throws {
        let temporary = try Temporary(for: try destination(url))
        temporary.discard()
    }

    /// The path that `url` names, its symbolic links followed (a dangling link names its target).
    static func destination(_ url: URL) throws -> String {
        var path = url.path
        for _ in 0..<40 {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
                throw TapeError.argument("is a folder: \(path)")
            }
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else {
                var status = stat()
                if stat(path, &status) == 0 && (status.st_mode & S_IFMT) != S_IFREG {
                    throw TapeError.argument("is not a regular file: \(path)")  // a device or a pipe is not replaced
                }
                return path
            }
            path =
                target.hasPrefix("/")
                ? target : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
        }
        throw TapeError.argument("too many symbolic links: \(url.path)")
    }

    /// Linux's `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`, a macro Swift does not import) where its
    /// value is known, else 0: named temporary files only.
    static let unnamed: Int32 = {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
            return 0o2000_0000 | O_DIRECTORY
        #else
            return 0
        #endif
    }()

    /// Why a write to `path` failed, in one line.
    static func failure(_ code: Int32, writing path: String) -> TapeError {
        switch code {
        case ENOSPC: TapeError.argument("disk full while writing \(path)")
        case EDQUOT: TapeError.argument("disk quota exceeded while writing \(path)")
        case EFBIG: TapeError.argument("file size limit (ulimit -f) reached while writing \(path)")
        default: TapeError.argument("cannot write \(path): \(String(cString: strerror(code)))")
        }
    }

    /// An open file in the destination's folder that becomes `path` on ``publish(as:)``.
    struct Temporary {
        let descriptor: Int32
        /// The named temporary file, where the file system has no unnamed ones.
        let name: String?
        let folder: String

        /// A file in `path`'s folder (the working directory for a bare name).
        init(for path: String) throws {
            let parent = (path as NSString).deletingLastPathComponent
            let folder = parent.isEmpty ? "." : parent
            self.folder = folder
            var fd = FileWriting.unnamed != 0 ? open(folder, FileWriting.unnamed | O_WRONLY | O_CLOEXEC, 0o666) : -1
            var name: String? = nil
            if fd < 0 && (FileWriting.unnamed == 0 || [EOPNOTSUPP, EISDIR, EINVAL].contains(errno)) {
                let base = (path as NSString).lastPathComponent
                name = (folder as NSString).appendingPathComponent(".\(base).tapecl-\(getpid()).tmp")
                fd = open(name!, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o666)
            }
            guard fd >= 0 else {
                switch errno {
                case ENOENT, ENOTDIR: throw TapeError.argument("no such folder: \(folder)")
                case EACCES, EPERM: throw TapeError.argument("cannot write in \(folder): permission denied")
                case EROFS: throw TapeError.argument("cannot write in \(folder): a read-only file system")
                default: throw FileWriting.failure(errno, writing: path)
                }
            }
            (descriptor, self.name) = (fd, name)
        }

        /// Names the complete file `path` (replacing what was there) and closes it.
        func publish(as path: String) throws {
            let base = (path as NSString).lastPathComponent
            let named = name ?? (folder as NSString).appendingPathComponent(".\(base).tapecl-\(getpid()).tmp")
            if name == nil {
                unlink(named)  // a leftover of a process with this pid
                guard linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, named, AT_SYMLINK_FOLLOW) == 0 else {
                    throw FileWriting.failure(errno, writing: path)
                }
            }
            guard rename(named, path) == 0 else {
                let code = errno
                unlink(named)
                throw FileWriting.failure(code, writing: path)
            }
            close(descriptor)
        }

        /// Closes the file and removes its name, if it has one.
        func discard() {
            close(descriptor)
            if let name { unlink(name) }
        }
    }
}
