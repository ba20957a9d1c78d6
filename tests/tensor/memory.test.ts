// kiln's memory model (src/tensor/memory.ts): scope frees what it made except what it returns
// (which moves to the enclosing scope) and what is kept; nested scopes; exceptions; async scopes;
// reshape views sharing one reference-counted storage; ops used outside any scope leave nothing
// but their results; and a 2000-step training loop whose device memory stops growing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import type { WasmBackend } from "../../src/backend/wasm/index.ts";
import { getBackend } from "../backends.ts";

let backend: k.Backend;
beforeAll(async () => {
  // a backend of its own, so the byte counts below see only this file's tensors
  backend = await k.init("wasm", { seed: 1 });
});
afterAll(async () => {
  k.useBackend(await getBackend("wasm")); // later test files may rely on a live default backend
  backend.dispose();
});

/** live buffers and bytes */
const usage = () => {
  const s = backend.stats();
  return { buffers: s.buffers, bytes: s.allocatedBytes };
};

describe("scope", () => {
  test("scope frees every intermediate: buffers and bytes return to the start", () => {
    k.useBackend(backend);
    const start = usage();
    const x = k.randn([8, 8]);
    const during = k.scope(() => {
      const y = x.matmul(x).relu().softmax(0).sum(1).mean();
      expect(usage().buffers).toBeGreaterThan(start.buffers + 4);
      expect(y.size).toBe(1);
      return usage();
    });
    expect(during.bytes).toBeGreaterThan(start.bytes);
    expect(x.disposed).toBe(false);
    x.dispose();
    expect(usage()).toEqual(start);
  });

  test("returned tensors survive and move to the enclosing scope", async () => {
    const start = usage();
    let inner: k.Tensor | null = null;
    let pair: { a: k.Tensor; b: k.Tensor[] } | null = null;
    k.scope(() => {
      inner = k.scope(() => {
        const a = k.ones([3]);
        return a.mul(2).add(1); // a and a·2 are freed, the result survives
      });
      pair = k.scope(() => ({ a: k.ones([2]), b: [k.zeros([2]), k.full([1], 7)] }));
      expect(inner.disposed).toBe(false);
      expect(pair.b[1].disposed).toBe(false);
      expect(usage().buffers).toBe(start.buffers + 4);
    });
    // the outer scope owned them and has ended: they are gone
    expect(inner!.disposed).toBe(true);
    expect(pair!.a.disposed).toBe(true);
    expect(pair!.b[0].disposed).toBe(true);
    expect(usage()).toEqual(start);
  });

  test("a tensor returned from the outermost scope is the caller's", async () => {
    const start = usage();
    const t = k.scope(() => k.ones([4]).mul(3));
    expect(await t.data()).toEqual(new Float32Array([3, 3, 3, 3]));
    expect(usage().buffers).toBe(start.buffers + 1);
    t.dispose();
    expect(usage()).toEqual(start);
  });

  test("keep() survives every enclosing scope until disposed by hand", () => {
    const start = usage();
    let kept: k.Tensor | null = null;
    k.scope(() => {
      k.scope(() => {
        kept = k.keep(k.ones([5]).add(1));
      });
      expect(kept!.disposed).toBe(false);
    });
    expect(kept!.disposed).toBe(false);
    expect(usage().buffers).toBe(start.buffers + 1);
    kept!.dispose();
    expect(usage()).toEqual(start);
  });

  test("nested scopes each free their own tensors", () => {
    const start = usage();
    k.scope(() => {
      const a = k.ones([10]);
      k.scope(() => {
        k.ones([10]).add(a);
        expect(usage().buffers).toBe(start.buffers + 3);
      });
      expect(usage().buffers).toBe(start.buffers + 1);
      expect(a.disposed).toBe(false);
      k.scope(() => {
        k.scope(() => k.zeros([3]).exp());
        expect(usage().buffers).toBe(start.buffers + 2); // the inner result moved here
      });
      expect(usage().buffers).toBe(start.buffers + 1);
    });
    expect(usage()).toEqual(start);
  });

  test("an exception inside a scope still frees its tensors and propagates", () => {
    const start = usage();
    expect(() =>
      k.scope(() => {
        k.ones([100]).mul(2);
        k.scope(() => {
          k.zeros([50]);
          throw new Error("step failed");
        });
      }),
    ).toThrow("step failed");
    expect(usage()).toEqual(start);
    // the scope stack is intact afterwards
    k.scope(() => {
      k.ones([1]);
    });
    expect(usage()).toEqual(start);
  });

  test("asyncScope frees after the awaited work; scope refuses a Promise", async () => {
    const start = usage();
    const v = await k.asyncScope(async () => {
      const t = k.ones([6]).mul(2);
      return (await t.data())[0];
    });
    expect(v).toBe(2);
    expect(usage()).toEqual(start);
    expect(() => k.scope(() => Promise.resolve(1))).toThrow(/\[scope\] fn returned a Promise: use asyncScope/);
    expect(usage()).toEqual(start);
  });

  test("dispose is idempotent, frees the gradient too, and a disposed tensor is a clear error", () => {
    const start = usage();
    const x = k.tensor([1, 2], undefined, { requiresGrad: true });
    x.mul(x).sum().backward();
    k.dispose(k.scope(() => 0)); // dispose() of a non-tensor is a no-op
    expect(x.grad).not.toBeNull();
    const grad = x.grad!;
    x.dispose();
    x.dispose();
    expect(grad.disposed).toBe(true);
    expect(() => x.add(1)).toThrow(/\[affine\] tensor .*f32\[2\] was disposed/);
    expect(() => x.dataSync()).toThrow(/\[dataSync\] tensor .* was disposed/);
    // the x·x and sum intermediates were made outside a scope: the caller never held them
    k.scope(() => {});
    expect(usage().buffers).toBeLessThanOrEqual(start.buffers + 2);
  });
});

