// Running a fused elementwise program on a device: one launch of its fused kernel, or its steps
// one launch each until the backend has built that kernel. The core decides what waits to run
// fused (TapeCL's Scheduling/Fusion.swift) and builds the program; the device core runs it.

/// When a fused program's kernel is built (see ``DeviceCore/runFused(_:inputs:into:shape:dtype:build:)``).
@_spi(Runtime) public enum FusedBuild: Sendable {
    /// Once the program has proved that it repeats (the backend decides): until then its steps run
    /// one launch each, so a chain that runs once never waits for a compiler.
    case whenRepeated
    /// Now, before the launch (a large chain: its steps one by one would cost a pass over memory
    /// each; and tests of the fused kernels).
    case now
    /// Never: the steps always run one launch each (tests of that path).
    case never
}

extension DeviceCore {
    /// Runs `program` over `inputs` for a result of `shape` into `out`, and returns a new buffer
    /// for each of the program's ``FusedProgram/outputs``, in order.
    ///
    /// Both ways give the same bits: the fused kernel rounds to `dtype` after every op, as the
    /// kernels the ops would run alone do, and those are what the step-by-step way runs.
    @_spi(Runtime) public func runFused(
        _ program: FusedProgram, inputs: UnsafeBufferPointer<Operand>, into out: Buffer, shape: [Int], dtype: DType,
        build: FusedBuild
    ) throws -> [Buffer] {
        if build != .never && backend.prepareFused(program, dtype: dtype, wait: build == .now) {
            let extra = try program.outputs.map { _ in try allocate(bytes: out.bytes) }
            try run(
                Launch(
                    opName: "fused", forward: .fused(program), inputs: inputs, output: out, shape: shape,
                    dtype: dtype, parameters: .none, extraOutputs: extra))
            return extra
        }
        let values = try runSteps(program, inputs, into: out, shape: shape, dtype: dtype)
        return program.outputs.map { values[$0].buffer }
    }

    /// Runs `program` one launch per step: a step of one-element operands has one element, the
    /// others the result's shape; a one-element last value is then broadcast into `out`. Returns
    /// every step's value.
    private func runSteps(
        _ program: FusedProgram, _ inputs: UnsafeBufferPointer<Operand>, into out: Buffer, shape: [Int], dtype: DType
    ) throws -> [Operand] {
        var values: [Operand] = []
        values.reserveCapacity(program.steps.count)
        for (k, step) in program.steps.enumerated() {
            let forward: Forward
            let operands: [Operand]
            switch step {
            case .input(let j, let single):
                values.append(Operand(buffer: inputs[j].buffer, shape: single ? [] : shape, dtype: dtype))
                continue
            case .unary(let name, let f, let a): (forward, operands) = (.unary(kernel: name, host: f), [values[a]])
            case .binary(let name, let f, let a, let b):
                (forward, operands) = (.binary(kernel: name, host: f), [values[a], values[b]])
            }
            let stepShape = operands.contains { !$0.shape.isEmpty } ? shape : []
            let last = k == program.steps.count - 1 && stepShape == shape
            let result = last ? out : try allocate(bytes: Shape.count(stepShape) * dtype.byteSize)
            try operands.withUnsafeBufferPointer { operands in
                try run(
                    Launch(
                        opName: "fused", forward: forward, inputs: operands, output: result, shape: stepShape,
                        dtype: dtype, parameters: .none))
            }
            values.append(Operand(buffer: result, shape: stepShape, dtype: dtype))
        }
        if let value = values.last, value.buffer !== out {
            let broadcast = Strided(shape: shape, strides: [Int](repeating: 0, count: shape.count))
            try [value].withUnsafeBufferPointer { operands in
                try run(
                    Launch(
                        opName: "fused", forward: .gather, inputs: operands, output: out, shape: shape, dtype: dtype,
                        parameters: .strided(broadcast)))
            }
        }
        return values
    }
}
