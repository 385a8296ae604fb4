#!/usr/bin/env python3
"""Type-checks every ```swift block of README.md against the built modules (`swift build` first).

Each block becomes the body of `func snippetN() throws` after scripts/readme-prelude.swift, which
declares the names the snippets use without making them; every snippet sees Foundation and
TapeCL's modules (a snippet's own `import` lines are dropped). A block
with `.package(` is a Package.swift fragment and is not Swift to run: it is named and skipped.
Exit status 1 names each snippet that does not compile, with the compiler's messages.
"""
import pathlib
import re
import subprocess
import sys
import tempfile

root = pathlib.Path(__file__).resolve().parent.parent
build = root / ".build" / "debug"
readme = (root / "README.md").read_text()
blocks = [(readme[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```swift\n(.*?)```", readme, re.S)]

# The C modules the runtime's interface imports, by their module maps.
maps = [root / "Sources" / "COpenCL" / "module.modulemap", root / "Sources" / "CMPI" / "module.modulemap"]
maps += sorted(build.glob("*.build/module.modulemap"))
flags = ["-I", str(build / "Modules")]
for m in maps:
    flags += ["-Xcc", f"-fmodule-map-file={m}"]
flags += ["-Xcc", f"-I{root / 'Sources' / 'CHostMath' / 'include'}", "-Xcc", f"-I{root / 'Sources' / 'COpenBLAS' / 'include'}"]
def mpi_flags():
    for command in (["pkg-config", "--cflags", "mpi"], ["mpicc", "--showme:compile"]):
        try:
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            continue
    return []


mpi = mpi_flags()
flags += [f for c in mpi for f in ("-Xcc", c)]

failed, checked, skipped = [], 0, []
with tempfile.TemporaryDirectory() as folder:
    for i, (line, code) in enumerate(blocks):
        if ".package(" in code:
            skipped.append(line)
            continue
        imports = ["import Foundation", "import TapeCL", "import TapeCLData", "import TapeCLDistributed", "import TapeCLNN"]
        body = "\n".join("    " + l for l in code.splitlines() if not l.startswith("import "))
        source = pathlib.Path(folder) / f"snippet{i}.swift"
        source.write_text("\n".join(imports) + f"\n\n// README.md line {line}\nfunc snippet{i}() throws {{\n{body}\n}}\n")
        prelude = root / "scripts" / "readme-prelude.swift"
        r = subprocess.run(
            ["swiftc", "-typecheck", "-parse-as-library", *flags, str(prelude), str(source)],
            capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            failed.append(f"README.md line {line}:\n{source.read_text()}\n{r.stderr}")

print(f"README snippets: {checked} type-checked, {len(failed)} failed; skipped Package.swift fragments at lines {skipped}")
for f in failed:
    print(f, file=sys.stderr)
sys.exit(1 if failed else 0)
