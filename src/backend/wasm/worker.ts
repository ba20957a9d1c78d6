// A WASM worker thread (started by ./threads.ts): instantiates the kernels' WebAssembly.Module on
// the runtime's shared Memory (and loads the native BLAS the main thread uses, if any), then serves
// chunks of kernel calls until the pool is disposed.
// Holds no state of its own: the module has no data segments and no start function, so many
// instances on one memory are safe (kernels never allocate; scratch comes from the caller).

import { loadBlas } from "./blas.ts";
import { blasMatmul } from "./blas_matmul.ts";
import { kernelImports, type KernelExport } from "./module.ts";
import { serveJobs, type WorkerInit } from "./threads.ts";

self.onmessage = async (event: MessageEvent<WorkerInit>) => {
  const init = event.data;
  const instance = new WebAssembly.Instance(init.module, kernelImports(init.module, init.memory));
  const host = init.blas ? [blasMatmul(await loadBlas(init.blas), init.memory, instance.exports.matmul_f32 as KernelExport, instance.exports.half_widen_rows as KernelExport)] : [];
  serveJobs(init, instance.exports, host);
  self.close();
};
