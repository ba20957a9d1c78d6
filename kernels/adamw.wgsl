// kernels/adamw.wgsl: one fused AdamW step (kernels.ts "optimizer", PyTorch AdamW semantics),
// one thread per element. grad@0 gradNormSq@1 (a dummy when maxNorm = 0) param@2 m@3 v@4 Params.
// bc1 = 1 − beta1^step, bc2 = 1 − beta2^step, omb1 = 1 − beta1, omb2 = 1 − beta2 come from the
// host in float64 (1 − f32(0.999) alone would be off by 1.3e-5).

override WG: u32 = 256;

struct Params { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weightDecay: f32, step: f32, maxNorm: f32,
  bc1: f32, bc2: f32, omb1: f32, omb2: f32 }

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> grad_norm_sq: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i >= p.n) { return; }
  var clip = 1.0;
  if (p.maxNorm > 0.0) { clip = min(1.0, p.maxNorm / (sqrt(grad_norm_sq[0]) + 1e-6)); }
  let g = grad[i] * clip;
  var w = param[i];
  w -= p.lr * p.weightDecay * w;
  let mi = p.beta1 * m[i] + p.omb1 * g;
  let vi = p.beta2 * v[i] + p.omb2 * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = w - p.lr * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
}
