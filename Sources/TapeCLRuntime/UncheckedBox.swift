/// A value handed across a `@Sendable` boundary by code that guarantees its own synchronisation
/// (a custom gradient's closure, a pool job's body).
package struct UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
