// Movement kernels: copy (strided gather into a contiguous output) and copy_backward (its
// adjoint, a scatter-add). View of up to 6 dims d0..d5 with element strides s0..s5 (unused dims
// are 1, anywhere: the loops ignore `rank`). The innermost (d4, d5) plane moves as whole rows when
// s5 = 1, else in 16×16 tiles (a transpose then reads each source cache line once).
// Reference: out[i0,..,i5] = x[offset + Σ_j i_j·s_j] (src/backend/kernels.ts, tests/reference.ts).
import { at } from "./common";

const TILE = 16;

export function copy_f32(
  x: usize, out: usize, n: i32, rank: i32, offset: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
): void {
  walk(false, x, out, offset, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}

export function copy_backward_f32(
  dout: usize, dx: usize, n: i32, rank: i32, offset: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
): void {
  walk(true, dx, dout, offset, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}

/** Visits the view plane by plane; `strided` is x (copy) or dx (copy_backward), `dense` the contiguous side. */
@inline function walk(
  scatter: bool, strided: usize, dense: usize, offset: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
): void {
  // unit dims may sit anywhere: move them to the front, so (d4, d5) is the innermost real plane
  for (let r = 0; r < 5 && d5 == 1; r++) {
    d5 = d4; s5 = s4; d4 = d3; s4 = s3; d3 = d2; s3 = s2; d2 = d1; s2 = s1; d1 = d0; s1 = s0; d0 = 1; s0 = 0;
  }
  for (let r = 0; r < 4 && d4 == 1; r++) {
    d4 = d3; s4 = s3; d3 = d2; s3 = s2; d2 = d1; s2 = s1; d1 = d0; s1 = s0; d0 = 1; s0 = 0;
  }
  const planeBytes = (<usize>d4 * <usize>d5) << 2;
  let o = dense;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        for (let i3 = 0; i3 < d3; i3++) {
          const base = offset + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3;
          if (scatter) scatterPlane(strided, o, base, d4, d5, s4, s5);
          else gatherPlane(strided, o, base, d4, d5, s4, s5);
          o += planeBytes;
        }
      }
    }
  }
}

/** out[i4·d5 + i5] = x[base + i4·s4 + i5·s5] */
function gatherPlane(x: usize, out: usize, base: i32, d4: i32, d5: i32, s4: i32, s5: i32): void {
  if (s5 == 1) {
    for (let i4 = 0; i4 < d4; i4++) memory.copy(at(out, i4 * d5), at(x, base + i4 * s4), <usize>d5 << 2);
    return;
  }
  for (let t4 = 0; t4 < d4; t4 += TILE) {
    const e4 = min(d4, t4 + TILE);
    for (let t5 = 0; t5 < d5; t5 += TILE) {
      const e5 = min(d5, t5 + TILE);
      for (let i4 = t4; i4 < e4; i4++) {
        const src = base + i4 * s4, dst = at(out, i4 * d5);
        for (let i5 = t5; i5 < e5; i5++) store<f32>(at(dst, i5), load<f32>(at(x, src + i5 * s5)));
      }
    }
  }
}

/** dx[base + i4·s4 + i5·s5] += dout[i4·d5 + i5] */
function scatterPlane(dx: usize, dout: usize, base: i32, d4: i32, d5: i32, s4: i32, s5: i32): void {
  if (s5 == 1) {
    for (let i4 = 0; i4 < d4; i4++) {
      const d = at(dx, base + i4 * s4), g = at(dout, i4 * d5);
      let i5 = 0;
      for (; i5 + 4 <= d5; i5 += 4) {
        const k = <usize>i5 << 2;
        v128.store(d + k, f32x4.add(v128.load(d + k), v128.load(g + k)));
      }
      for (; i5 < d5; i5++) store<f32>(at(d, i5), load<f32>(at(d, i5)) + load<f32>(at(g, i5)));
    }
    return;
  }
  for (let t4 = 0; t4 < d4; t4 += TILE) {
    const e4 = min(d4, t4 + TILE);
    for (let t5 = 0; t5 < d5; t5 += TILE) {
      const e5 = min(d5, t5 + TILE);
      for (let i4 = t4; i4 < e4; i4++) {
        const dst = base + i4 * s4, g = at(dout, i4 * d5);
        for (let i5 = t5; i5 < e5; i5++) {
          const p = at(dx, dst + i5 * s5);
          store<f32>(p, load<f32>(p) + load<f32>(at(g, i5)));
        }
      }
    }
  }
}
