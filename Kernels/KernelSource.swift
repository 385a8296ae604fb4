/// The OpenCL C sources of `Kernels/`, embedded at build time by `EmbedKernelsPlugin`.
///
/// `files` maps a file name (`"elementwise.cl"`, `"common.cl"`) to its text. The OpenCL backend
/// prepends `common.cl` to each family when it builds a program, so every `.cl` file also
/// compiles alone with `#include "common.cl"` removed.
package enum KernelSource {}
