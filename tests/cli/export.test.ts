// `kiln export gguf`: a model folder and a PEFT adapter folder written as GGUF files that read back
// with the asked types; bad flags and bad folders are one line on stderr and exit code 2.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGguf } from "../../src/io/gguf.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const QWEN2 = join(ROOT, "tests", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-cli-export-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function kiln(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, "export", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_DEBUG: "" } });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout, stderr };
}

describe("kiln export gguf", () => {
  test("--model --quantization q4_0 writes a Q4_0 GGUF with the tokenizer; --output is accepted", async () => {
    const out = join(tmp, "qwen2.Q4_0.gguf");
    const r = await kiln("gguf", "--model", QWEN2, "--output", out, "--quantization", "Q4_0");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${out}: 15 Q4_0, 11 F32 tensors`);
    const f = await readGguf(out);
    expect(f.get("general.architecture")).toBe("qwen2");
    expect(f.get("general.file_type")).toBe(2);
    expect((f.get("tokenizer.ggml.tokens") as string[]).length).toBe(300);
  });

  test("--adapter with --base writes a LoRA adapter GGUF", async () => {
    // a PEFT folder by hand: q_proj only, r 2
    const adapter = join(tmp, "adapter");
    await mkdir(adapter, { recursive: true });
    await writeFile(join(adapter, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: ["q_proj"], base_model_name_or_path: null }));
    const { writeSafetensors } = await import("../../src/io/safetensors.ts");
    const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const l of [0, 1]) {
      tensors[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`] = { dtype: "F32", shape: [2, 64], data: new Float32Array(128).fill(0.01) };
      tensors[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`] = { dtype: "F32", shape: [64, 2], data: new Float32Array(128).fill(0.02) };
    }
    await writeSafetensors(join(adapter, "adapter_model.safetensors"), tensors);
    const out = join(tmp, "adapter.gguf");
    const r = await kiln("gguf", "--adapter", adapter, "--base", QWEN2, "--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("LoRA adapter, 2 layers, F16");
    const f = await readGguf(out);
    expect(f.get("general.type")).toBe("adapter");
    expect(f.info("blk.1.attn_q.weight.lora_b").shape).toEqual([64, 2]);
    const noBase = await kiln("gguf", "--adapter", adapter, "--out", out);
    expect(noBase.code).toBe(2);
    expect(noBase.stderr.trim()).toMatch(/^kiln export: \[gguf\] .*names no base model: pass the base model's folder/);
  });

  test("bad flags and folders: one line, exit 2", async () => {
    const cases: [string[], RegExp][] = [
      [["gguf", "--model", QWEN2], /--out <file.gguf> is required/],
      [["gguf", "--model", join(tmp, "nope"), "--out", join(tmp, "x.gguf")], /--model .*nope: no such folder/],
      [["gguf", "--model", QWEN2, "--out", join(tmp, "x.gguf"), "--quantization", "q3_k"], /--quantization q3_k is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k/],
      [["gguf", "--model", QWEN2, "--out", join(tmp, "x.gguf"), "--bogus"], /Unknown option '--bogus'/],
      [["onnx"], /unknown export format "onnx"/],
    ];
    for (const [args, message] of cases) {
      const r = await kiln(...args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const bare = await kiln(); // no format: the usage on stderr, exit 2
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("usage: kiln export gguf");
  });
});
