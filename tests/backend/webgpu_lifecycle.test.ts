// WebGPU process lifecycle: a process that used the GPU exits by itself, with code 0, whether it
// disposed the backend or not and even with work still queued; device errors come back as JS
// errors naming the kernel, not as a hang. Each case runs in a child process (bun) with a time
// limit, so a hang fails the test instead of hanging `bun test`. Skipped without an adapter.
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
    expect(out).toMatch(/error: \[matmul\]/);
  });
});
