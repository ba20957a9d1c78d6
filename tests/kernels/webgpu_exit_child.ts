// Child process for tests/backend/webgpu_lifecycle.test.ts: makes the WebGPU backend, runs a kernel,
// reads it back, then (per argv) disposes or not, leaves work in flight, or fails a launch, and
// prints one line. The parent checks the exit code and that the process ended by itself.
import { createWebGPUBackend } from "../../src/backend/webgpu/index.ts";

const mode = process.argv[2] ?? "dispose";
const backend = await createWebGPUBackend({});
if (!backend) {
  console.log("no adapter");
  process.exit(3);
}
const n = 1 << 16;
const x = backend.alloc(n * 4), y = backend.alloc(n * 4);
backend.upload(x, new Float32Array(n).fill(2));
backend.run("exp", [x], [y], { n });
const first = new Float32Array(await backend.download(y, 16))[0];
if (mode === "in-flight") {
  for (let i = 0; i < 200; i++) backend.run("exp", [x], [y], { n });
  backend.flush().catch(() => {}); // not awaited: dispose cancels it, and the process must still exit
} else if (mode === "error") {
  try {
    // a batch past maxComputeWorkgroupsPerDimension (65535 in z): the device rejects the dispatch
    backend.run("matmul", [x, x, null], [y], { batch: 70000, M: 4, N: 4, K: 4, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 0 });
    await backend.flush();
    console.log("no error");
  } catch (e) {
    console.log(`error: ${(e as Error).message.slice(0, 200)}`);
  }
}
if (mode !== "no-dispose") backend.dispose();
console.log(`ok ${first.toFixed(4)}`);
