import PackagePlugin

/// Embeds the data files of the target it is applied to into one generated Swift file of string
/// literals: the `.cl` kernels of `Kernels/` (as `KernelSource.files`) and the `.txt` data of the
/// CLI (as `EmbeddedData.files`, the digits). SwiftPM re-runs it when a listed file changes and
/// re-plans it when files are added or removed, because the inputs are the target's own files.
@main
struct EmbedKernelsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let module = target as? SourceModuleTarget else { return [] }
        let files = module.sourceFiles
            .filter { ["cl", "txt"].contains($0.url.pathExtension) }
            .map(\.url)
        let namespace = module.name == "TapeCLKernels" ? "KernelSource" : "EmbeddedData"
        let output = context.pluginWorkDirectoryURL.appending(path: "Embedded\(namespace).swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) files into \(namespace)",
                executable: try context.tool(named: "EmbedKernels").url,
                arguments: [output.path(), namespace] + files.map { $0.path() },
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
