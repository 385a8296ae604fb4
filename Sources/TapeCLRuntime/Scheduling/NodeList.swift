import Synchronization

/// A small chain's pending tensors, sorted by id (see ``PendingOp/nodes``): a prefix of a list
/// that only grows and is shared along the chain. Ids grow (a tensor's is above its inputs'), so an
/// op on the end of a chain adds its input's id at the end of that input's list: one id, where a
/// list of its own cost a copy of up to 32 ids and an allocation per op. An op that joins two
/// branches (or whose input's list has grown past it on another branch) gets a list of its own.
///
/// ```swift
/// let a = NodeList.empty.adding(x.id)   // [x]
/// let b = a.adding(y.id)                // [x, y], in a's storage
/// NodeList.union(a, b, adding: z.id)    // [x, y, z]: a is a prefix of b, so z goes on b's end
/// ```
@_spi(Runtime) public struct NodeList: Sendable {
    /// The shared ids; this list is their first `count`.
    private let storage: Storage?
    @_spi(Runtime) public let count: Int

    private final class Storage: Sendable {
        let ids: Mutex<[TensorID]>
        @_spi(Runtime) public init(_ ids: [TensorID]) { self.ids = Mutex(ids) }
    }

    @_spi(Runtime) public static let empty = NodeList(storage: nil, count: 0)

    private init(storage: Storage?, count: Int) {
        self.storage = storage
        self.count = count
    }

    /// A list of `ids` (sorted, distinct) in storage of its own.
    @_spi(Runtime) public init(_ ids: [TensorID]) {
        (storage, count) = ids.isEmpty ? (nil, 0) : (Storage(ids), ids.count)
    }

    @_spi(Runtime) public var isEmpty: Bool { count == 0 }

    /// The ids, in increasing order.
    @_spi(Runtime) public var ids: ArraySlice<TensorID> { storage.map { $0.ids.withLock { $0 } }?[..<count] ?? [] }

    /// This list and `id`, on the shared storage's end when `id` is above every id in it and no
    /// other list has put something else there; else a list of its own.
    @_spi(Runtime) public func adding(_ id: TensorID) -> NodeList {
        if let storage {
            let shared = storage.ids.withLock { ids in
                if ids.count > count { return ids[count] == id }  // another branch added it already
                guard ids[count - 1].raw < id.raw else { return false }
                ids.append(id)
                return true
            }
            if shared { return NodeList(storage: storage, count: count + 1) }
        }
        return NodeList.union(self, NodeList([id]))  // a list of its own
    }

    /// The sorted union of `a` and `b`, and `extra` when given (an id above every id of `b`).
    /// When `a` is empty or a prefix of `b` (a value and one computed from it: W1's `y + f(y)`), it is
    /// `b` with `extra` on its end; otherwise one merge into a new list.
    @_spi(Runtime) public static func union(_ a: NodeList, _ b: NodeList, adding extra: TensorID? = nil) -> NodeList {
        if a.isEmpty || a.storage === b.storage && a.count <= b.count {
            return extra.map { b.adding($0) } ?? b
        }
        if b.isEmpty && extra == nil { return a }
        if b.isEmpty, let extra { return a.adding(extra) }
        let (a, b) = (a.ids, b.ids)
        var out: [TensorID] = []
        out.reserveCapacity(a.count + b.count + 1)
        var (i, j) = (a.startIndex, b.startIndex)
        while i < a.endIndex && j < b.endIndex {
            let (x, y) = (a[i].raw, b[j].raw)
            out.append(x <= y ? a[i] : b[j])
            i += x <= y ? 1 : 0
            j += y <= x ? 1 : 0
        }
        out += b[j...]  // `extra` goes after b's last and before a's ids above it
        if let extra {
            while i < a.endIndex && a[i].raw < extra.raw {
                out.append(a[i])
                i += 1
            }
            if i == a.endIndex || a[i] != extra { out.append(extra) }
        }
        out += a[i...]
        return NodeList(out)
    }

    /// Where `id` is in `ids` (binary search over a snapshot taken by the caller), or nil.
    @_spi(Runtime) public static func place(of id: TensorID, in ids: ArraySlice<TensorID>) -> Int? {
        var (low, high) = (ids.startIndex, ids.endIndex)
        while low < high {
            let middle = (low + high) / 2
            if ids[middle].raw < id.raw { low = middle + 1 } else { high = middle }
        }
        return low < ids.endIndex && ids[low] == id ? low - ids.startIndex : nil
    }
}
