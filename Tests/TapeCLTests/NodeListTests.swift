import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// A small chain's node list shares one growing storage along the chain; every list must still
/// hold exactly its own ids, in order, however the chains branch and join.
@Suite("Fusion's node lists")
struct NodeListTests {
    static func raws(_ list: NodeList) -> [UInt64] { list.ids.map(\.raw) }

    @Test func aChainSharesItsStorageAndBranchesCopy() {
        let a = NodeList.empty.adding(TensorID(raw: 1)).adding(TensorID(raw: 2))
        let b = a.adding(TensorID(raw: 3))  // on a's storage
        let c = a.adding(TensorID(raw: 4))  // a branch: 3 is already after a's end
        let again = a.adding(TensorID(raw: 3))  // the same step as b
        #expect(Self.raws(a) == [1, 2])
        #expect(Self.raws(b) == [1, 2, 3])
        #expect(Self.raws(c) == [1, 2, 4])
        #expect(Self.raws(again) == [1, 2, 3])
        #expect(Self.raws(NodeList.union(a, b, adding: TensorID(raw: 5))) == [1, 2, 3, 5])
        #expect(Self.raws(NodeList.union(b, c)) == [1, 2, 3, 4])
        #expect(Self.raws(NodeList.union(c, .empty, adding: TensorID(raw: 6))) == [1, 2, 4, 6])
        #expect(NodeList.place(of: TensorID(raw: 4), in: c.ids) == 2)
        #expect(NodeList.place(of: TensorID(raw: 3), in: c.ids) == nil)
    }

    /// Random chains, branches and joins against sets: ids grow as tensors' do, so each new id is
    /// above every id of the lists it joins.
    @Test func randomJoinsMatchSets() {
        var rng = SplitMix64(seed: 11)
        var pool: [(NodeList, Set<UInt64>)] = [(.empty, [])]
        var next: UInt64 = 1
        for _ in 0..<4000 {
            let (a, sa) = pool[Int(rng.next() % UInt64(pool.count))]
            let (b, sb) = pool[Int(rng.next() % UInt64(pool.count))]
            let id = TensorID(raw: next)
            next += 1
            let joined: NodeList
            let reference: Set<UInt64>
            switch rng.next() % 3 {
            case 0: (joined, reference) = (a.adding(id), sa.union([id.raw]))
            case 1: (joined, reference) = (NodeList.union(a, b, adding: id), sa.union(sb).union([id.raw]))
            default: (joined, reference) = (NodeList.union(a, b), sa.union(sb))
            }
            #expect(Self.raws(joined) == reference.sorted())
            #expect(joined.count == reference.count)
            pool.append((joined, reference))
            if pool.count > 64 { pool.removeFirst() }
        }
    }
}
