// Child process for tests/backend/webgpu_lifecycle.test.ts: makes the WebGPU backend, runs a kernel,
// reads it back, then (per argv) disposes or not, leaves work in flight, fails a launch, runs out
// of memory, or loses its device, and prints what it saw. The parent checks the lines, the exit
// code and that the process ended by itself.
import { createWebGPUBackend, type WebGPUBackend } from "../../src/backend/webgpu/index.ts";

/** Prints `label: <the error's message>` (or `label: no error`). */
function report(label: string, fn: () => unknown): void {
  try {
    fn();
    console.log(`${label}: no error`);
  } catch (e) {
    console.log(`${label}: ${(e as Error).message.split("\n")[0].slice(0, 200)}`);
  }
}

const mode = process.argv[2] ?? "dispose";
const backend = (await createWebGPUBackend({})) as WebGPUBackend | null;
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
} else if (mode === "oom") {
  // past the binding limit: refused by the backend before the device sees it
  report("binding", () => backend.alloc(backend.driver.limits.maxStorageBufferBindingSize + 4));
  // past maxBufferSize: the device refuses it, at once, without being lost
  report("buffer", () => backend.driver.createBuffer(backend.driver.limits.maxBufferSize + 4, "storage", "too big"));
  // the device out of memory (simulated past 16 MiB: a real one would take the machine's memory)
  const [M, N, K, batch] = [64, 1024, 2048, 3];
  const a = backend.alloc(M * K * 4), b = backend.alloc(batch * N * K * 4), out = backend.alloc(batch * M * N * 4);
  const driver = backend.driver as { createBuffer: (size: number, ...rest: unknown[]) => unknown };
  const create = driver.createBuffer.bind(driver);
  driver.createBuffer = (size, ...rest) => {
    if (size > 16 << 20) throw new Error("out-of-memory error: (simulated) not enough memory left");
    return create(size, ...rest);
  };
  report("alloc", () => backend.alloc(32 << 20));
  // on a CPU adapter B [N, K] is transposed into a 24 MiB scratch buffer first
  const params = { batch, M, N, K, transA: 0, transB: 1, strideA: 0, strideB: N * K, hasBias: 0 };
  if (backend.tuning.matmul === "matmul") report("scratch", () => backend.run("matmul", [a, b, null], [out], params));
  backend.run("exp", [x], [y], { n }); // the backend still works
  console.log(`after ${new Float32Array(await backend.download(y, 16))[0].toFixed(4)}`);
} else if (mode === "lost" || mode === "lost-in-flight") {
  // the device destroyed behind the backend's back (as a driver reset or a removed GPU would)
  for (let i = 0; i < 50; i++) backend.run("exp", [x], [y], { n });
  const pending = mode === "lost-in-flight" ? backend.download(y, 16) : null;
  backend.driver.simulateDeviceLoss();
  try {
    if (pending) await pending;
    else {
      backend.run("exp", [x], [y], { n });
      await backend.download(y, 16);
    }
    console.log("no error");
  } catch (e) {
    console.log(`error: ${(e as Error).message.slice(0, 200)}`);
  }
  report("next", () => backend.alloc(16));
}
if (mode !== "no-dispose") backend.dispose();
console.log(`ok ${first.toFixed(4)}`);
