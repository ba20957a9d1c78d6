// The backend protocol (src/backend/backend.ts) beyond single kernels: every kernel of the kernel
// list exists as a wasm export, ownership checks between backend instances, registry errors,
// upload/download, and the memory accounting and pool reuse of alloc/free.
import { afterAll, describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { KERNEL_NAMES } from "../../src/backend/kernels.ts";
import { createComputeBackend, webgpuFactory } from "../../src/backend/registry.ts";
import { checkArity, HEAP_BASE, HOST_EXPORTS, kernelImports, loadKernelModule } from "../../src/backend/wasm/module.ts";
import { readFileSync } from "node:fs";
import type { WasmBackend } from "../../src/backend/wasm/index.ts";
import { backendNames, getBackend } from "../backends.ts";

describe("wasm module ABI", async () => {
  const exports = new Set(WebAssembly.Module.exports(await loadKernelModule()).map((e) => e.name));
  test.each(KERNEL_NAMES)("kernel %s has the export <kernel>_f32", (kernel) => {
    expect(exports.has(`${kernel}_f32`)).toBe(true);
  });
  test.each(HOST_EXPORTS)("the host's helper export %s exists (a build without it is refused as stale)", (name) => {
    expect(exports.has(name)).toBe(true);
  });
  test("the attention exports take the kernel list's params (strides and offsets) plus the scratch; an older build is refused at load", async () => {
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
    const module = await loadKernelModule();
    const { exports: ex } = await WebAssembly.instantiate(module, kernelImports(module, memory));
    expect((ex.attention_f32 as () => void).length).toBe(3 + 2 + 13 + 2);
    expect((ex.attention_backward_f32 as () => void).length).toBe(6 + 3 + 13 + 2);
    expect(checkArity({ attention_f32: (a: number, b: number) => a + b, attention_backward_f32: ex.attention_backward_f32 } as WebAssembly.Exports))
      .toBe("attention_f32 takes 2 arguments, not 20");
  });
  test("the module's data segments end below the allocator's heap base", () => {
    const bytes = readFileSync(new URL("../../wasm/build/kernels.wasm", import.meta.url));
    const segments = dataSegments(bytes);
    for (const { offset, size } of segments) expect(offset + size).toBeLessThanOrEqual(HEAP_BASE);
  });
  test("the module imports only env.memory (shared), plus env.abort at most", async () => {
    const imports = WebAssembly.Module.imports(await loadKernelModule());
    const names = imports.map((i) => `${i.module}.${i.name}`).filter((n) => n !== "env.abort");
    expect(names).toEqual(["env.memory"]);
  });
});

describe("registry", () => {
  test("an unknown backend name is a clear error", async () => {
    await expect(createComputeBackend("nope")).rejects.toThrow(/unknown backend "nope".*"wasm"/);
  });
  test("a WebGPU module that fails to load is its own error by name, and only 'not available' for auto", async () => {
    const broken = webgpuFactory(() => Promise.reject(new SyntaxError("Unexpected token '}' in webgpu_backend.ts")));
    await expect(broken({})).rejects.toThrow(`backend "webgpu" failed to load: Unexpected token '}' in webgpu_backend.ts`);
    expect(await broken({ auto: true })).toBeNull();
  });
  test("wasm says what it runs on", async () => {
    const b = await getBackend("wasm");
    expect(b.name).toBe("wasm");
    expect(b.device).toMatch(/^wasm simd128( \+ [\w. -]+)? \(\d+ threads?\)$/); // "+ OpenBLAS 0.3.21" with a native BLAS
  });
});

describe.each(backendNames)("protocol on %s", (name) => {
  test("upload, download and downloadSync round-trip, with a byte offset", async () => {
    const b = await getBackend(name);
    const buf = b.alloc(40);
    b.upload(buf, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    b.upload(buf, new Int32Array([-7]), 8);
    const back = new Float32Array(await b.download(buf));
    expect(Array.from(back.slice(0, 2))).toEqual([1, 2]);
    expect(new Int32Array(back.buffer)[2]).toBe(-7);
    expect(back[9]).toBe(10);
    expect(new Float32Array(await b.download(buf, 8)).length).toBe(2);
    if (b.downloadSync) expect(new Float32Array(b.downloadSync(buf, 16))[3]).toBe(4);
    expect(() => b.upload(buf, new Float32Array(11))).toThrow(/do not fit/);
    b.free(buf);
  });

  test("empty transfers: zero bytes up and down, 0-element tensors read back, the backend still works", async () => {
    const b = await getBackend(name);
    const buf = b.alloc(16);
    b.upload(buf, new Float32Array(0), 8);
    expect((await b.download(buf, 0)).byteLength).toBe(0);
    const { fromArray, zeros } = await import("../../src/tensor/tensor.ts");
    const empty = zeros([0, 3], { backend: b });
    expect(Array.from(await empty.data())).toEqual([]);
    const none = fromArray(new Float32Array(0), [0], { backend: b });
    expect((await none.data()).length).toBe(0);
    b.upload(buf, Float32Array.of(1, 2, 3, 4));
    expect(Array.from(new Float32Array(await b.download(buf)))).toEqual([1, 2, 3, 4]);
    empty.dispose();
    none.dispose();
    b.free(buf);
  });

  test("a required input passed as null names the kernel", async () => {
    const b = await getBackend(name);
    const out = b.alloc(16);
    expect(() => b.run("relu", [null], [out], { n: 4 })).toThrow(/\[relu\].*required/);
    b.free(out);
  });

  test("stats count live buffers and the peak; resetPeak lowers the peak to what is live", async () => {
    const b = await getBackend(name);
    const before = b.stats();
    const big = b.alloc(1 << 20);
    const small = b.alloc(100);
    const during = b.stats();
    expect(during.buffers).toBe(before.buffers + 2);
    expect(during.allocatedBytes).toBeGreaterThanOrEqual(before.allocatedBytes + (1 << 20) + 100);
    b.free(big);
    const after = b.stats();
    expect(after.peakBytes).toBeGreaterThanOrEqual(during.allocatedBytes);
    expect(after.allocatedBytes).toBeLessThanOrEqual(during.allocatedBytes - (1 << 20));
    expect(after.pooledBytes).toBeGreaterThanOrEqual(1 << 20);
    b.resetPeak();
    expect(b.stats().peakBytes).toBe(b.stats().allocatedBytes);
    b.free(small);
    expect(b.stats().allocatedBytes).toBe(before.allocatedBytes);
    expect(b.stats().buffers).toBe(before.buffers);
  });
});

describe("wasm backend instances", () => {
  const others: Backend[] = [];
  afterAll(() => others.forEach((b) => b.dispose()));

  test("a buffer of another backend instance is rejected with a clear error", async () => {
    const a = await getBackend("wasm");
    const other = await createComputeBackend("wasm", { threads: 1 });
    others.push(other);
    const x = other.alloc(16), out = a.alloc(16);
    expect(() => a.run("relu", [x], [out], { n: 4 })).toThrow(/\[relu\] a buffer of backend "wasm" was passed to backend "wasm"/);
    expect(() => a.free(x)).toThrow(/\[free\] a buffer of backend/);
    expect(() => a.upload(x, new Float32Array(4))).toThrow(/\[upload\]/);
    a.free(out);
    other.free(x);
  });

  test("a freed buffer cannot be used or freed again", async () => {
    const a = await getBackend("wasm");
    const x = a.alloc(16), out = a.alloc(16);
    a.free(x);
    expect(() => a.run("relu", [x], [out], { n: 4 })).toThrow(/\[relu\] a freed buffer/);
    expect(() => a.free(x)).toThrow(/already freed/);
    a.free(out);
  });

  test("allocating and freeing the same sizes 2000 times reuses the pool: no growth", async () => {
    const b = (await createComputeBackend("wasm", { threads: 1 })) as WasmBackend;
    others.push(b);
    const memory = b.unsafeRuntime.memory;
    const sizes = [4, 100, 3000, 65536, 1 << 20, 3 * (1 << 20) + 12, 100];
    const step = () => {
      const bufs = sizes.map((s) => b.alloc(s));
      for (const buf of bufs.reverse()) b.free(buf);
    };
    step();
    const bytes = memory.buffer.byteLength;
    const stats = b.stats();
    for (let i = 0; i < 2000; i++) step();
    expect(memory.buffer.byteLength).toBe(bytes);
    expect(b.stats()).toEqual(stats);
    expect(stats.allocatedBytes).toBe(0);
    expect(stats.pooledBytes).toBeGreaterThan(4 << 20);
    b.emptyCache();
    expect(b.stats().pooledBytes).toBe(0); // every pooled block sat at the top of the heap
  });

  test("the memory grows past its initial size and views survive the growth", async () => {
    const b = (await createComputeBackend("wasm", { threads: 1 })) as WasmBackend;
    others.push(b);
    const first = b.alloc(8);
    b.upload(first, new Float32Array([3, 4]));
    const initial = b.unsafeRuntime.memory.buffer.byteLength;
    const big = b.alloc(initial * 2);
    expect(b.unsafeRuntime.memory.buffer.byteLength).toBeGreaterThan(initial * 2);
    const out = b.alloc(8);
    b.run("add", [first, first], [out], { n: 2, na: 2, nb: 2 });
    expect(Array.from(new Float32Array(b.downloadSync!(out)))).toEqual([6, 8]);
    for (const x of [first, big, out]) b.free(x);
  });

  test("a disposed backend refuses work", async () => {
    const b = await createComputeBackend("wasm", { threads: 1 });
    b.dispose();
    expect(() => b.alloc(4)).toThrow(/disposed/);
  });
});

/** Active data segments (offset, size) of a wasm binary: section 11, `i32.const` offsets. */
function dataSegments(bytes: Uint8Array): { offset: number; size: number }[] {
  let pos = 8;
  const uleb = () => {
    let result = 0, shift = 0, byte: number;
    do {
      byte = bytes[pos++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const sleb = () => {
    let result = 0, shift = 0, byte: number;
    do {
      byte = bytes[pos++];
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return shift < 32 && byte & 0x40 ? result | (-1 << shift) : result;
  };
  const out: { offset: number; size: number }[] = [];
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const len = uleb();
    const end = pos + len;
    if (id === 11) {
      for (let n = uleb(); n > 0; n--) {
        const flags = uleb();
        if (flags === 1) {
          pos += uleb(); // passive: no offset
          continue;
        }
        if (flags === 2) uleb(); // memory index
        expect(bytes[pos++]).toBe(0x41); // i32.const
        const offset = sleb();
        expect(bytes[pos++]).toBe(0x0b); // end
        const size = uleb();
        out.push({ offset, size });
        pos += size;
      }
    }
    pos = end;
  }
  return out;
}
