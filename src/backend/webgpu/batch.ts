// Records kernel launches and copies until the backend needs results, then submits them as ONE
// command buffer: a training step is one submit unless it reads back midway. Each launch's params
// go into a slot of one uniform "arena" written right before the submit (queue order makes one
// arena safe to reuse), and bind groups are cached by (pipeline, buffers, slot), so a repeated
// step re-creates none. Not the kernels' logic: ops/*.ts decide what to launch.
import type { Command, GpuBindGroup, GpuBuffer, GpuDriver, GpuPipeline } from "./driver.ts";

const ARENA_BYTES = 256 * 1024;
/** The largest Params struct, in bytes (16 four-byte fields). */
export const MAX_PARAMS_BYTES = 64;
const MAX_BIND_GROUPS = 8192;

export class Batch {
  readonly #driver: GpuDriver;
  readonly #uniform: GpuBuffer;
  readonly #arena = new Uint8Array(ARENA_BYTES);
  readonly #stride: number;
  readonly #bindGroups = new Map<string, GpuBindGroup>();
  #commands: Command[] = [];
  #kernels = new Set<string>();
  #offset = 0;

  constructor(driver: GpuDriver) {
    this.#driver = driver;
    this.#stride = Math.max(MAX_PARAMS_BYTES, driver.limits.minUniformBufferOffsetAlignment);
    this.#uniform = driver.createBuffer(ARENA_BYTES, "uniform", "kiln params");
  }

  /** Queues one dispatch of `pipeline` with `buffers` bound at 0.. and `params` after them. */
  dispatch(kernel: string, pipeline: GpuPipeline, buffers: readonly GpuBuffer[], params: Uint8Array, grid: readonly number[]): void {
    if (this.#bindGroups.size >= MAX_BIND_GROUPS) this.#releaseBindGroups(); // submits first
    if (this.#offset + this.#stride > ARENA_BYTES) this.submit();
    const slot = this.#offset;
    this.#arena.set(params, slot);
    this.#arena.fill(0, slot + params.length, slot + this.#stride);
    this.#offset += this.#stride;
    let key = `${pipeline.id}:${slot}`;
    for (const b of buffers) key += `:${b.id}`;
    let group = this.#bindGroups.get(key);
    if (!group) {
      const bindings = buffers.map((buffer) => ({ buffer, offset: 0, size: buffer.size }));
      bindings.push({ buffer: this.#uniform, offset: slot, size: MAX_PARAMS_BYTES });
      group = this.#driver.createBindGroup(pipeline, bindings);
      this.#bindGroups.set(key, group);
    }
    this.#commands.push({ op: "dispatch", pipeline, bindGroup: group, x: grid[0], y: grid[1] ?? 1, z: grid[2] ?? 1 });
    this.#kernels.add(kernel);
  }

  copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void {
    this.#commands.push({ op: "copy", src, srcOffset, dst, dstOffset, size });
  }

  get pending(): number {
    return this.#commands.length;
  }

  /** Submits what is queued; returns the kernels it held (for error messages). */
  submit(): string[] {
    const kernels = [...this.#kernels];
    if (this.#commands.length === 0) return kernels;
    if (this.#offset > 0) this.#driver.writeBuffer(this.#uniform, 0, this.#arena.subarray(0, this.#offset));
    const commands = this.#commands;
    this.#commands = [];
    this.#kernels = new Set();
    this.#offset = 0;
    this.#driver.submit(commands);
    return kernels;
  }

  /** Forgets cached bind groups (after buffers were destroyed). Submits first: queued work uses them. */
  reset(): void {
    this.submit();
    this.#releaseBindGroups();
  }

  destroy(): void {
    this.#releaseBindGroups();
    this.#driver.destroyBuffer(this.#uniform);
  }

  #releaseBindGroups(): void {
    if (this.#commands.length) this.submit();
    for (const g of this.#bindGroups.values()) this.#driver.releaseBindGroup(g);
    this.#bindGroups.clear();
  }
}
