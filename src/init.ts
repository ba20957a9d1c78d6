// init(): pick a backend (createComputeBackend), make it the default for new tensors, optionally seed.
import { createComputeBackend, type BackendChoice } from "./backend/registry.ts";
import type { Backend, BackendOptions } from "./backend/backend.ts";
import { useBackend } from "./tensor/tensor.ts";
import { seed as seedRng } from "./tensor/random.ts";

/** Creates the backend (default "auto"), makes it the default, seeds the global RNG if asked. */
export async function init(backend: BackendChoice | string = "auto", options: BackendOptions & { seed?: number } = {}): Promise<Backend> {
  const b = await createComputeBackend(backend, options);
  useBackend(b);
  if (options.seed !== undefined) seedRng(options.seed);
  return b;
}
