// dtype casts between the float dtypes (f32, f16, bf16) on the `cast` kernel: what Tensor.to(dtype)
// runs. Narrowing rounds to nearest even as torch's .to(torch.bfloat16) does; 16-bit tensors are
// storage for frozen weights (src/tensor/dtype.ts), so a cast to f32 is how other ops read them.

import { CAST_DTYPES } from "../backend/kernels.ts";
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";

type FloatDType = (typeof CAST_DTYPES)[number];

/** x in `dtype` (a new tensor), or x itself when it already has that dtype (as torch's .to). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const backend = backendOf("cast", [x]);
  const src = code(x.dtype, x);
  const dst = code(dtype, x);
  if (dtype === x.dtype) return x;
  const out = alloc(backend, x.shape, dtype);
  if (x.size > 0) launch("cast", [x], [out], { n: x.size, src, dst });
  return record(out, "cast", [x], { from: x.dtype });
}

function code(dtype: DType, x: Tensor): number {
  const i = CAST_DTYPES.indexOf(dtype as FloatDType);
  if (i < 0) throw new Error(`[cast] ${x.describe()} to ${dtype}: cast converts between ${CAST_DTYPES.join(", ")}`);
  return i;
}
