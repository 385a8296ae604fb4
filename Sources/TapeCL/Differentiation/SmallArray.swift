/// A fixed-length list that keeps up to two elements in the value itself and more in an array:
/// what a tape entry keeps per input of its op (its id and producer). Nearly every op has one or
/// two inputs, so a recorded op allocates nothing for them (an array cost an allocation and a free).
///
/// ```swift
/// var ids = SmallArray(count: 2) { $0 * 10 }   // [0, 10], no heap memory
/// ids[1] += 1                                   // [0, 11]
/// ```
package struct SmallArray<Element>: RandomAccessCollection, MutableCollection {
    private var first: Element?
    private var second: Element?
    /// All the elements when there are more than two (then `first` and `second` are nil).
    private var more: [Element] = []
    package let count: Int

    /// `count` elements, the `i`th made by `make(i)`.
    package init(count: Int, _ make: (Int) throws -> Element) rethrows {
        self.count = count
        if count > 2 {
            more = try (0..<count).map(make)
        } else {
            first = count > 0 ? try make(0) : nil
            second = count > 1 ? try make(1) : nil
        }
    }

    package init(_ elements: [Element]) { self.init(count: elements.count) { elements[$0] } }

    package var startIndex: Int { 0 }
    package var endIndex: Int { count }

    package subscript(i: Int) -> Element {
        get {
            precondition(i >= 0 && i < count, "SmallArray: index \(i) out of 0..<\(count)")
            if count > 2 { return more[i] }
            return i == 0 ? first! : second!
        }
        set {
            precondition(i >= 0 && i < count, "SmallArray: index \(i) out of 0..<\(count)")
            if count > 2 {
                more[i] = newValue
            } else if i == 0 {
                first = newValue
            } else {
                second = newValue
            }
        }
    }
}
