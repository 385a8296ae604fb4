import Foundation
import TapeCL
import TapeCLNN
import Testing

/// TapeCLNN's layers and losses, and weights in safetensors.
@Suite("layers and weights")
struct LayerTests {
    @Test(arguments: devices)
    func layerNormNormalisesTheLastAxis(device: Device) throws {
        withDevice(device) {
            let norm = LayerNorm(featureCount: 4, epsilon: 0)
            let y = norm(Tensor([[1, 2, 3, 4], [2, 2, 2, 6]]))
            let s = (1.25 as Double).squareRoot()
            expectClose(
                y,
                [
                    -1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, -1 / 3.0.squareRoot(), -1 / 3.0.squareRoot(),
                    -1 / 3.0.squareRoot(), 3.0.squareRoot(),
                ], tol: 1e-6)
            #expect(Set(norm.namedVariables.keys) == ["gamma", "beta"])
        }
    }

    @Test func dropoutDropsOnlyWhileTraining() {
        let d = Dropout(rate: 0.25, seed: 3)
        let x = Tensor.ones(shape: [4000])
        #expect(d(x).scalars == x.scalars)
        d.setTraining(true)
        let y = d(x).scalars
        let kept = y.filter { $0 != 0 }
        #expect(kept.allSatisfy { Swift.abs($0 - 4.0 / 3) < 1e-6 })
        #expect(Swift.abs(Double(kept.count) / 4000 - 0.75) < 0.03)
        #expect(d(x).scalars != y)  // a new mask each call
    }

    @Test(arguments: devices)
    func embeddingLooksUpAndAddsRepeatedIds(device: Device) throws {
        try withDevice(device) {
            let e = Embedding(vocabularySize: 5, embeddingSize: 3, seed: 1)
            let ids = Tensor([[Int32(4), 1], [4, 4]])
            let tape = GradientTape()
            let v = tape.record { e(ids) }
            #expect(v.shape == [2, 2, 3])
            #expect(Array(v.scalars[0..<3]) == Array(e.table.value.scalars[12..<15]))
            let g = try tape.gradient(of: v, wrt: e.table)  // of the sum of v
            #expect(g?.scalars == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 3, 3, 3])
        }
    }

    @Test(arguments: devices)
    func sparseCrossEntropyEqualsTheOneHotOne(device: Device) throws {
        try withDevice(device) {
            let logits = Tensor.randomNormal(shape: [6, 4], seed: 5)
            let labels = [3, 0, 1, 1, 2, 3]
            let tape = GradientTape(persistent: true)
            tape.watch(logits)
            let sparse = tape.record {
                sparseSoftmaxCrossEntropy(logits: logits, labels: Tensor(labels.map(Int32.init)))
            }
            let dense = tape.record {
                softmaxCrossEntropy(logits: logits, labels: oneHot(Tensor(labels.map(Int32.init)), depth: 4))
            }
            expectClose(sparse, dense, atol: 1e-6, rtol: 1e-6)
            expectClose(
                try tape.gradient(of: sparse, wrt: logits), try tape.gradient(of: dense, wrt: logits), atol: 1e-7,
                rtol: 1e-6)
        }
    }

    @Test func sequentialNamesItsVariablesByPosition() {
        let model = Sequential([
            Conv2D(filterShape: [3, 3, 1, 4], padding: .same, activation: { relu($0) }, seed: 1), MaxPool2D(),
            Flatten(),
            Dense(inputSize: 64, outputSize: 10, seed: 2),
        ])
        #expect(model.namedVariables.keys.sorted() == ["0.bias", "0.filter", "3.bias", "3.weight"])
        #expect(model.variables.count == 4)
        #expect(model(Tensor.zeros(shape: [2, 8, 8, 1])).shape == [2, 10])
    }

