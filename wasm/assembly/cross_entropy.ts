// cross_entropy (per-row loss and log-sum-exp) and cross_entropy_backward (dlogits) for
// logits [N, V] and i32 targets [N]. Rows with targets[i] = ignoreIndex or outside [0, V) get
// loss 0 (lse still written) and a zero gradient row. Max-subtracted, vector exp, log in f64.
// Reference: tests/reference.ts crossEntropy, crossEntropyBackward.
import { at, hmax, hsum, sexpFast, vexpFast } from "./common";

export function cross_entropy_f32(logits: usize, targets: usize, loss: usize, lse: usize, N: i32, V: i32, ignoreIndex: i32): void {
  for (let i = 0; i < N; i++) {
    const row = at(logits, i * V);
    let vm = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= V; j += 4) vm = f32x4.pmax(vm, v128.load(at(row, j)));
    let m = hmax(vm);
    for (; j < V; j++) m = max(m, load<f32>(at(row, j)));
    const vmax = f32x4.splat(m);
    let vs = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= V; j += 4) vs = f32x4.add(vs, vexpFast(f32x4.sub(v128.load(at(row, j)), vmax)));
    let s = hsum(vs);
    for (; j < V; j++) s += sexpFast(load<f32>(at(row, j)) - m);
    const l = <f64>m + Math.log(<f64>s);
    store<f32>(at(lse, i), <f32>l);
    const t = load<i32>(at(targets, i));
    const valid = t != ignoreIndex && t >= 0 && t < V;
    store<f32>(at(loss, i), valid ? <f32>(l - <f64>load<f32>(at(row, t))) : 0);
  }
}

export function cross_entropy_backward_f32(
  logits: usize, targets: usize, lse: usize, dloss: usize, dlogits: usize, N: i32, V: i32, ignoreIndex: i32,
): void {
  for (let i = 0; i < N; i++) {
    const row = at(logits, i * V), drow = at(dlogits, i * V);
    const t = load<i32>(at(targets, i));
    if (t == ignoreIndex || t < 0 || t >= V) {
      memory.fill(drow, 0, <usize>V << 2);
      continue;
    }
    const l = load<f32>(at(lse, i)), g = load<f32>(at(dloss, i));
    const vl = f32x4.splat(l), vg = f32x4.splat(g);
    let j = 0;
    for (; j + 4 <= V; j += 4) {
      v128.store(at(drow, j), f32x4.mul(vg, vexpFast(f32x4.sub(v128.load(at(row, j)), vl))));
    }
    for (; j < V; j++) store<f32>(at(drow, j), g * sexpFast(load<f32>(at(row, j)) - l));
    store<f32>(at(drow, t), g * (sexpFast(load<f32>(at(row, t)) - l) - 1));
  }
}
