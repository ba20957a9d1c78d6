// Movement kernels: copy (strided gather into a contiguous output) and copy_backward (its
// adjoint, a scatter-add). View of up to 6 dims d0..d5 with element strides s0..s5 (unused dims
// are 1, so the loops ignore `rank`); contiguous innermost runs (s5 = 1) move as whole blocks.
// Reference: out[i0,..,i5] = x[offset + Σ_j i_j·s_j] (src/backend/kernels.ts, tests/reference.ts).
import { at } from "./common";

export function copy_f32(
  x: usize, out: usize, n: i32, rank: i32, offset: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
): void {
  let o = out;
  const run = <usize>d5 << 2;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        for (let i3 = 0; i3 < d3; i3++) {
          for (let i4 = 0; i4 < d4; i4++) {
            const base = offset + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4;
            if (s5 == 1) {
              memory.copy(o, at(x, base), run);
            } else {
              for (let i5 = 0; i5 < d5; i5++) store<f32>(at(o, i5), load<f32>(at(x, base + i5 * s5)));
            }
            o += run;
          }
        }
      }
    }
  }
}

export function copy_backward_f32(
  dout: usize, dx: usize, n: i32, rank: i32, offset: i32,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
): void {
  let o = dout;
  const run = <usize>d5 << 2;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        for (let i3 = 0; i3 < d3; i3++) {
          for (let i4 = 0; i4 < d4; i4++) {
            const base = offset + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4;
            if (s5 == 1) {
              const d = at(dx, base);
              let i5 = 0;
              for (; i5 + 4 <= d5; i5 += 4) {
                const k = <usize>i5 << 2;
                v128.store(d + k, f32x4.add(v128.load(d + k), v128.load(o + k)));
              }
              for (; i5 < d5; i5++) store<f32>(at(d, i5), load<f32>(at(d, i5)) + load<f32>(at(o, i5)));
            } else {
              for (let i5 = 0; i5 < d5; i5++) {
                const d = at(dx, base + i5 * s5);
                store<f32>(d, load<f32>(d) + load<f32>(at(o, i5)));
              }
            }
            o += run;
          }
        }
      }
    }
  }
}
