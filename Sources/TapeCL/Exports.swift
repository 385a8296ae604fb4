@_exported import TapeCLRuntime
