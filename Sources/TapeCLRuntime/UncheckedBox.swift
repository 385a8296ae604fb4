/// A value handed across a `@Sendable` boundary by code that guarantees its own synchronisation
/// (a custom gradient's closure, a pool job's body).
@_spi(Runtime) public struct UncheckedBox<T>: @unchecked Sendable {
    @_spi(Runtime) public let value: T
    @_spi(Runtime) public init(_ value: T) { self.value = value }
}
