// Every environment variable kiln reads, registered with its name, description and default.
// The README lists them; code reads them through this file.

import { UserError } from "./errors.ts";

export interface EnvVar {
  name: string;
  description: string;
  default: string;
}

export const ENV_VARS: readonly EnvVar[] = [
  { name: "KILN_BACKEND", description: "default backend for the CLI: auto | wasm | webgpu", default: "auto" },
  {
    name: "KILN_DEBUG",
    description: "1 = time per kernel at exit, stack traces, why WebGPU is unavailable; 2 = also log every kernel launch; 3 = also print each WGSL module",
    default: "0",
  },
  { name: "KILN_THREADS", description: "worker threads of the wasm backend (1 disables threading)", default: "all cores, at most 4" },
  {
    name: "KILN_BLAS",
    description: "native BLAS for the wasm backend's matrix products: auto (search OpenBLAS, BLIS, MKL, Accelerate), off, or the path of a CBLAS library",
    default: "auto",
  },
  { name: "KILN_WEBGPU_LIBRARY", description: "path of a webgpu.h native library (wgpu-native or Dawn) for Bun", default: "" },
  {
    name: "KILN_WEBGPU_FEATURES",
    description: "optional WebGPU features kiln may use where the adapter has them: all, none (every kernel on its fallback), or a comma list of shader-f16, subgroups",
    default: "all",
  },
  {
    name: "KILN_WEBGPU_F16",
    description: "1 = WebGPU matmul multiplies in f16 where the adapter has shader-f16 (faster on some GPUs; inference only, about 3 significant digits)",
    default: "0",
  },
  { name: "KILN_QUEUE", description: "kiln worker / kiln jobs: the job queue's URL (sqlite://<file> or postgres://user@host/db)", default: "sqlite://kiln_jobs.db" },
  { name: "KILN_API_KEY", description: "kiln serve: the API key clients must send (Authorization: Bearer) when --api-key is not given", default: "" },
  { name: "KILN_TEST_WEBGPU", description: "tests: 1 = WebGPU must be available (fail instead of skip)", default: "0" },
  { name: "KILN_TEST_CHROMIUM", description: "tests: 1 = chromium must be on PATH for the chat page test (fail instead of skip)", default: "0" },
  { name: "KILN_TEST_OUT", description: "tests: folder for test artifacts (the chat page screenshot)", default: "the temp folder" },
  { name: "KILN_TEST_POSTGRES", description: "tests: 1 = PostgreSQL (initdb, pg_ctl) must be installed for the job queue tests (fail instead of skip)", default: "0" },
  { name: "KILN_TEST_BLAS", description: "tests: 1 = a native BLAS must be found (fail instead of skip)", default: "0" },
];

/** A registered variable set to a value kiln cannot use: the CLI prints its message alone and exits 2. */
export class EnvError extends UserError {
  override name = "EnvError";
}

function read(name: string): string | undefined {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  return env?.[name];
}

export function env(name: (typeof ENV_VARS)[number]["name"]): string {
  const v = ENV_VARS.find((e) => e.name === name);
  if (!v) throw new Error(`unregistered environment variable ${name}`);
  return read(name) ?? v.default;
}

let cachedDebug: number | null = null;
export function debugLevel(): number {
  cachedDebug ??= Number(read("KILN_DEBUG") ?? 0) || 0;
  return cachedDebug;
}
