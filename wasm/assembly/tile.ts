// One register tile of h ≤ MR rows × w ≤ NR columns over the micro-kernels of matmul_micro.ts:
// C[0:h, 0:w] = init + Σ_k A(r, k)·Bp[k, :] (accum != 0: added to C). A(r, k) is read at
// a + r·rs + k·ks; Bp is a packed strip [kc][NR] (a strip of width ≤ 4 may be [kc][4]).
// A full tile goes straight to C; a partial one is computed into a MR×NR scratch tile and copied.
// The micro-kernels always read MR rows of A: the caller keeps rows h..MR−1 readable (packed zero
// rows or padding). Used by matmul.ts and attention_tiles.ts.
import { micro_6x8, micro_6x4 } from "./matmul_micro";

/** Register tile: rows × columns (the generated micro_6x8; wasm/gen_matmul.mjs). */
export const MR = 6;
export const NR = 8;

export function tileMul(
  a: usize, rs: usize, ks: usize, bstrip: usize, c: usize, ldc: usize, kc: i32,
  init: usize, accum: i32, h: i32, w: i32, tile: usize,
): void {
  if (h == MR && w == NR) {
    micro_6x8(a, rs, ks, bstrip, c, ldc, kc, init, accum);
    return;
  }
  const tld: usize = NR * 4;
  if (accum) {
    for (let r = 0; r < h; r++) for (let j = 0; j < w; j++) {
      store<f32>(tile + <usize>r * tld + (<usize>j << 2), load<f32>(c + <usize>r * ldc + (<usize>j << 2)));
    }
  }
  if (w > 4) micro_6x8(a, rs, ks, bstrip, tile, tld, kc, init, accum);
  else micro_6x4(a, rs, ks, bstrip, tile, tld, kc, init, accum);
  for (let r = 0; r < h; r++) for (let j = 0; j < w; j++) {
    store<f32>(c + <usize>r * ldc + (<usize>j << 2), load<f32>(tile + <usize>r * tld + (<usize>j << 2)));
  }
}

/** 4 rows × 4 floats at s (row stride rowBytes) → 4 rows of 4 at d, d + 32, d + 64, d + 96: a 4×4 block of a packed strip [k][NR]. */
@inline export function transpose4(s: usize, rowBytes: usize, d: usize): void {
  const r0 = v128.load(s), r1 = v128.load(s + rowBytes), r2 = v128.load(s + rowBytes * 2), r3 = v128.load(s + rowBytes * 3);
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);  // r0[0] r1[0] r0[1] r1[1]
  const t1 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t2 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(d, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(d, f32x4.shuffle(t0, t1, 2, 3, 6, 7), NR * 4);
  v128.store(d, f32x4.shuffle(t2, t3, 0, 1, 4, 5), NR * 8);
  v128.store(d, f32x4.shuffle(t2, t3, 2, 3, 6, 7), NR * 12);
}
