@_exported import TapeCLRuntime
@_spi(Runtime) import TapeCLRuntime
