// `kiln train` never loses work and fails in words: two runs never share a folder, an existing --out
// is refused (or replaced with --overwrite), SIGTERM saves like Ctrl-C, non-UTF-8 data is refused
// with the byte offset (or converted with --encoding latin1), a finished run resumed says it is done,
// resume records changed settings and refuses contradicting model flags, and expected failures are
// one line on stderr with exit code 2 and no stack trace.
import { describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CharTokenizer } from "../../src/data/tokenizer.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const deno = join(ROOT, "node_modules", ".bin", "deno");
const hasDeno = await Bun.file(deno).exists();
const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n".repeat(60);
const SMALL = ["--backend", "wasm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-iters", "2", "--sample-tokens", "0"];

async function kiln(args: string[], opts: { cwd?: string; signal?: { after: RegExp; name: "SIGTERM" | "SIGINT" } } = {}) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: opts.cwd ?? ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm", KILN_DEBUG: "" } });
  let stdout = "";
  let signal = opts.signal;
  const reader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
      stdout += decoder.decode(chunk);
      if (signal?.after.test(stdout)) {
        proc.kill(signal.name);
        signal = undefined;
      }
    }
  })();
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  await reader;
  return { code, stdout, stderr };
}

/** Exit 2, one line on stderr containing `text`, no stack trace. */
function expectUserError(r: { code: number; stderr: string }, text: string): void {
  expect(r.stderr).toContain(text);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(2);
}

const tmp = await mkdtemp(join(tmpdir(), "kiln-run-safety-"));
const data = join(tmp, "text.txt");
await writeFile(data, TEXT);
let n = 0;
const fresh = () => join(tmp, `run${n++}`);

