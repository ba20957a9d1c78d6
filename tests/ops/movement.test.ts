// The shape and layout front end (src/ops/movement.ts): reshape/view (with -1, sharing storage),
// permute, transpose, expand (new leading dims, [N, 1] -> [N, C], -1), narrow and split on middle
// axes, cat on first, middle and last axes. Forward against plain float64 JS gathers; gradients
// against finite differences with the rule sabotaged in a second run; the shape errors.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, hostGather, indices, noLeaks, offsetOf, onBackend, rand, sizeOf } from "./helpers.ts";

describe.each(backendNames)("movement on %s", (name) => {
  onBackend(name);

  test("reshape, permute, narrow, split and expand move i32 tensors bit for bit", async () => {
    await noLeaks(async () => {
      // values whose bit patterns are float NaNs, -0 and denormals: any float arithmetic would alter them
      const v = [-4194305, -2147483648, 7, -100, 2147483647, -1];
      const ids = k.fromArray(Int32Array.from(v), [2, 3]);
      expect(Array.from(await ids.reshape(3, 2).data())).toEqual(v);
      expect(Array.from(await ids.transpose().data())).toEqual([v[0], v[3], v[1], v[4], v[2], v[5]]);
      expect(Array.from(await ids.narrow(1, 1, 2).data())).toEqual([v[1], v[2], v[4], v[5]]);
      expect(Array.from(await k.split(ids, [1, 1], 0)[1].data())).toEqual(v.slice(3));
      expect(Array.from(await ids.narrow(0, 0, 1).expand(2, 3).data())).toEqual([...v.slice(0, 3), ...v.slice(0, 3)]);
      expect(ids.transpose().dtype).toBe("i32");
    });
  });

  describe("reshape", () => {
    test("reshape keeps the elements in order, infers -1, and view is the same op", async () => {
      await noLeaks(async () => {
        const x = rand([2, 3, 4], "reshape");
        await expectClose(k.reshape(x.t, [4, -1]), [4, 6], x.v, { atol: 0, rtol: 0 });
        await expectClose(x.t.reshape(6, 4), [6, 4], x.v, { atol: 0, rtol: 0 });
        await expectClose(x.t.view([24]), [24], x.v, { atol: 0, rtol: 0 });
        await expectClose(x.t.reshape([2, -1, 2]), [2, 6, 2], x.v, { atol: 0, rtol: 0 });
      });
    });

    test("reshape to a wrong size is a clear error", () => {
      const x = k.zeros([2, 3]);
      expect(() => x.reshape([4, 2])).toThrow(/\[reshape\] cannot view f32\[2, 3\]|\[reshape\] cannot view #\d+ f32\[2, 3\] as \[4, 2\]/);
      expect(() => x.reshape([-1, 4])).toThrow(/\[reshape\] cannot infer -1/);
      x.dispose();
    });

    test("reshape gradient matches finite differences", async () => {
      await noLeaks(async () => {
        // the multiply after the reshape makes the layout matter to the loss
        const w = rand([4, 6], "reshape-w").t;
        await expectGrad((x) => x.reshape([4, 6]).mul(w), [rand([2, 3, 4], "reshape-grad").t], { tol: 1e-3, mutate: ["reshape"] });
      });
    });
  });

  describe("permute and transpose", () => {
    const PERMS: [number[], number[]][] = [
      [[2, 3, 4], [2, 0, 1]],
      [[2, 3, 4], [1, 0, 2]],
      [[2, 3, 1, 5], [3, 1, 0, 2]],
      [[2, 3, 4, 5], [0, 2, 1, 3]],
      [[3, 4], [-1, -2]],
    ];

    test.each(PERMS)("permute %p by %p matches float64", async (shape, dims) => {
      await noLeaks(async () => {
        const x = rand(shape, `permute-${shape}-${dims}`);
        const norm = dims.map((d) => (d < 0 ? d + shape.length : d));
        const outShape = norm.map((d) => shape[d]);
        const want = hostGather(x.v, shape, outShape, (idx) => {
          const src = new Array<number>(shape.length);
          norm.forEach((d, i) => (src[d] = idx[i]));
          return src;
        });
        await expectClose(k.permute(x.t, dims), outShape, want, { atol: 0, rtol: 0 });
        await expectClose(x.t.permute(...dims), outShape, want, { atol: 0, rtol: 0 });
      });
    });

    test.each(PERMS)("permute %p by %p: gradient matches finite differences", async (shape, dims) => {
      await noLeaks(async () => {
        await expectGrad((x) => k.permute(x, dims), [rand(shape, `permute-grad-${shape}-${dims}`).t], { tol: 1e-3, mutate: ["permute"] });
      });
    });

    test("transpose swaps two dims (default: the last two)", async () => {
      await noLeaks(async () => {
        const x = rand([2, 3, 4], "transpose");
        const last = hostGather(x.v, [2, 3, 4], [2, 4, 3], ([a, b, c]) => [a, c, b]);
        await expectClose(x.t.transpose(), [2, 4, 3], last, { atol: 0, rtol: 0 });
        const outer = hostGather(x.v, [2, 3, 4], [4, 3, 2], ([a, b, c]) => [c, b, a]);
        await expectClose(k.transpose(x.t, 0, 2), [4, 3, 2], outer, { atol: 0, rtol: 0 });
        await expectGrad((t) => k.transpose(t, 0, -1), [x.t], { tol: 1e-3, mutate: ["permute"] });
      });
    });

    test("a bad permutation is a clear error", () => {
      const x = k.zeros([2, 3, 4]);
      expect(() => x.permute(0, 0, 1)).toThrow(/\[permute\] \[0, 0, 1\] is not a permutation of 3 dims/);
      expect(() => x.permute(0, 1)).toThrow(/\[permute\]/);
      expect(() => x.permute(0, 1, 3)).toThrow(/\[permute\] axis 3 is out of range/);
      x.dispose();
    });
  });

  describe("expand", () => {
    const EXPANDS: [number[], number[], number[]][] = [
      // in shape, argument, out shape
      [[4, 1], [4, 5], [4, 5]],
      [[5], [3, 5], [3, 5]],
      [[1, 3], [2, 4, 3], [2, 4, 3]],
      [[2, 1, 3], [2, 4, -1], [2, 4, 3]],
      [[3, 1, 1], [-1, 2, 5], [3, 2, 5]],
    ];

    test.each(EXPANDS)("expand %p to %p matches float64", async (shape, arg, outShape) => {
      await noLeaks(async () => {
        const x = rand(shape, `expand-${shape}-${arg}`);
        const lead = outShape.length - shape.length;
        const want = hostGather(x.v, shape, outShape, (idx) => shape.map((d, i) => (d === 1 ? 0 : idx[lead + i])));
        await expectClose(k.expand(x.t, arg), outShape, want, { atol: 0, rtol: 0 });
        await expectClose(x.t.expand(...arg), outShape, want, { atol: 0, rtol: 0 });
      });
    });

    test.each(EXPANDS)("expand %p to %p: gradient matches finite differences", async (shape, arg) => {
      await noLeaks(async () => {
        await expectGrad((x) => k.expand(x, arg), [rand(shape, `expand-grad-${shape}`).t], { tol: 1e-3, mutate: ["expand"] });
      });
    });

    test("expanding a dim that is not 1 is a clear error", () => {
      const x = k.zeros([2, 3]);
      expect(() => x.expand(4, 3)).toThrow(/\[expand\] cannot expand .*f32\[2, 3\] to \[4, 3\]/);
      expect(() => x.expand(3)).toThrow(/\[expand\] cannot expand .* to fewer dims/);
      x.dispose();
    });
  });

  describe("narrow and split", () => {
    const NARROWS: [number[], number, number, number][] = [
      [[3, 7, 4], 1, 2, 3], // middle axis
      [[3, 7, 4], -2, 0, 7], // the whole axis
      [[5, 6], 0, 4, 1],
      [[2, 3, 4, 5], 2, 1, 2],
      [[2, 3, 4, 5], -1, 3, 2],
    ];

    test.each(NARROWS)("narrow %p on axis %d from %d, length %d, matches float64", async (shape, axis, start, length) => {
      await noLeaks(async () => {
        const x = rand(shape, `narrow-${shape}-${axis}-${start}`);
        const a = axis < 0 ? axis + shape.length : axis;
        const outShape = shape.map((d, i) => (i === a ? length : d));
        const want = hostGather(x.v, shape, outShape, (idx) => idx.map((v, i) => (i === a ? v + start : v)));
        await expectClose(k.narrow(x.t, axis, start, length), outShape, want, { atol: 0, rtol: 0 });
        await expectClose(x.t.narrow(axis, start, length), outShape, want, { atol: 0, rtol: 0 });
      });
    });

    test.each(NARROWS)("narrow %p on axis %d from %d, length %d: gradient matches finite differences", async (shape, axis, start, length) => {
      await noLeaks(async () => {
        await expectGrad((x) => k.narrow(x, axis, start, length), [rand(shape, `narrow-grad-${shape}-${axis}`).t], { tol: 1e-3, mutate: ["narrow"] });
      });
    });

    test("split on a middle axis gives the narrows, and its gradient matches finite differences", async () => {
      await noLeaks(async () => {
        const shape = [2, 6, 3];
        const x = rand(shape, "split");
        const pieces = k.split(x.t, [1, 3, 2], 1);
        expect(pieces.map((p) => [...p.shape])).toEqual([[2, 1, 3], [2, 3, 3], [2, 2, 3]]);
        let start = 0;
        for (const p of pieces) {
          const len = p.shape[1];
          const s = start;
          await expectClose(p, p.shape, hostGather(x.v, shape, p.shape, ([a, b, c]) => [a, b + s, c]), { atol: 0, rtol: 0 });
          start += len;
        }
        const f = (t: k.Tensor) => {
          const [a, b, c] = k.split(t, [1, 3, 2], 1);
          return k.cat([c.mul(3), a, b.mul(-2)], 1);
        };
        await expectGrad(f, [x.t], { tol: 1e-3, mutate: ["narrow"] });
      });
    });

    test("a narrow outside the dim is a clear error", () => {
      const x = k.zeros([2, 5]);
      expect(() => x.narrow(1, 3, 3)).toThrow(/\[narrow\] range \[3, 6\) is outside dim 1/);
      expect(() => x.narrow(1, -1, 2)).toThrow(/\[narrow\]/);
      x.dispose();
    });
  });

  describe("cat", () => {
    const CATS: [string, number[][], number][] = [
      ["[2,3] [4,3] on axis 0", [[2, 3], [4, 3]], 0],
      ["[2,1,4] [2,3,4] [2,2,4] on axis 1", [[2, 1, 4], [2, 3, 4], [2, 2, 4]], 1], // middle axis, three parts
      ["[2,3,1] [2,3,5] on axis -1", [[2, 3, 1], [2, 3, 5]], -1],
      ["[3,2,2,2] [3,1,2,2] on axis 1", [[3, 2, 2, 2], [3, 1, 2, 2]], 1],
      ["[5] on axis 0", [[5]], 0],
    ];

    test.each(CATS)("cat of %s matches float64", async (_, shapes, axis) => {
      await noLeaks(async () => {
        const parts = shapes.map((s, i) => rand(s, `cat-${shapes}-${i}`));
        const a = axis < 0 ? axis + shapes[0].length : axis;
        const outShape = shapes[0].map((d, i) => (i === a ? shapes.reduce((n, s) => n + s[a], 0) : d));
        // host cat: walk the output and find which part each index falls in
        const want = new Float64Array(sizeOf(outShape));
        let w = 0;
        for (const idx of indices(outShape)) {
          let j = idx[a], p = 0;
          while (j >= shapes[p][a]) j -= shapes[p++][a];
          const src = idx.map((v, i) => (i === a ? j : v));
          want[w++] = parts[p].v[offsetOf(src, shapes[p])];
        }
        await expectClose(k.cat(parts.map((p) => p.t), axis), outShape, want, { atol: 0, rtol: 0 });
      });
    });

    test.each(CATS)("cat of %s: gradient matches finite differences", async (_, shapes, axis) => {
      await noLeaks(async () => {
        const parts = shapes.map((s, i) => rand(s, `cat-grad-${shapes}-${i}`).t);
        await expectGrad((...xs) => k.cat(xs, axis), parts, { tol: 1e-3, mutate: ["cat"] });
      });
    });

    test("cat of i32 tensors is refused (a float scatter-add would corrupt their bits)", () => {
      k.scope(() => {
        const ids = k.fromArray(Int32Array.of(-4194305, -2147483648, 7, -100), [2, 2]);
        expect(() => k.cat([ids, ids], 1)).toThrow(/\[cat\] expects f32 tensors, got .*i32\[2, 2\]/);
      });
    });

    test("cat of mismatched tensors is a clear error", () => {
      const a = k.zeros([2, 3]);
      const b = k.zeros([3, 3]);
      expect(() => k.cat([a, b], 1)).toThrow(/\[cat\] .*f32\[3, 3\] does not match .*f32\[2, 3\] outside dim 1/);
      expect(() => k.cat([])).toThrow(/\[cat\] needs at least one tensor/);
      a.dispose();
      b.dispose();
    });
  });
});
