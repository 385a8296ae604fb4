enum CrossCheck {
    static func compare(_ op: Op, _ inputs: [Tensor], _ attributes: Attributes, _ result: Tensor) throws {}
}
