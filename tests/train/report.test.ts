// The HTML report of a GenericTrainer run (two loaders) opened in a real headless Chromium (Debian
// `chromium`): its DOM after load has the six plots with drawn series and the summary table, and a
// screenshot is written to $KILN_TEST_OUT (default: the temp folder). Skips where chromium is
// absent, unless KILN_TEST_CHROMIUM=1 (CI installs it, see .ci/run).

import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericTrainer, GenericTrainerConfig } from "../../src/train/engine.ts";
import { MultiDataLoaderConfig } from "../../src/train/sampling.ts";
import { DataLoader, TensorDataset } from "../../src/train/data_loader.ts";
import { Linear } from "../../src/nn/layers.ts";
import { SGD } from "../../src/optim/sgd.ts";
import * as ops from "../../src/ops/index.ts";
import { useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { getBackend } from "../backends.ts";

const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser");
if (!CHROMIUM && process.env.KILN_TEST_CHROMIUM === "1") throw new Error("KILN_TEST_CHROMIUM=1 but no chromium on PATH");

async function reportRun(): Promise<string> {
  useBackend(await getBackend("wasm"));
  seed(4);
  const model = new Linear(3, 2, { std: 0.5 });
  const rng = new Rng(2);
  const ds = (n: number) => {
    const x = Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal()]);
    return new TensorDataset({ x, y: x.map((r) => (r[0] > 0 ? 1 : 0)) });
  };
  const dir = await mkdtemp(join(tmpdir(), "kiln-report-"));
  const trainer = new GenericTrainer<Record<string, Tensor>>({
    config: new GenericTrainerConfig({
      trainLoaderConfig: new MultiDataLoaderConfig({ samplingStrategy: "weighted", dataloaderNames: ["web", "code"], dataloaderWeights: [0.7, 0.3] }),
      logScalarsEveryNSteps: 2, maxGradNorm: 1, outDir: dir, loggers: ["jsonl", "html"],
    }),
    model, optimizers: [new SGD(model.parameters(), { lr: 0.1 })], log: false,
  });
  trainer.setTrainingStep((t, batch) => ({ loss: ops.crossEntropy((t.model as Linear).forward(batch.x), batch.y) }));
  await trainer.fit({ trainLoaders: [new DataLoader(ds(40), { batchSize: 4 }), new DataLoader(ds(24), { batchSize: 4 })], valLoaders: [new DataLoader(ds(8), { batchSize: 4 })], maxEpochs: 2 });
  model.dispose();
  return join(dir, "report.html");
}

describe("HTML report", () => {
  test("one self-contained file: six plots, no script, no network", async () => {
    const html = await readFile(await reportRun(), "utf8");
    for (const id of ["loss", "learning_rate", "grad_norm", "tokens_per_s", "phase_time", "sampling_counts"]) expect(html).toContain(`data-plot="${id}"`);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });

  test.skipIf(!CHROMIUM)("renders in headless Chromium: every plot has drawn series; screenshot saved", async () => {
    const file = await reportRun();
    const profile = await mkdtemp(join(tmpdir(), "kiln-chromium-"));
    const flags = ["--headless=new", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--window-size=1200,1400"];
    const dom = Bun.spawn([CHROMIUM!, ...flags, "--dump-dom", `file://${file}`], { stdout: "pipe", stderr: "ignore" });
    const text = await new Response(dom.stdout).text();
    await dom.exited;
    const plots = [...text.matchAll(/<svg data-plot="([a-z_]+)"[\s\S]*?<\/svg>/g)];
    expect(plots.map((m) => m[1])).toEqual(["loss", "learning_rate", "grad_norm", "tokens_per_s", "phase_time", "sampling_counts"]);
    for (const m of plots) expect(m[0]).toContain('class="series"');
    expect(text).toContain("<table>");
    const out = join(process.env.KILN_TEST_OUT ?? tmpdir(), "kiln-training-report.png");
    const shot = Bun.spawn([CHROMIUM!, ...flags, `--screenshot=${out}`, `file://${file}`], { stdout: "ignore", stderr: "ignore" });
    await shot.exited;
    expect((await stat(out)).size).toBeGreaterThan(10_000);
    console.log(`training report screenshot: ${out}`);
  }, 60_000);
});
