// kernels/attention.wgsl: fused scaled-dot-product attention with grouped-query heads (kernels.ts
// "attention"). q [B, T, H, D], k and v [B, S, Hkv, D]; head h reads kv head h / (H / Hkv); when
// causal, query t sees keys j <= t + S − T. One thread per query row (or per key row for dk/dv),
// scores recomputed on the fly (no T×S matrix), outputs kept in registers DC dims at a time.
//   attention                 q@0 k@1 v@2 out@3 lse@4 Params; online softmax over the keys
//   attention_row             the same bindings; one workgroup per query row (few rows: decoding),
//                             threads splitting the keys, joined by wg_max / wg_sum
//   attention_backward_delta  dout@0 out@1 delta@2 Params: delta[b, h, t] = Σ_d dout·out (scratch)
//   attention_backward        dout@0 q@1 k@2 v@3 lse@4 delta@5 dq@6 Params: thread per query row,
//                             dq = scale·Σ_j p·(dp − delta)·k[j]
//   attention_backward_dkv    dout@0 q@1 k@2 v@3 lse@4 delta@5 dk@6 dv@7 Params: thread per key row
//                             (b, j, kv head), summing over the heads of its group and the queries
// Params{B, T, S, H, Hkv, D, scale, causal, qRow, kvRow, qOff, kOff, vOff, dvIn}; q, k, v (and dq,
// dk, dv) are strided views (kernels.ts; qRow and kvRow never 0 here), out, lse, dout packed;
// dvIn = 1: dv is written through the dk binding (dq, dk, dv one buffer: writable bindings must not
// alias, so dv's binding is then a dummy). The grid is folded into x and y.

override WG: u32 = 64;
override RW: u32 = 64;
const DC: u32 = 64u;

struct Params {
  B: u32, T: u32, S: u32, H: u32, Hkv: u32, D: u32, scale: f32, causal: u32,
  qRow: u32, kvRow: u32, qOff: u32, kOff: u32, vOff: u32, dvIn: u32,
}

/** Offsets of q/dq, of out/dout (packed), of k/dk and of v/dv rows. */
fn q_off(p: Params, b: u32, t: u32, h: u32) -> u32 { return p.qOff + (b * p.T + t) * p.qRow + h * p.D; }
fn o_off(p: Params, b: u32, t: u32, h: u32) -> u32 { return ((b * p.T + t) * p.H + h) * p.D; }
fn k_off(p: Params, b: u32, j: u32, g: u32) -> u32 { return p.kOff + (b * p.S + j) * p.kvRow + g * p.D; }
fn v_off(p: Params, b: u32, j: u32, g: u32) -> u32 { return p.vOff + (b * p.S + j) * p.kvRow + g * p.D; }

/** Keys visible to query t: [0, end). */
fn key_end(p: Params, t: u32) -> u32 {
  if (p.causal == 0u) { return p.S; }
  return u32(clamp(i32(t) + i32(p.S) - i32(p.T) + 1, 0, i32(p.S)));
}

/** First query that sees key j. */
fn query_start(p: Params, j: u32) -> u32 {
  if (p.causal == 0u) { return 0u; }
  return u32(max(i32(j) + i32(p.T) - i32(p.S), 0));
}

@group(0) @binding(0) var<storage, read> fq: array<f32>;
@group(0) @binding(1) var<storage, read> fk: array<f32>;
@group(0) @binding(2) var<storage, read> fv: array<f32>;
@group(0) @binding(3) var<storage, read_write> fout: array<f32>;
@group(0) @binding(4) var<storage, read_write> flse: array<f32>;
@group(0) @binding(5) var<uniform> fp: Params;