describe("concurrent calls", () => {
  /** A promise the test resolves by hand: it fixes the order in which two async calls interleave. */
  const gate = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };

  test("two interleaved asyncScopes each free only their own tensors, whichever ends first", async () => {
    k.useBackend(backend);
    const start = usage();
    for (const firstToEnd of ["A", "B"] as const) {
      const aMade = gate(), bMade = gate(), aEnd = gate(), bEnd = gate();
      const seen: Record<string, k.Tensor[]> = { A: [], B: [] };
      const call = (name: "A" | "B", made: ReturnType<typeof gate>, other: ReturnType<typeof gate>, end: ReturnType<typeof gate>) =>
        k.asyncScope(async () => {
          const x = k.full([4], name === "A" ? 1 : 2);
          seen[name].push(x);
          made.open();
          await other.p; // the other call makes its tensors while this one is suspended
          const y = x.mul(10);
          seen[name].push(y);
          await end.p;
          seen[name].push(k.scope(() => y.add(1).mul(2))); // a sync scope nested in the async one
          return { y, sum: (await y.data())[0] };
        });
      const a = call("A", aMade, bMade, aEnd);
      const b = call("B", bMade, aMade, bEnd);
      await Promise.resolve();
      const [first, second] = firstToEnd === "A" ? [aEnd, bEnd] : [bEnd, aEnd];
      first.open();
      const firstResult = await (firstToEnd === "A" ? a : b);
      const stillRunning = firstToEnd === "A" ? "B" : "A";
      // the call that ended freed its x and its nested result, kept its returned y, and left the other call's tensors alone
      expect(seen[firstToEnd].map((t) => t.disposed)).toEqual([true, false, true]);
      expect(seen[stillRunning].map((t) => t.disposed)).toEqual([false, false]);
      second.open();
      const secondResult = await (firstToEnd === "A" ? b : a);
      expect(seen[stillRunning].map((t) => t.disposed)).toEqual([true, false, true]);
      const [ra, rb] = firstToEnd === "A" ? [firstResult, secondResult] : [secondResult, firstResult];
      expect([ra.sum, rb.sum]).toEqual([10, 20]);
      expect(Array.from(await ra.y.data())).toEqual([10, 10, 10, 10]);
      k.dispose([ra.y, rb.y]);
      expect(usage()).toEqual(start);
    }
  });

  test("a call's tensors made while another call's scope is open stay its own; keep() and sync scopes stay local", async () => {
    const start = usage();
    const aOpen = gate(), bOpen = gate(), aMade = gate(), aEnd = gate();
    let victim: k.Tensor | null = null;
    const a = k.asyncScope(async () => {
      aOpen.open();
      await bOpen.p; // B's scope opens while A's is open: a single stack would now put A's tensors in B's scope
      victim = k.ones([3]);
      aMade.open();
      await aEnd.p;
      return victim.disposed;
    });
    await aOpen.p;
    const kept = await k.asyncScope(async () => {
      bOpen.open();
      await aMade.p;
      k.scope(() => k.zeros([8]).add(1));
      return k.keep(k.ones([2]));
    });
    expect(victim!.disposed).toBe(false); // B has ended without taking A's tensor with it
    aEnd.open();
    expect(await a).toBe(false);
    expect(victim!.disposed).toBe(true); // freed when A's own scope ended
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(usage()).toEqual(start);
  });

  test("a tensor made by a call's straggling continuation after its scope ended joins the enclosing open scope", async () => {
    const start = usage();
    const later = gate();
    let straggler: Promise<k.Tensor> | null = null;
    await k.asyncScope(async () => {
      await k.asyncScope(async () => {
        straggler = later.p.then(() => k.ones([7])); // not awaited: it runs after this scope has ended
      });
      later.open();
      const t = await straggler!;
      expect(t.disposed).toBe(false); // owned by the outer scope, which is still open
    });
    expect((await straggler!).disposed).toBe(true); // and freed with it
    expect(usage()).toEqual(start);
  });
});

