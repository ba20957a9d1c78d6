// Element types. The same words are used in the TS API, WGSL and AssemblyScript. kiln computes in
// f32; i32 holds token ids and targets. f16 and bf16 are storage: frozen weights kept at half the
// memory (a 16-bit base model for LoRA), widened to f32 where a kernel reads them (matmul's B,
// embedding's weight); nothing computes or writes a gradient in 16 bits. Elements of a 16-bit
// tensor are packed two per 4-byte word, low half first (little-endian u16 order), and a buffer is
// rounded up to whole words (WebGPU binds u32 arrays), so an odd count leaves a zero upper half.

export type DType = "f32" | "f16" | "bf16" | "i32";

/** The 16-bit storage dtypes. */
export type HalfDType = "f16" | "bf16";

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4 };

export function isHalf(dtype: DType): dtype is HalfDType {
  return dtype === "f16" || dtype === "bf16";
}

/** Bytes of a buffer holding `n` elements: whole 4-byte words, at least one. */
export function bufferBytes(n: number, dtype: DType): number {
  return Math.max(4, Math.ceil((n * BYTES_PER_ELEMENT[dtype]) / 4) * 4);
}

/** The error for an op handed a 16-bit tensor it cannot read. */
export function halfStorageError(op: string, tensor: string): Error {
  return new Error(
    `[${op}] got ${tensor}: 16-bit tensors are storage for frozen weights: matmul/linear and embedding read them; cast with .to('f32')`,
  );
}

/** The error for a 16-bit tensor asked to collect a gradient. */
export function halfGradError(op: string, tensor: string): Error {
  return new Error(
    `[${op}] ${tensor} requires grad: 16-bit tensors are frozen storage (no 16-bit gradients or optimizer state): train it in f32 (.to('f32')) or freeze it`,
  );
}
