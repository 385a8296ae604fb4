import PackagePlugin

/// Embeds every `.cl` file of the target it is applied to (the `Kernels/` folder) into
/// `EmbeddedKernels.swift`. SwiftPM re-runs it when a listed file changes and re-plans it when
/// files are added or removed, because the inputs are the target's own files.
@main
struct EmbedKernelsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let module = target as? SourceModuleTarget else { return [] }
        let kernels = module.sourceFiles
            .filter { ["cl"].contains($0.url.pathExtension) }
            .map(\.url)
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernels.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(kernels.count) OpenCL kernel files",
                executable: try context.tool(named: "EmbedKernels").url,
                arguments: [output.path()] + kernels.map { $0.path() },
                inputFiles: kernels,
                outputFiles: [output]
            )
        ]
    }
}
