// Compute pipelines, cached by `${file}:${entry}:${constants}`: each (entry point, override
// constants) pair is compiled once per device. Compilation errors name the kernel.
import type { GpuDriver, GpuPipeline } from "./driver.ts";
import { type ShaderFile, shaderSource } from "./shaders.ts";

export class PipelineCache {
  readonly #driver: GpuDriver;
  readonly #cache = new Map<string, GpuPipeline>();

  constructor(driver: GpuDriver) {
    this.#driver = driver;
  }

  get(kernel: string, file: ShaderFile, entry: string, constants: Record<string, number> = {}): GpuPipeline {
    const key = `${file}:${entry}:${JSON.stringify(constants)}`;
    let pipeline = this.#cache.get(key);
    if (!pipeline) {
      try {
        pipeline = this.#driver.createPipeline(shaderSource(file), entry, constants, entry);
      } catch (e) {
        throw new Error(`[${kernel}] WebGPU could not build kernels/${file}.wgsl:${entry}: ${(e as Error).message}`);
      }
      this.#cache.set(key, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.#cache.size;
  }
}
