// `kiln compare-backends --model <dir>`: the same short LoRA SFT run on wasm and on WebGPU; prints
// both loss curves and the largest differences, exit code 1 when they differ by more than 1e-4.

import { parseArgs } from "node:util";
import { compareBackends } from "../finetune/compare.ts";
import { isInputError, UserError } from "../util/errors.ts";

const HELP = `usage: kiln compare-backends --model <dir> [--steps 5] [--backends wasm,webgpu] [--tolerance 1e-4]

Runs the same short LoRA SFT (all linear layers, r 4, no dropout, fixed seeds) on two backends and
compares the losses step by step and the trained adapters.`;

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let steps: number, tolerance: number, pair: [string, string];
  try {
    ({ values } = parseArgs({ args: argv, options: { model: { type: "string" }, steps: { type: "string" }, backends: { type: "string" }, tolerance: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true }));
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (!values.model) throw new UserError("--model <dir> is required");
    steps = Number(values.steps ?? 5);
    if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps must be an integer >= 1 (got ${JSON.stringify(values.steps)})`);
    tolerance = Number(values.tolerance ?? 1e-4);
    if (!(tolerance > 0)) throw new UserError(`--tolerance must be a number > 0 (got ${JSON.stringify(values.tolerance)})`);
    pair = ((values.backends as string | undefined) ?? "wasm,webgpu").split(",") as [string, string];
    if (pair.length !== 2 || pair.some((b) => b === "")) throw new UserError(`--backends must name two backends, e.g. wasm,webgpu (got ${JSON.stringify(values.backends)})`);
  } catch (e) {
    console.error(`kiln compare-backends: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  try {
    const r = await compareBackends({ model: values.model as string, backends: pair, steps, tolerance });
    r.backends.forEach((b, i) => console.log(`${b} (${r.devices[i]}): ${r.losses[i].map((l) => l.toFixed(6)).join(" ")}`));
    console.log(`largest loss difference ${r.maxLossDiff.toExponential(2)}, largest adapter difference ${r.maxAdapterDiff.toExponential(2)}: ${r.ok ? "the backends agree" : "THE BACKENDS DIFFER"}`);
    return r.ok ? 0 : 1;
  } catch (e) {
    console.error(`kiln compare-backends: ${(e as Error).message}`);
    return isInputError(e) || /not available|Unknown backend/.test((e as Error).message) ? 2 : 1;
  }
}