describe("views", () => {
  test("reshape views share storage: disposing the view keeps the base alive", async () => {
    const start = usage();
    const x = k.tensor([[1, 2, 3], [4, 5, 6]]);
    const v = x.reshape([3, 2]);
    expect(v.storage).toBe(x.storage);
    expect(usage().buffers).toBe(start.buffers + 1); // no new buffer for the view
    v.dispose();
    expect(x.disposed).toBe(false);
    expect(Array.from(await x.data())).toEqual([1, 2, 3, 4, 5, 6]);
    x.dispose();
    expect(usage()).toEqual(start);
  });

  test("disposing the base keeps the view (and its storage) alive", async () => {
    const start = usage();
    const x = k.tensor([1, 2, 3, 4]);
    const v = x.view(2, 2);
    const d = x.detach();
    x.dispose();
    expect(usage().buffers).toBe(start.buffers + 1);
    expect(await v.toArray()).toEqual([[1, 2], [3, 4]]);
    v.dispose();
    expect(Array.from(await d.data())).toEqual([1, 2, 3, 4]);
    d.dispose();
    expect(usage()).toEqual(start);
  });

  test("a view made in a scope is freed with it; the base made outside survives", async () => {
    const start = usage();
    const x = k.tensor([1, 2, 3, 4, 5, 6]);
    k.scope(() => {
      x.reshape(2, 3).reshape(-1, 2);
    });
    expect(Array.from(await x.data())).toEqual([1, 2, 3, 4, 5, 6]);
    x.dispose();
    expect(usage()).toEqual(start);
  });
});

