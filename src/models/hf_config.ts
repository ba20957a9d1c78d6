// Pieces every family's config parser shares: zod types for HF config.json fields, the error format
// (`[config] field X = value is not supported: why`), and the token-id fields both ways.

import { z } from "zod";

export const posInt = z.number().int().positive();
export const tokenIds = z.union([z.number().int(), z.array(z.number().int())]).nullish();
export type TokenIds = z.infer<typeof tokenIds>;

/** HF config.json fields every family has. */
export const hfCommon = {
  architectures: z.array(z.string()).nullish(),
  model_type: z.string().nullish(),
  vocab_size: posInt,
  tie_word_embeddings: z.boolean().optional(),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  pad_token_id: tokenIds,
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
};

/** `schema.parse(raw)`, failing with one `[config]` line naming each bad field and its value. */
export function zodCheck<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const value = i.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as PropertyKey], raw);
      return `${i.path.join(".") || "(root)"} = ${JSON.stringify(value)}: ${i.message}`;
    });
    throw new Error(`[config] invalid ${what} config.json: ${lines.join("; ")}`);
  }
  return r.data;
}

export function unsupported(field: string, value: unknown, why: string): never {
  throw new Error(`[config] field ${field} = ${JSON.stringify(value)} is not supported: ${why}`);
}

/** bos/eos/pad token ids as HF config.json fields (absent ones left out). */
export function hfTokenIds(c: { bosTokenId?: TokenIds; eosTokenId?: TokenIds; padTokenId?: TokenIds }): Record<string, unknown> {
  const fields = [["bos_token_id", c.bosTokenId], ["eos_token_id", c.eosTokenId], ["pad_token_id", c.padTokenId]] as const;
  return Object.fromEntries(fields.filter(([, v]) => v != null));
}