    /// A trained model saved and loaded back gives the same bits, on every device.
    @Test(arguments: devices)
    func safetensorsRoundTripBitForBit(device: Device) throws {
        try withDevice(device) {
            let model = Sequential([
                Dense(inputSize: 5, outputSize: 3, activation: { tanh($0) }, seed: 4),
                Dense(inputSize: 3, outputSize: 2, seed: 5),
            ])
            let opt = Adam(learningRate: 0.05)
            for step in 0..<5 {
                let x = Tensor.randomNormal(shape: [8, 5], seed: UInt64(step))
                let tape = GradientTape()
                let loss = tape.record { meanSquaredError(predicted: model(x), expected: Tensor.zeros(shape: [8, 2])) }
                opt.update(model.variables, gradients: try tape.gradient(of: loss, wrt: model.variables))
            }
            var tensors = model.namedVariables.mapValues(\.value)
            tensors["mask"] = Tensor([1, 0, 1], dtype: .bool)
            tensors["ids"] = Tensor([Int32(-7), 1 << 30])
            tensors["bytes"] = Tensor([Int8(-128), 127])
            tensors["double"] = Tensor([Double.pi, -0.0], dtype: .float64)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-\(UUID()).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            try saveSafetensors(tensors, to: url)
            let loaded = try loadSafetensors(from: url, on: device)
            #expect(Set(loaded.keys) == Set(tensors.keys))
            for (name, t) in tensors {
                let back = try #require(loaded[name])
                #expect(back.shape == t.shape && back.dtype == t.dtype && back.device == device, "\(name)")
                #expect(
                    back.scalars(as: Double.self).map(\.bitPattern) == t.scalars(as: Double.self).map(\.bitPattern),
                    "\(name)")
            }
        }
    }

    @Test func malformedFilesAreErrorsNamingTheProblem() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try saveSafetensors(["w": Tensor([1, 2, 3])], to: url)
        let good = try Data(contentsOf: url)
        func expectError(_ bytes: Data, _ fragment: String) throws {
            try bytes.write(to: url)
            do {
                _ = try loadSafetensors(from: url)
                Issue.record("no error for \(fragment)")
            } catch let e as TapeError {
                #expect(e.description.contains(fragment), "\(e)")
            }
        }
        for (path, message) in [
            ("/nonexistent/w.safetensors", "no such file: /nonexistent/w.safetensors"), ("/tmp", "is a folder: /tmp"),
        ] {
            #expect(throws: TapeError.argument(message)) { try loadSafetensors(from: URL(fileURLWithPath: path)) }
        }
        try expectError(good.prefix(5), "too short for the 8-byte header length")
        try expectError(good.prefix(40), "is more than the")
        try expectError(good.dropLast(4), "outside the 8 bytes of data")
        var header = good
        header[8] = UInt8(ascii: "[")
        try expectError(header, "header (56 bytes), byte 0: expected '{' (the header is one JSON object)")
        let json = #"{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}"#
        var f16 = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { f16.append(contentsOf: $0) }
        f16.append(contentsOf: Array(json.utf8) + [UInt8](repeating: 0, count: 6))
        try expectError(f16, "has dtype F16")
        let wrong = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#
        var sized = Data()
        withUnsafeBytes(of: UInt64(wrong.utf8.count).littleEndian) { sized.append(contentsOf: $0) }
        sized.append(contentsOf: Array(wrong.utf8) + [UInt8](repeating: 0, count: 12))
        try expectError(sized, "has 12 bytes for shape [4] of F32")
        for shape in ["[0, 4611686018427387904, 4611686018427387904]", "[4611686018427387904, 4611686018427387904, 0]"]
        {
            // no elements, but strides beyond Int: refused, and not as "0 bytes"
            let empty = #"{"w":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,0]}}"#
            var file = Data()
            withUnsafeBytes(of: UInt64(empty.utf8.count).littleEndian) { file.append(contentsOf: $0) }
            file.append(contentsOf: Array(empty.utf8))
            try expectError(file, "more elements than Int can count")
        }
        var huge = good
        huge.replaceSubrange(0..<8, with: [255, 255, 255, 255, 255, 255, 255, 127])
        try expectError(huge, "is more than the")
    }

    /// Python's reader loads TapeCL's file, and TapeCL loads Python's. Runs where Python has
    /// `safetensors` and numpy (.build/pyvenv, which `make test` installs when PyPI is reachable;
    /// Benchmarks/peers/.venv; the system's); elsewhere it is reported as skipped, never as passed.
    @Test(.enabled(if: pythonWithSafetensors != nil, "no Python with safetensors and numpy (make python-safetensors)"))
    func pythonReadsAndWritesTheSameFormat() throws {
        let python = try #require(pythonWithSafetensors)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ours = dir.appendingPathComponent("tapecl.safetensors")
        try saveSafetensors(
            [
                "w": Tensor(shape: [2, 3], scalars: [1.5, -2, 3, 0.25, 5, -6]), "ids": Tensor([Int32(7), -1]),
                "m": Tensor([1, 0], dtype: .bool), "d": Tensor([0.1], dtype: .float64),
            ], to: ours)
        let theirs = dir.appendingPathComponent("python.safetensors")
        let script = """
            import sys, numpy as np
            from safetensors.numpy import load_file, save_file
            t = load_file(sys.argv[1])
            print(t["w"].dtype, t["w"].shape, t["w"].tolist(), t["ids"].tolist(), t["m"].tolist(), t["d"].tolist())
            save_file({"a": np.arange(6, dtype=np.float32).reshape(3, 2) / 4, "b": np.array([3, -4], dtype=np.int32)}, sys.argv[2])
            """
        let r = try run(URL(fileURLWithPath: python), ["-c", script, ours.path, theirs.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "float32 (2, 3) [[1.5, -2.0, 3.0], [0.25, 5.0, -6.0]] [7, -1] [True, False] [0.1]\n")
        let loaded = try loadSafetensors(from: theirs)
        #expect(loaded["a"]?.shape == [3, 2])
        #expect(loaded["a"]?.scalars == [0, 0.25, 0.5, 0.75, 1, 1.25])
        #expect(loaded["b"]?.scalars(as: Int32.self) == [3, -4])
    }
}

/// A Python that imports safetensors and numpy, if there is one.
let pythonWithSafetensors: String? = {
    let candidates = [
        packageRoot.appendingPathComponent(".build/pyvenv/bin/python").path,
        packageRoot.appendingPathComponent("Benchmarks/peers/.venv/bin/python").path, "/usr/bin/python3",
    ]
    return candidates.first { path in
        guard FileManager.default.isExecutableFile(atPath: path) else { return false }
        let r = try? run(URL(fileURLWithPath: path), ["-c", "import safetensors.numpy, numpy"])
        return r?.status == 0
    }
}()