describe("kiln train run folders", () => {
  test("two runs started in the same second get two folders", async () => {
    const cwd = fresh();
    await mkdir(cwd);
    const [a, b] = await Promise.all([0, 1].map(() => kiln(["train", "--data", data, "--iters", "2", ...SMALL], { cwd })));
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const runs = await readdir(join(cwd, "runs"));
    expect(runs).toHaveLength(2);
    for (const r of runs) expect(await readdir(join(cwd, "runs", r, "checkpoints"))).toContain("latest.json");
  }, 60_000);

  test("an existing --out is refused; --overwrite replaces it; a finished run resumed says it is done", async () => {
    const out = fresh();
    const first = await kiln(["train", "--data", data, "--out", out, "--iters", "3", ...SMALL]);
    expect(first.code).toBe(0);
    const again = await kiln(["train", "--data", data, "--out", out, "--iters", "3", ...SMALL]);
    expectUserError(again, `--out ${out} already exists and is a run folder (checkpoint at step 3): pass --resume ${out} to continue it, --overwrite to replace it`);

    const metrics = await readFile(join(out, "metrics.jsonl"), "utf8");
    const done = await kiln(["train", "--resume", out]);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`${out} already finished: step 3 of 3. Nothing to do`);
    expect(done.stdout).not.toContain("NaN");
    expect(await readFile(join(out, "metrics.jsonl"), "utf8")).toBe(metrics);

    const over = await kiln(["train", "--data", data, "--out", out, "--overwrite", "--iters", "2", ...SMALL]);
    expect(over.code).toBe(0);
    expect(JSON.parse(await readFile(join(out, "checkpoints", "latest.json"), "utf8")).step).toBe(2);
    expect((await readFile(join(out, "metrics.jsonl"), "utf8")).trim().split("\n").filter((l) => JSON.parse(l).final)).toHaveLength(1);
  }, 60_000);

  test("SIGTERM finishes the step, saves a checkpoint and exits like Ctrl-C; resume records --iters in config.json", async () => {
    const out = fresh();
    const r = await kiln(["train", "--data", data, "--out", out, "--iters", "100000", "--log-interval", "1", ...SMALL], { signal: { after: /step 3\//, name: "SIGTERM" } });
    expect(r.stdout).toContain("checkpoint saved");
    expect(r.code).not.toBe(143); // not killed: it saved and returned
    const latest = JSON.parse(await readFile(join(out, "checkpoints", "latest.json"), "utf8"));
    expect(latest.step).toBeGreaterThanOrEqual(3);
    const iters = latest.step + 1;
    const resumed = await kiln(["train", "--resume", out, "--iters", String(iters)]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`train.iters 100000 -> ${iters}`);
    expect(JSON.parse(await readFile(join(out, "config.json"), "utf8")).train.iters).toBe(iters);
    const contradict = await kiln(["train", "--resume", out, "--n-layer", "3", "--iters", String(iters + 5)]);
    expectUserError(contradict, "--n-layer 3 contradicts the run being resumed (its nLayer is 1)");
  }, 60_000);
});

describe("kiln train data files", () => {
  test("Latin-1 data is refused with the byte offset, and trains with --encoding latin1", async () => {
    const latin = join(tmp, "latin1.txt");
    await writeFile(latin, Buffer.from(TEXT.replace("Citizen", "Citoyen caf\xe9"), "latin1"));
    const r = await kiln(["train", "--data", latin, "--out", fresh(), "--iters", "1", ...SMALL]);
    expectUserError(r, `--data ${latin} is not UTF-8 text: invalid byte 0xe9 at offset 17; it may be Latin-1`);
    const ok = await kiln(["train", "--data", latin, "--encoding", "latin1", "--out", fresh(), "--iters", "1", ...SMALL]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
  }, 60_000);

  test("a binary file, a folder, and too little text are one-line errors", async () => {
    const bin = join(tmp, "program");
    await writeFile(bin, new Uint8Array(4096).map((_, i) => (i * 7919) % 256));
    expectUserError(await kiln(["train", "--data", bin, "--out", fresh(), ...SMALL]), "it looks like a binary file, not text");
    expectUserError(await kiln(["train", "--data", tmp, "--out", fresh(), ...SMALL]), `--data ${tmp} is a directory`);
    const short = join(tmp, "short.txt");
    await writeFile(short, "To be, or not to be.");
    expectUserError(await kiln(["train", "--data", short, "--out", fresh(), ...SMALL]), "fewer than blockSize + 1 = 17");
  }, 60_000);
});

describe("kiln train errors a user can read", () => {
  test("--iters -5, --device banana, unwritable --out, --resume without a checkpoint, bad YAML", async () => {
    expectUserError(await kiln(["train", "--data", data, "--iters", "-5"]), "train.iters");
    expectUserError(await kiln(["train", "--data", data, "--device", "banana"]), '--device banana: expected "cpu"');
    const file = join(tmp, "a-file");
    await writeFile(file, "x");
    expectUserError(await kiln(["train", "--data", data, "--out", join(file, "run"), ...SMALL]), "a component of the path is a file");
    expectUserError(await kiln(["train", "--data", data, "--out", "/proc/kiln-run", ...SMALL]), "/proc/kiln-run");
    const empty = fresh();
    await mkdir(empty);
    await writeFile(join(empty, "config.json"), JSON.stringify({ data }));
    await writeFile(join(empty, "tokenizer.json"), JSON.stringify(CharTokenizer.fromText(TEXT).toJSON()));
    expectUserError(await kiln(["train", "--resume", empty, ...SMALL]), "the run has no checkpoint yet");
    const yaml = join(tmp, "bad.yaml");
    await writeFile(yaml, "train:\n  iters: 5\n  lr: 0.1\n   bad: indent: here\nmodel: {}\n");
    expectUserError(await kiln(["train", "--config", yaml]), `cannot parse ${yaml} (near line 4)`);
    const json = join(tmp, "bad.json");
    await writeFile(json, '{"train": {"iters": 5}\n "model": {}}');
    expectUserError(await kiln(["train", "--config", json]), `cannot parse ${json} (line 2, column 2)`);
  }, 60_000);

  test("a corrupt latest checkpoint names the intact one, and --resume-from continues from it", async () => {
    const out = fresh();
    const r = await kiln(["train", "--data", data, "--out", out, "--iters", "4", "--checkpoint-interval", "2", ...SMALL]);
    expect(r.code).toBe(0);
    await writeFile(join(out, "checkpoints", "step-0000004", "optimizer.safetensors"), "garbage");
    const bad = await kiln(["train", "--resume", out, "--iters", "6"]);
    expectUserError(bad, "is intact: resume from it with --resume-from 2");
    const ok = await kiln(["train", "--resume", out, "--resume-from", "2", "--iters", "6"]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(JSON.parse(await readFile(join(out, "checkpoints", "latest.json"), "utf8")).step).toBe(6);
  }, 60_000);

  test("kiln runs lists step, losses and status: finished, interrupted, crashed, running", async () => {
    const root = fresh();
    await mkdir(root);
    const finished = join(root, "a-finished");
    expect((await kiln(["train", "--data", data, "--out", finished, "--iters", "2", ...SMALL])).code).toBe(0);
    const interrupted = join(root, "b-interrupted");
    await kiln(["train", "--data", data, "--out", interrupted, "--iters", "100000", "--log-interval", "1", ...SMALL], { signal: { after: /step 2\//, name: "SIGINT" } });
    const crashed = join(root, "c-crashed");
    await kiln(["train", "--data", data, "--out", crashed, "--iters", "100000", "--log-interval", "1", "--checkpoint-interval", "1", ...SMALL], { signal: { after: /step 3\//, name: "SIGKILL" as "SIGINT" } });
    const r = await kiln(["runs", "--root", root]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^run\s+status\s+step\s+train loss\s+val loss/);
    expect(lines.find((l) => l.startsWith(finished))).toMatch(/finished\s+2\/2\s+\d+\.\d{4}\s+\d+\.\d{4}/);
    expect(lines.find((l) => l.startsWith(interrupted))).toMatch(/interrupted\s+\d+\/100000/);
    expect(lines.find((l) => l.startsWith(crashed))).toMatch(/crashed\s+\d+\/100000/);
    const json = JSON.parse((await kiln(["runs", "--root", root, "--json"])).stdout);
    expect(json.map((x: { status: string }) => x.status).sort()).toEqual(["crashed", "finished", "interrupted"]);
    await writeFile(join(finished, ".lock"), `${process.pid}\n`); // a live process holds it
    expect((await kiln(["runs", finished])).stdout).toContain("running");
  }, 60_000);

  test("kiln sft gets the same run-folder rules: an existing run is refused; a bad key leaves no folder", async () => {
    const rows = join(tmp, "sft.jsonl");
    await writeFile(rows, JSON.stringify({ prompt: "The capital of France is", completion: " Paris." }) + "\n");
    const qwen = join(ROOT, "tests", "fixtures", "hf", "qwen2");
    const out = fresh();
    await mkdir(join(out, "checkpoints"), { recursive: true });
    await writeFile(join(out, "metrics.jsonl"), "");
    const r = await kiln(["sft", "--model", qwen, "--data", rows, "--out", out, "--max-steps", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${out} already exists and is a run folder`);
    const unused = fresh();
    const bad = await kiln(["sft", "--model", qwen, "--data", rows, "--out", unused, "--lerning-rate", "3"]);
    expect(bad.code).toBe(2);
    expect(await readdir(unused).catch(() => null)).toBeNull();
  }, 60_000);

  test.skipIf(!hasDeno)("under Deno the CLI says it needs Bun (exit 2), instead of 'Bun is not defined'", async () => {
    const proc = Bun.spawn([deno, "run", "-A", MAIN, "generate", "--model", "x"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(stderr).toContain("kiln: the command line needs Bun");
    expect(code).toBe(2);
  }, 60_000);

  test("--version", async () => {
    const r = await kiln(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kiln \d+\.\d+\.\d+ \(bun /);
  });
});