describe("ops outside any scope", () => {
  // Every op here reads inputs the caller holds and returns a result the caller disposes; with no
  // graph to feed, whatever else the op made (saved statistics, moved copies) must already be
  // freed. `hold` registers the argument tensors a case makes inline, so the count is exact.
  type Case = (x: k.Tensor, w: k.Tensor, ids: k.Tensor, hold: <T extends k.Tensor>(t: T) => T) => k.Tensor | k.Tensor[];
  const CASES: [string, Case][] = [
    ["add with a materialized broadcast", (x, _w, _i, hold) => x.add(hold(x.narrow(2, 0, 1)))],
    ["softmax over a non-last axis", (x) => k.softmax(x, 0)],
    ["mean over two axes", (x) => k.mean(x, [0, 2], true)],
    ["max", (x) => k.max(x, 1)],
    ["matmul with batch broadcast and a 1-D operand", (x, w) => k.matmul(x, w)],
    ["matmul [M,K] @ [2,K,N]", (x, _w, _i, hold) => k.matmul(hold(k.ones([5, 2])), hold(hold(x.narrow(2, 0, 3)).narrow(1, 0, 2)))],
    ["linear with bias", (x, w, _i, hold) => k.linear(x, hold(k.ones([3, 4])), hold(w.narrow(0, 0, 3)))],
    ["layerNorm", (x, w) => k.layerNorm(x, w, w)],
    ["rmsNorm", (x, w) => k.rmsNorm(x, w)],
    ["attention", (x, _w, _i, hold) => {
      const q = hold(x.reshape([1, 3, 2, 4]));
      return k.attention(q, q, q);
    }],
    ["rope", (x, _w, _i, hold) => k.rope(hold(x.reshape([1, 3, 2, 4])))],
    ["embedding", (_x, w, _ids, hold) => k.embedding(hold(k.fromArray(Int32Array.of(0, 1, 1, 0), [2, 2])), hold(w.reshape([2, 2])))],
    ["crossEntropy mean", (x, _, ids) => k.crossEntropy(x, ids)],
    ["crossEntropy sum", (x, _, ids) => k.crossEntropy(x, ids, { reduction: "sum" })],
    ["crossEntropy none", (x, _, ids) => k.crossEntropy(x, ids, { reduction: "none" })],
    ["split and cat", (x, _w, _i, hold) => k.cat(k.split(x, [1, 2], 1).map(hold).reverse(), 1)],
    ["dropout", (x) => k.dropout(x, 0.5, true, new k.Rng(1))],
  ];

  for (const grad of [false, true]) {
    test.each(CASES)(`%s leaves only its result${grad ? " (under noGrad, inputs requiring grad)" : ""}`, (_, f) => {
      const start = usage();
      const x = k.randn([2, 3, 4], { requiresGrad: grad });
      const w = k.randn([4], { requiresGrad: grad });
      const ids = k.fromArray(Int32Array.of(0, 3, -100, 1, 2, 3), [2, 3]);
      const held: k.Tensor[] = [x, w, ids];
      const hold = <T extends k.Tensor>(t: T): T => (held.push(t), t);
      const out = grad ? k.noGrad(() => f(x, w, ids, hold)) : f(x, w, ids, hold);
      k.dispose([out, held]);
      expect(usage()).toEqual(start);
    });
  }
});

describe("training loop", () => {
  test("2000 AdamW steps of a tiny GPT, each in a scope: device memory stops growing after the first steps", async () => {
    k.useBackend(backend);
    const wasmMemory = () => (backend as WasmBackend).unsafeRuntime.memory.buffer.byteLength;
    const start = usage();
    const model = new k.GPT({ vocabSize: 11, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16 });
    const opt = new k.AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
    const rng = new k.Rng(5);
    const B = 4, T = 8, V = 11;
    // a learnable task: each sequence counts up from a random start, modulo V
    const batch = () => {
      const x = new Int32Array(B * T), y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        const s = rng.int(V);
        for (let t = 0; t < T; t++) {
          x[b * T + t] = (s + t) % V;
          y[b * T + t] = (s + t + 1) % V;
        }
      }
      return [k.fromArray(x, [B, T]), k.fromArray(y, [B, T])];
    };
    const losses: number[] = [];
    let settled: { buffers: number; bytes: number; memory: number } | null = null;
    for (let step = 0; step < 2000; step++) {
      const loss = k.scope(() => {
        const [x, y] = batch();
        const l = model.loss(x, y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l.dataSync()[0];
      });
      losses.push(loss);
      const now = { ...usage(), memory: wasmMemory() };
      if (step === 4) settled = now;
      if (step > 4) {
        // exact equality, every step: one leaked buffer anywhere would show
        expect(now).toEqual(settled!);
      }
    }
    expect(backend.stats().peakBytes).toBeLessThan(4 * 1024 * 1024);
    // and it learned (a training loop that silently did nothing would pass the memory checks)
    expect(losses[1999]).toBeLessThan(0.5 * losses[0]);
    model.dispose();
    opt.dispose();
    expect(usage()).toEqual(start);
  });
});
