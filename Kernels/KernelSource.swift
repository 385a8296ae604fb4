/// The OpenCL C sources of `Kernels/`, embedded at build time by `EmbedKernelsPlugin`.
///
/// `files` maps a file name (`"elementwise.cl"`, `"common.h"`) to its text. The OpenCL backend
/// prepends `common.h` to each family when it builds a program, so every `.cl` file also
/// compiles alone with `#include "common.h"` removed.
package enum KernelSource {}
