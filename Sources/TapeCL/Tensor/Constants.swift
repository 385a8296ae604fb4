import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// Scalar tensors for the numbers in expressions (`y * 0.001` in a loop uploads 0.001 once), per
/// device and dtype.
///
/// The cache keeps the ``capacity`` most recently used values, so constants that change every
/// step (Adam's bias corrections) replace each other instead of filling device memory, and the
/// ones used every step stay uploaded.
enum Constants {
    /// Looked up for every number in an expression, so hashed with SplitMix64's two-multiply mix of
    /// its fields and the table's seed, not the general SipHash of `Hasher`.
    struct Key: Hashable {
        let device: ObjectIdentifier
        let bits: UInt64
        let dtype: DType

        private var word: UInt64 {
            let kind: UInt64 =
                switch dtype {
                case .float32: 0
                case .float64: 1
                case .int32: 2
                case .int8: 3
                case .bool: 4
                }
            return SplitMix64.mix(bits ^ kind << 56) ^ UInt64(UInt(bitPattern: device))
        }
        func hash(into hasher: inout Hasher) { hasher.combine(word) }
        func _rawHashValue(seed: Int) -> Int {
            Int(truncatingIfNeeded: SplitMix64.mix(word ^ UInt64(bitPattern: Int64(seed))))
        }
    }

    struct Entry {
        let tensor: Tensor
        var lastUse: UInt64
    }

    struct Table {
        var entries: [Key: Entry] = [:]
        var tick: UInt64 = 0
        /// Entries per device, to evict within a device.
        var counts: [ObjectIdentifier: Int] = [:]
    }

    /// How many number constants a device keeps: the least recently used goes when a new one comes.
    static let capacity = 256
    private static let table = Mutex(Table())

    /// The cached scalar for `value`, made by `make` on a miss.
    static func tensor(_ value: Double, dtype: DType, on device: Device, make: () -> Tensor) -> Tensor {
        let key = Key(device: ObjectIdentifier(device.core), bits: value.bitPattern, dtype: dtype)
        let hit: Tensor? = table.withLock { t in
            t.tick += 1
            guard let at = t.entries.index(forKey: key) else { return nil }  // one lookup
            t.entries.values[at].lastUse = t.tick
            return t.entries.values[at].tensor
        }
        if let hit { return hit }
        let made = make()
        // Never release a tensor under the lock: its buffer goes back to the device's allocator,
        // which takes a lock of its own. A thread that loses the race returns the winner's
        // tensor; the evicted one and the loser's are released after the lock is dropped.
        let (winner, evicted): (Tensor?, Tensor?) = table.withLock { t in
            if let existing = t.entries[key] { return (existing.tensor, nil) }
            var evicted: Tensor?
            if t.counts[key.device, default: 0] >= capacity,
                let oldest = t.entries.filter({ $0.key.device == key.device }).min(by: {
                    $0.value.lastUse < $1.value.lastUse
                })
            {
                evicted = t.entries.removeValue(forKey: oldest.key)?.tensor
                t.counts[key.device, default: 0] -= 1
            }
            t.entries[key] = Entry(tensor: made, lastUse: t.tick)
            t.counts[key.device, default: 0] += 1
            return (nil, evicted)
        }
        withExtendedLifetime(evicted) {}
        return winner ?? made
    }

    /// Constants cached for `device` now (for tests).
    static func count(on device: Device) -> Int {
        table.withLock { $0.counts[ObjectIdentifier(device.core), default: 0] }
    }

    /// Drops `device`'s constants (released outside the lock).
    static func drop(_ device: Device) {
        let id = ObjectIdentifier(device.core)
        let dropped = table.withLock { t in
            let mine = t.entries.filter { $0.key.device == id }
            for key in mine.keys { t.entries[key] = nil }
            t.counts[id] = nil
            return mine
        }
        withExtendedLifetime(dropped) {}
    }
}

extension Device {
    /// Drops this device's cached constants and gives its spare blocks back. A device made by
    /// `isolated()` calls this when done: its constants' buffers refer back to it, a cycle that
    /// would otherwise keep it and its cached blocks alive for the rest of the process.
    package func release() {
        Constants.drop(self)
        core.emptyCache()
    }

    /// Number constants cached for this device now, and the most it keeps (for tests).
    package var constantCount: Int { Constants.count(on: self) }
    package static var constantCapacity: Int { Constants.capacity }
}
