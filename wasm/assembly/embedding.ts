// embedding (row gather, from an f32 or 16-bit weight) and embedding_backward (row scatter-add into dweight, "+=").
// ids are i32; ids outside [0, V) give a zero row forward and are skipped backward.
// Reference: tests/reference.ts embedding, embeddingBackward.
import { at, axpy } from "./common";
import { widenHalf } from "./half";

/** dtype: the weight's storage, 0 f32, 1 f16, 2 bf16 (16-bit rows are widened into the f32 out). */
export function embedding_f32(ids: usize, weight: usize, out: usize, n: i32, V: i32, C: i32, dtype: i32): void {
  const rowBytes = <usize>C << 2;
  const srcRowBytes = dtype != 0 ? <usize>C << 1 : rowBytes;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(at(ids, i));
    const dst = out + <usize>i * rowBytes;
    if (id < 0 || id >= V) memory.fill(dst, 0, rowBytes);
    else if (dtype != 0) widenHalf(weight + <usize>id * srcRowBytes, dst, C, dtype == 2);
    else memory.copy(dst, weight + <usize>id * rowBytes, rowBytes);
  }
}

export function embedding_backward_f32(ids: usize, dout: usize, dweight: usize, n: i32, V: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(at(ids, i));
    if (id >= 0 && id < V) axpy(dweight + <usize>id * rowBytes, 1, dout + <usize>i * rowBytes, C);
  }
}
