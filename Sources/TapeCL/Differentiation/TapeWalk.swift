@_spi(Runtime) import TapeCLRuntime

// The bookkeeping of the tape walk (`GradientTape.backward`): which entries need cotangents, when
// a source's gradient is final, and where the cotangents flow.

extension GradientTape {
    /// What the walk knows before it starts, from the entries `0 ..< count` and the wanted ids:
    /// which entries' outputs lead to a wanted id (only those need cotangents), and after which
    /// entry each wanted id's cotangent is final (its first use: the walk goes backwards).
    struct WalkPlan {
        /// `reaches[k]`: entry k's output is a wanted value or depends on one.
        private var reaches: [Bool]
        private let wanted: Set<TensorID>
        /// The wanted ids that entries use, by the entry after which each is final, latest first.
        let finalAt: [(id: TensorID, entry: Int)]
        /// The wanted ids no entry uses: final before the walk.
        let unused: [TensorID]

        init(_ entries: ArraySlice<Entry>, wanted: Set<TensorID>, producer: (TensorID) -> Int) {
            self.wanted = wanted
            reaches = [Bool](repeating: false, count: entries.count)
            for id in wanted {
                let p = producer(id)
                if p >= 0 { reaches[p] = true }
            }
            let isWanted = reaches
            var firstUse: [TensorID: Int] = [:]
            for k in entries.indices {
                for link in entries[k].inputs where link.producer != GradientTape.untracked {
                    let wantedInput = link.producer >= 0 ? isWanted[link.producer] : wanted.contains(link.id)
                    if wantedInput || link.producer >= 0 && reaches[link.producer] { reaches[k] = true }
                    if wantedInput && firstUse[link.id] == nil { firstUse[link.id] = k }
                }
            }
            finalAt = firstUse.sorted { $0.value > $1.value }.map { (id: $0.key, entry: $0.value) }
            unused = wanted.filter { firstUse[$0] == nil }
        }

        /// Whether a cotangent must flow to `link`: it leads to a wanted id.
        @inline(__always)
        func needs(_ link: Link) -> Bool { link.producer >= 0 ? reaches[link.producer] : wanted.contains(link.id) }
    }

    /// The cotangents of one walk: entry k's output's in `flowing[k]`, a leaf's (an id that no
    /// walked entry produced) by its id. Summed as they arrive.
    struct Flow {
        private var flowing: [Tensor?]
        private var leaves: [TensorID: Tensor] = [:]

        init(count: Int) { flowing = [Tensor?](repeating: nil, count: count) }

        /// Adds `g` to the cotangent of `link`'s value.
        @inline(__always)
        mutating func add(_ g: Tensor, to link: Link) {
            let p = link.producer
            if p >= 0 {
                flowing[p] = flowing[p].map { $0 + g } ?? g
            } else {
                leaves[link.id] = leaves[link.id].map { $0 + g } ?? g
            }
        }

        /// Entry k's output's cotangent, taken out (so freed once the step is done).
        @inline(__always)
        mutating func take(_ k: Int) -> Tensor? { flowing[k].take() }

        /// The cotangent of `link`'s value so far.
        @inline(__always)
        func value(_ link: Link) -> Tensor? { link.producer >= 0 ? flowing[link.producer] : leaves[link.id] }
    }
}
