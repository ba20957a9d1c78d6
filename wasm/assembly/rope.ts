// rope and rope_backward: Hugging Face "rotate half" rotary embedding on x [B, T, H, D].
// For position p = offset + t and i < D/2: θ = p·theta^(−2i/D); angles and cos/sin in f64 once per
// (t, i), then applied to every (b, h) with f32x4 over i. rope_backward rotates by −θ.
// Reference: tests/reference.ts rope, ropeBackward; in place (out = x) is allowed.
import { at } from "./common";

export function rope_f32(x: usize, out: usize, B: i32, T: i32, H: i32, D: i32, theta: f64, offset: i32): void {
  rotate(x, out, B, T, H, D, theta, offset, 1);
}

export function rope_backward_f32(dout: usize, dx: usize, B: i32, T: i32, H: i32, D: i32, theta: f64, offset: i32): void {
  rotate(dout, dx, B, T, H, D, theta, offset, -1);
}

@inline function angle(t: i32, i: i32, D: i32, theta: f64, offset: i32): f64 {
  return <f64>(offset + t) * Math.pow(theta, <f64>(-2 * i) / <f64>D);
}

@inline function rotate(x: usize, out: usize, B: i32, T: i32, H: i32, D: i32, theta: f64, offset: i32, sign: f64): void {
  const half = D >> 1;
  for (let t = 0; t < T; t++) {
    let i = 0;
    for (; i + 4 <= half; i += 4) {
      let vc = f32x4.splat(0), vs = f32x4.splat(0);
      const a0 = angle(t, i, D, theta, offset), a1 = angle(t, i + 1, D, theta, offset);
      const a2 = angle(t, i + 2, D, theta, offset), a3 = angle(t, i + 3, D, theta, offset);
      vc = f32x4.replace_lane(vc, 0, <f32>Math.cos(a0));
      vc = f32x4.replace_lane(vc, 1, <f32>Math.cos(a1));
      vc = f32x4.replace_lane(vc, 2, <f32>Math.cos(a2));
      vc = f32x4.replace_lane(vc, 3, <f32>Math.cos(a3));
      vs = f32x4.replace_lane(vs, 0, <f32>(sign * Math.sin(a0)));
      vs = f32x4.replace_lane(vs, 1, <f32>(sign * Math.sin(a1)));
      vs = f32x4.replace_lane(vs, 2, <f32>(sign * Math.sin(a2)));
      vs = f32x4.replace_lane(vs, 3, <f32>(sign * Math.sin(a3)));
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const base = ((b * T + t) * H + h) * D;
          const p1 = at(x, base + i), p2 = at(x, base + i + half);
          const x1 = v128.load(p1), x2 = v128.load(p2);
          v128.store(at(out, base + i), f32x4.sub(f32x4.mul(x1, vc), f32x4.mul(x2, vs)));
          v128.store(at(out, base + i + half), f32x4.add(f32x4.mul(x2, vc), f32x4.mul(x1, vs)));
        }
      }
    }
    for (; i < half; i++) {
      const a = angle(t, i, D, theta, offset);
      const c = <f32>Math.cos(a), s = <f32>(sign * Math.sin(a));
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const base = ((b * T + t) * H + h) * D;
          const x1 = load<f32>(at(x, base + i)), x2 = load<f32>(at(x, base + i + half));
          store<f32>(at(out, base + i), x1 * c - x2 * s);
          store<f32>(at(out, base + i + half), x2 * c + x1 * s);
        }
      }
    }
  }
}
