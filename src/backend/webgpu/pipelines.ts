// Compute pipelines, cached by `${file}:${entry}:${subgroups}:${constants}`: each (entry point,
// row-reduction variant, override constants) is compiled once per device. Compilation errors
// name the kernel.
import type { GpuDriver, GpuPipeline } from "./driver.ts";
import { type ShaderFile, shaderSource, usesSubgroups } from "./shaders.ts";

export class PipelineCache {
  readonly #driver: GpuDriver;
  readonly #cache = new Map<string, GpuPipeline>();

  constructor(driver: GpuDriver) {
    this.#driver = driver;
  }

  get(kernel: string, file: ShaderFile, entry: string, constants: Record<string, number> = {}, subgroups = false): GpuPipeline {
    const sg = usesSubgroups(file, subgroups);
    const key = `${file}:${entry}:${sg}:${JSON.stringify(constants)}`;
    let pipeline = this.#cache.get(key);
    if (!pipeline) {
      try {
        pipeline = this.#driver.createPipeline(shaderSource(file, sg), entry, constants, entry);
      } catch (e) {
        const variant = sg ? " (subgroups)" : "";
        throw new Error(`[${kernel}] WebGPU could not build kernels/${file}.wgsl:${entry}${variant}: ${(e as Error).message}`);
      }
      this.#cache.set(key, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.#cache.size;
  }
}
