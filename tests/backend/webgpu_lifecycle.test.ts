// WebGPU process lifecycle: a process that used the GPU exits by itself, with code 0, whether it
// disposed the backend or not and even with work still queued; device errors (a rejected launch,
// out-of-memory, a lost device, also mid-read) come back as JS errors naming the kernel, not as a
// hang or garbage. Each case runs in a child process (bun) with a time limit, so a hang fails the
// test instead of hanging `bun test`. Skipped without an adapter.
import { describe, expect, test } from "bun:test";
import { backendNames } from "../backends.ts";

const CHILD = `${import.meta.dir}/../kernels/webgpu_exit_child.ts`;

async function runChild(mode: string): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, CHILD, mode], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(9), 60_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) console.error(`child ${mode} exited ${code}: ${out}\n${err}`);
  return { code, out, ms: performance.now() - t0 };
}

describe.skipIf(!backendNames.includes("webgpu"))("webgpu process lifecycle", () => {
  for (const mode of ["dispose", "no-dispose", "in-flight"]) {
    test(`exits cleanly after GPU use (${mode})`, async () => {
      const { code, out } = await runChild(mode);
      expect(code).toBe(0);
      expect(out).toContain("ok 7.3891"); // exp(2)
    });
  }

  test("a launch the device rejects is a JS error naming the kernel, and the process still exits", async () => {
    const { code, out } = await runChild("error");
    expect(code).toBe(0);
    expect(out).toMatch(/error: \[matmul\] validation error: .*exceeds/);
  });

  test("running out of memory is a clear error naming what asked for it; the backend goes on working", async () => {
    const { code, out } = await runChild("oom");
    expect(code).toBe(0);
    expect(out).toMatch(/binding: \[alloc\] \d+ bytes .* exceed .*maxStorageBufferBindingSize/);
    expect(out).toMatch(/buffer: .*exceeds the max buffer size/i);
    expect(out).toMatch(/alloc: \[alloc\] WebGPU could not allocate 32\.0 MiB: out-of-memory error/);
    if (out.includes("scratch:")) expect(out).toMatch(/scratch: \[matmul\] WebGPU could not allocate a 24\.0 MiB scratch buffer: out-of-memory/);
    expect(out).toContain("after 7.3891");
    expect(out).toContain("ok 7.3891");
  });

  test("a lost device is a clear error naming the kernel, later calls refuse, the process exits", async () => {
    const { code, out } = await runChild("lost");
    expect(code).toBe(0);
    expect(out).toMatch(/error: \[exp\] .*device lost: the device was destroyed/);
    expect(out).toMatch(/next: \[alloc\] the WebGPU backend cannot run after an earlier failure: .*device lost/);
    expect(out).toContain("ok 7.3891");
  });

  test("a device lost while a read is in flight rejects the read (no hang) and names the kernel", async () => {
    const { code, out } = await runChild("lost-in-flight");
    expect(code).toBe(0);
    expect(out).toMatch(/error: \[exp\] WebGPU device lost/);
    expect(out).toMatch(/next: \[alloc\] the WebGPU backend cannot run after an earlier failure/);
    expect(out).toContain("ok 7.3891");
  });
});
