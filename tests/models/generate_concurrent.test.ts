// Generation on a model that other calls share (DESIGN.md "Modes are per call"): two stream()
// calls interleaved token by token, with a training-mode forward of the same model between their
// tokens, give exactly the pieces, tokens and text they give one after the other. Generation runs
// the model in eval mode without writing its training flag (dropout stays on for the training
// forward, off for generation: equal to the same weights with dropout 0) and never draws from the
// global RNG (no seed: a random one, reported and reproducible).

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GPT } from "../../src/models/gpt.ts";
import { generate, stream, type GenerateOptions, type GenerateResult } from "../../src/models/generate.ts";
import { fromArray, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { dispose, scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { withTraining } from "../../src/tensor/mode.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { backendNames, getBackend } from "../backends.ts";

const tokenizer = await loadTokenizer(join(import.meta.dir, "..", "fixtures", "tokenizers", "shakespeare_llama3"));

/** The same weights whatever the dropout (init draws do not depend on it); left in training mode. */
function tinyGPT(dropout: number): GPT {
  seed(5);
  return new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 32, dropout });
}

const CALLS: { prompt: string; options: GenerateOptions }[] = [
  { prompt: "Shall I compare thee", options: { maxNewTokens: 24, temperature: 0.9, topK: 20, seed: 1, stopTokens: [] } },
  // no cache, and a context that outgrows blockSize: recompute over the window
  { prompt: "Friends, Romans, countrymen", options: { maxNewTokens: 40, temperature: 1.3, topP: 0.9, repetitionPenalty: 1.2, seed: 2, stopTokens: [], useCache: false } },
];

/** Drives one stream() a piece at a time. */
function runner(model: GPT, { prompt, options }: (typeof CALLS)[number]) {
  const it = stream(model, tokenizer, prompt, options);
  const pieces: string[] = [];
  let result: GenerateResult | null = null;
  return {
    pieces,
    get result() {
      return result;
    },
    /** one more piece; false once finished */
    async step(): Promise<boolean> {
      if (result) return false;
      const r = await it.next();
      if (r.done) result = r.value;
      else pieces.push(r.value);
      return !r.done;
    },
  };
}

async function sequential(model: GPT) {
  const out = [];
  for (const call of CALLS) {
    const r = runner(model, call);
    while (await r.step());
    out.push({ pieces: r.pieces, result: r.result! });
  }
  return out;
}

/** The mean loss of a forward in the model's own mode, with the same dropout masks each time. */
async function lossOf(model: GPT, x: Tensor, y: Tensor): Promise<number> {
  Rng.global.reseed(77); // Dropout draws its mask seeds from the global RNG
  const l = scope(() => noGrad(() => model.loss(x, y)));
  try {
    return await l.item();
  } finally {
    l.dispose();
  }
}

describe.each(backendNames)("concurrent generation on %s", (name) => {
  test("two interleaved streams and a training forward between their tokens: the outputs of one after the other", async () => {
    useBackend(await getBackend(name));
    const model = tinyGPT(0.3);
    const plain = tinyGPT(0);
    const x = fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 37) % 640), [2, 8]);
    const y = fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 53 + 1) % 640), [2, 8]);
    try {
      const trainLoss = await lossOf(model, x, y);
      const evalLoss = await withTraining(false, () => lossOf(model, x, y));
      expect(Math.abs(trainLoss - evalLoss)).toBeGreaterThan(1e-3); // dropout is really on in training mode

      const rngBefore = Rng.global.getState();
      const alone = await sequential(model);
      expect(Rng.global.getState()).toEqual(rngBefore); // seeded sampling draws from each call's own Rng
      expect(model.training).toBe(true);
      // generation ran in eval mode: the same as the same weights without dropout
      const reference = await sequential(plain);
      expect(alone.map((r) => r.result.tokens)).toEqual(reference.map((r) => r.result.tokens));
      expect(alone[1].result.tokens.length).toBe(40);

      const runs = CALLS.map((call) => runner(model, call));
      let live = true;
      for (let round = 0; live; round++) {
        live = false;
        for (const r of runs) {
          const state = Rng.global.getState();
          live = (await r.step()) || live;
          expect(Rng.global.getState()).toEqual(state);
          expect(model.training).toBe(true); // never flipped, not even between a call's tokens
          await new Promise((resolve) => setTimeout(resolve, 0)); // let anything else run
        }
        // a training-mode forward of the shared model while both generations are mid-way
        if (round % 3 === 1) expect(await lossOf(model, x, y)).toBe(trainLoss);
      }
      for (const [i, r] of runs.entries()) {
        expect(r.pieces).toEqual(alone[i].pieces);
        expect(r.result!.tokens).toEqual(alone[i].result.tokens);
        expect(r.result!.text).toBe(alone[i].result.text);
      }
    } finally {
      dispose([x, y]);
      model.dispose();
      plain.dispose();
    }
  });

  test("without a seed: a fresh random one, reported; the global RNG is not drawn from", async () => {
    useBackend(await getBackend(name));
    const model = tinyGPT(0);
    try {
      const opts = { maxNewTokens: 16, temperature: 1, stopTokens: [] };
      const before = Rng.global.getState();
      const a = await generate(model, tokenizer, "To be", opts);
      const b = await generate(model, tokenizer, "To be", opts);
      expect(Rng.global.getState()).toEqual(before);
      expect(a.seed).toBeNumber();
      expect(a.seed).not.toBe(b.seed);
      expect((await generate(model, tokenizer, "To be", { ...opts, seed: a.seed })).tokens).toEqual(a.tokens);
    } finally {
      model.dispose();
    }
  });
});
