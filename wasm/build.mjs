// Builds the AssemblyScript kernels (wasm/assembly/index.ts) into wasm/build/kernels.wasm.
// Runs on `npm install` (the "prepare" script) and `bun run build:wasm`. Flags: SIMD on,
// threads + shared imported memory (Workers share one linear memory), stub runtime (kernels
// never allocate), -O3.
import { execFileSync } from "node:child_process";
import { mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const asc = join(root, "node_modules", "assemblyscript", "bin", "asc.js");
if (!existsSync(asc)) {
  console.warn("[build:wasm] assemblyscript is not installed yet; skipping (run `npm install`).");
  process.exit(0);
}
mkdirSync(join(here, "build"), { recursive: true });
execFileSync(process.execPath, [join(here, "gen_matmul.mjs")], { stdio: "inherit" }); // generated matmul micro-kernels
const args = [
  asc, join(here, "assembly", "index.ts"),
  "-o", join(here, "build", "kernels.wasm"),
  "-t", join(here, "build", "kernels.wat"),
  "--optimize", "--optimizeLevel", "3", "--shrinkLevel", "0", "--noAssert",
  "--uncheckedBehavior", "always", "--runtime", "stub",
  "--enable", "simd", "--enable", "threads",
  "--importMemory", "--sharedMemory", "--initialMemory", "256", "--maximumMemory", "65536",
];
execFileSync(process.execPath, args, { stdio: "inherit" });
console.log("[build:wasm] wrote wasm/build/kernels.wasm");