@compute @workgroup_size(WG)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = fp;
  let i = flat_id(wid, nwg, lid, WG); // (b·H + h)·T + t
  if (i >= p.B * p.H * p.T) { return; }
  let t = i % p.T;
  let h = (i / p.T) % p.H;
  let b = i / (p.T * p.H);
  let g = h / (p.H / p.Hkv);
  let qo = q_off(p, b, t, h);
  let oo = o_off(p, b, t, h);
  let jend = key_end(p, t);
  let neg_inf = k_neg_inf(min(p.B, 0u));
  var m = neg_inf;
  var l = 0.0;
  for (var d0 = 0u; d0 < p.D; d0 += DC) {
    let dn = min(DC, p.D - d0);
    var acc: array<f32, DC>;
    for (var e = 0u; e < DC; e++) { acc[e] = 0.0; }
    m = neg_inf;
    l = 0.0;
    for (var j = 0u; j < jend; j++) {
      let ko = k_off(p, b, j, g);
      let vo = v_off(p, b, j, g);
      var s = 0.0;
      for (var e = 0u; e < p.D; e++) { s += fq[qo + e] * fk[ko + e]; }
      s *= p.scale;
      let mn = max(m, s);
      let corr = exp(m - mn);
      let pj = exp(s - mn);
      l = l * corr + pj;
      for (var e = 0u; e < dn; e++) { acc[e] = acc[e] * corr + pj * fv[vo + d0 + e]; }
      m = mn;
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var e = 0u; e < dn; e++) { fout[oo + d0 + e] = acc[e] * inv; }
  }
  flse[i] = select(m + log(l), neg_inf, jend == 0u);
}

// ---- attention_row: one workgroup of RW threads per query row (for few rows: decoding a token).
// Thread r takes keys r, r + RW, ... with its own online softmax (m_r, l_r, acc_r); the rows's max
// and sum come from wg_max / wg_sum (subgroup operations where the adapter has them), and the
// outputs from the threads' rescaled accumulators added up in shared memory. RW <= 64.
var<workgroup> att_part: array<f32, 4096>; // [RW][DC]

@compute @workgroup_size(RW)
fn attention_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let p = fp;
  let i = wid.y * nwg.x + wid.x; // (b·H + h)·T + t, the same for the whole workgroup
  if (i >= p.B * p.H * p.T) { return; }
  let t = i % p.T;
  let h = (i / p.T) % p.H;
  let b = i / (p.T * p.H);
  let g = h / (p.H / p.Hkv);
  let qo = q_off(p, b, t, h);
  let oo = o_off(p, b, t, h);
  let jend = key_end(p, t);
  let neg_inf = k_neg_inf(min(p.B, 0u));
  let r = lane.index;
  var big_m = neg_inf;
  var big_l = 0.0;
  for (var d0 = 0u; d0 < p.D; d0 += DC) {
    let dn = min(DC, p.D - d0);
    var acc: array<f32, DC>;
    for (var e = 0u; e < DC; e++) { acc[e] = 0.0; }
    var m = neg_inf;
    var l = 0.0;
    for (var j = r; j < jend; j += RW) {
      let ko = k_off(p, b, j, g);
      let vo = v_off(p, b, j, g);
      var s = 0.0;
      for (var e = 0u; e < p.D; e++) { s += fq[qo + e] * fk[ko + e]; }
      s *= p.scale;
      let mn = max(m, s);
      let corr = exp(m - mn);
      let pj = exp(s - mn);
      l = l * corr + pj;
      for (var e = 0u; e < dn; e++) { acc[e] = acc[e] * corr + pj * fv[vo + d0 + e]; }
      m = mn;
    }
    big_m = wg_max(m, lane, RW);
    let w = select(exp(m - big_m), 0.0, l == 0.0); // this thread's share; 0 when it saw no key
    big_l = wg_sum(l * w, lane, RW);
    for (var e = 0u; e < dn; e++) { att_part[r * DC + e] = acc[e] * w; }
    workgroupBarrier();
    let inv = select(0.0, 1.0 / big_l, big_l > 0.0);
    for (var e = r; e < dn; e += RW) {
      var o = 0.0;
      for (var q = 0u; q < RW; q++) { o += att_part[q * DC + e]; }
      fout[oo + d0 + e] = o * inv;
    }
    workgroupBarrier();
  }
  if (r == 0u) { flse[i] = select(big_m + log(big_l), neg_inf, jend == 0u); }
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> o_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> o_delta: array<f32>;
@group(0) @binding(3) var<uniform> dp: Params;

@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = dp;
  let i = flat_id(wid, nwg, lid, WG); // (b·H + h)·T + t
  if (i >= p.B * p.H * p.T) { return; }
  let oo = o_off(p, i / (p.T * p.H), i % p.T, (i / p.T) % p.H);
  var s = 0.0;
  for (var e = 0u; e < p.D; e++) { s += dout[oo + e] * o_out[oo + e]; }
  o_delta[i] = s;
}

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> delta: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_a: array<f32>; // dq, or dk
@group(0) @binding(7) var<uniform> qp: Params;
@group(0) @binding(7) var<storage, read_write> dv: array<f32>;
@group(0) @binding(8) var<uniform> kp: Params;

/** dout[oo]·v[vo] and q[qo]·k[ko] over D. */
fn dots(p: Params, oo: u32, qo: u32, ko: u32, vo: u32) -> vec2<f32> {
  var dpv = 0.0;
  var s = 0.0;
  for (var e = 0u; e < p.D; e++) {
    dpv += dout[oo + e] * v[vo + e];
    s += q[qo + e] * k[ko + e];
  }
  return vec2<f32>(dpv, s * p.scale);
}

@compute @workgroup_size(WG)
fn attention_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = qp;
  let i = flat_id(wid, nwg, lid, WG); // (b·H + h)·T + t
  if (i >= p.B * p.H * p.T) { return; }
  let t = i % p.T;
  let h = (i / p.T) % p.H;
  let b = i / (p.T * p.H);
  let g = h / (p.H / p.Hkv);
  let qo = q_off(p, b, t, h);
  let oo = o_off(p, b, t, h);
  let jend = key_end(p, t);
  let l = lse[i];
  let dl = delta[i];
  for (var d0 = 0u; d0 < p.D; d0 += DC) {
    let dn = min(DC, p.D - d0);
    var acc: array<f32, DC>;
    for (var e = 0u; e < DC; e++) { acc[e] = 0.0; }
    for (var j = 0u; j < jend; j++) {
      let ko = k_off(p, b, j, g);
      let d = dots(p, oo, qo, ko, v_off(p, b, j, g));
      let ds = exp(d.y - l) * (d.x - dl);
      for (var e = 0u; e < dn; e++) { acc[e] += ds * k[ko + d0 + e]; }
    }
    for (var e = 0u; e < dn; e++) { grad_a[qo + d0 + e] = p.scale * acc[e]; }
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = kp;
  let i = flat_id(wid, nwg, lid, WG); // (b·S + j)·Hkv + g
  if (i >= p.B * p.S * p.Hkv) { return; }
  let g = i % p.Hkv;
  let j = (i / p.Hkv) % p.S;
  let b = i / (p.Hkv * p.S);
  let ko = k_off(p, b, j, g);
  let vo = v_off(p, b, j, g);
  let rep = p.H / p.Hkv;
  let t0 = query_start(p, j);
  for (var d0 = 0u; d0 < p.D; d0 += DC) {
    let dn = min(DC, p.D - d0);
    var ak: array<f32, DC>;
    var av: array<f32, DC>;
    for (var e = 0u; e < DC; e++) { ak[e] = 0.0; av[e] = 0.0; } // a var in a loop is not re-zeroed on every driver
    for (var hh = 0u; hh < rep; hh++) {
      let h = g * rep + hh;
      for (var t = t0; t < p.T; t++) {
        let qo = q_off(p, b, t, h);
        let oo = o_off(p, b, t, h);
        let li = (b * p.H + h) * p.T + t;
        let d = dots(p, oo, qo, ko, vo);
        let pj = exp(d.y - lse[li]);
        let ds = pj * (d.x - delta[li]);
        for (var e = 0u; e < dn; e++) {
          av[e] += pj * dout[oo + d0 + e];
          ak[e] += ds * q[qo + d0 + e];
        }
      }
    }
    for (var e = 0u; e < dn; e++) { grad_a[ko + d0 + e] = p.scale * ak[e]; }
    if (p.dvIn == 1u) {
      for (var e = 0u; e < dn; e++) { grad_a[vo + d0 + e] = av[e]; }
    } else {
      for (var e = 0u; e < dn; e++) { dv[vo + d0 + e] = av[e]; }
    }
  }
}
