// Fine-tuning data as TRL takes it, from arrays or JSONL files, tokenized into examples with
// Hugging Face labels (-100 where no loss is taken):
//   SFT  {"text"} (loss on every token) · {"prompt","completion"} (loss on the completion) ·
//        {"messages":[{role, content}]} (rendered with the chat template; loss on assistant turns)
//        · conversational {"prompt":[...], "completion":[...]} (message lists)
//   DPO  {"prompt","chosen","rejected"} as strings or message lists (TRL's conversational form).
// A bad row is an error naming the file (or "data"), the line (or index) and the field, unless
// `skipInvalid` is on: then it is skipped and counted. An EOS token ends every completion, as TRL
// appends it. Reference: TRL trainer/sft_trainer.py (tokenize), data_utils.py (apply_chat_template).

import { readFile } from "node:fs/promises";
import type { Tokenizer } from "../data/tokenizer.ts";
import type { ChatMessage, ChatTemplate } from "../data/chat_template.ts";
import { IGNORE_INDEX } from "../train/losses.ts";

export class DataError extends Error {}

export interface SftExample {
  ids: Int32Array;
  /** HF labels: the token where the loss counts, -100 elsewhere */
  labels: Int32Array;
}

export interface PreferenceExample {
  prompt: Int32Array;
  chosen: Int32Array;
  rejected: Int32Array;
}

export interface FormatOptions {
  tokenizer: Tokenizer;
  /** renders "messages" rows; needed only for conversational data */
  chatTemplate?: ChatTemplate | null;
  /** truncate each example to this many tokens (SFT) */
  maxSeqLength?: number;
  /** loss on completions / assistant turns only (TRL completion_only_loss, default true) */
  completionOnlyLoss?: boolean;
  /** skip bad rows (counted in `skipped`) instead of throwing */
  skipInvalid?: boolean;
}

export interface Row {
  value: unknown;
  /** "file.jsonl:12" or "data[3]" */
  where: string;
}

/** Reads a JSONL file into rows (blank lines skipped); a line that is not JSON names its line. */
export async function readJsonl(path: string): Promise<Row[]> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new DataError(`${path}: file not found`);
  });
  const rows: Row[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${path}:${i + 1}`;
    try {
      rows.push({ value: JSON.parse(line), where });
    } catch (e) {
      throw new DataError(`${where}: not valid JSON (${(e as Error).message})`);
    }
  });
  return rows;
}

/** Rows from an array (each named data[i]) or a .jsonl / .json file. */
export async function loadRows(data: readonly unknown[] | string): Promise<Row[]> {
  if (typeof data !== "string") return data.map((value, i) => ({ value, where: `data[${i}]` }));
  if (data.endsWith(".json")) {
    const value = JSON.parse(await readFile(data, "utf8").catch(() => {
      throw new DataError(`${data}: file not found`);
    }));
    if (!Array.isArray(value)) throw new DataError(`${data}: a .json data file must hold an array of rows`);
    return value.map((v, i) => ({ value: v, where: `${data}[${i}]` }));
  }
  return readJsonl(data);
}

/** Tokenizes SFT rows; returns the examples and how many rows were skipped. */
export function formatSft(rows: readonly Row[], options: FormatOptions): { examples: SftExample[]; skipped: number } {
  const examples: SftExample[] = [];
  let skipped = 0;
  for (const row of rows) {
    try {
      examples.push(sftExample(row, options));
    } catch (e) {
      if (!(e instanceof DataError) || !options.skipInvalid) throw e;
      skipped++;
    }
  }
  return { examples, skipped };
}

/** Tokenizes preference rows {prompt, chosen, rejected}. */
export function formatPreferences(rows: readonly Row[], options: FormatOptions): { examples: PreferenceExample[]; skipped: number } {
  const examples: PreferenceExample[] = [];
  let skipped = 0;
  for (const row of rows) {
    try {
      examples.push(preferenceExample(row, options));
    } catch (e) {
      if (!(e instanceof DataError) || !options.skipInvalid) throw e;
      skipped++;
    }
  }
  return { examples, skipped };
}

function sftExample({ value, where }: Row, options: FormatOptions): SftExample {
  const obj = asObject(value, where);
  const completionOnly = options.completionOnlyLoss ?? true;
  let ids: number[], mask: boolean[];
  if ("messages" in obj) {
    const messages = messageList(obj.messages, where, "messages");
    ({ ids, mask } = conversation(messages, options, where));
    if (!completionOnly) mask = mask.map(() => true);
  } else if ("prompt" in obj || "completion" in obj) {
    const { prompt, completion } = promptCompletion(obj, where, options, "completion");
    const eos = eosOf(options.tokenizer);
    ids = [...prompt, ...completion, ...eos];
    mask = ids.map((_, i) => !completionOnly || i >= prompt.length);
  } else if ("text" in obj) {
    const text = field(obj, "text", where);
    if (!text) throw new DataError(`${where}: field "text" is empty`);
    ids = [...options.tokenizer.encode(text), ...eosOf(options.tokenizer)];
    mask = ids.map(() => true);
  } else {
    throw new DataError(`${where}: expected a field "text", "prompt"+"completion" or "messages" (got ${Object.keys(obj).map((k) => `"${k}"`).join(", ") || "none"})`);
  }
  const n = Math.min(ids.length, options.maxSeqLength ?? Infinity);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = mask[i] ? ids[i] : IGNORE_INDEX;
  if (!labels.some((l) => l !== IGNORE_INDEX)) {
    throw new DataError(`${where}: no token left to train on after truncation to max_seq_length ${options.maxSeqLength} (the prompt is too long)`);
  }
  return { ids: Int32Array.from(ids.slice(0, n)), labels };
}

function preferenceExample({ value, where }: Row, options: FormatOptions): PreferenceExample {
  const obj = asObject(value, where);
  for (const f of ["prompt", "chosen", "rejected"]) if (!(f in obj)) throw new DataError(`${where}: missing field "${f}"`);
  const chosen = promptCompletion({ prompt: obj.prompt, completion: obj.chosen }, where, options, "chosen");
  const rejected = promptCompletion({ prompt: obj.prompt, completion: obj.rejected }, where, options, "rejected");
  const eos = eosOf(options.tokenizer);
  return { prompt: Int32Array.from(chosen.prompt), chosen: Int32Array.from([...chosen.completion, ...eos]), rejected: Int32Array.from([...rejected.completion, ...eos]) };
}

/** A prompt and its completion as token ids: strings, or message lists rendered by the chat template. */
function promptCompletion(obj: Record<string, unknown>, where: string, options: FormatOptions, name: string): { prompt: number[]; completion: number[] } {
  const tok = options.tokenizer;
  const p = obj.prompt, c = obj.completion;
  if (p === undefined) throw new DataError(`${where}: missing field "prompt"`);
  if (c === undefined) throw new DataError(`${where}: missing field "${name}"`);
  if (Array.isArray(p) || Array.isArray(c)) {
    const prompt = messageList(p, where, "prompt");
    const completion = messageList(c, where, name);
    if (!completion.length) throw new DataError(`${where}: field "${name}" is empty`);
    const template = needTemplate(options, where);
    const promptText = template.apply(prompt, { addGenerationPrompt: true });
    const full = template.apply([...prompt, ...completion]);
    if (!full.startsWith(promptText)) throw new DataError(`${where}: the chat template does not render the prompt as a prefix of the conversation`);
    const promptIds = tok.encode(promptText, { addSpecialTokens: false });
    return { prompt: promptIds, completion: tok.encode(full.slice(promptText.length), { addSpecialTokens: false }) };
  }
  if (typeof p !== "string") throw new DataError(`${where}: field "prompt" must be a string or a list of messages (got ${typeName(p)})`);
  if (typeof c !== "string") throw new DataError(`${where}: field "${name}" must be a string or a list of messages (got ${typeName(c)})`);
  if (!c) throw new DataError(`${where}: field "${name}" is empty`);
  return { prompt: tok.encode(p), completion: tok.encode(c, { addSpecialTokens: false }) };
}

/**
 * A whole conversation through the chat template, with a mask on the assistant turns: each turn
 * is the text the template adds for it (render(messages[0..i]) minus render(messages[0..i−1]));
 * an assistant turn's header (what add_generation_prompt adds) is not trained on.
 */
function conversation(messages: ChatMessage[], options: FormatOptions, where: string): { ids: number[]; mask: boolean[] } {
  const template = needTemplate(options, where);
  const tok = options.tokenizer;
  if (!messages.some((m) => m.role === "assistant")) throw new DataError(`${where}: field "messages" has no assistant turn to train on`);
  const ids: number[] = [];
  const mask: boolean[] = [];
  const push = (text: string, train: boolean) => {
    for (const id of tok.encode(text, { addSpecialTokens: false })) {
      ids.push(id);
      mask.push(train);
    }
  };
  let done = "";
  for (let i = 0; i < messages.length; i++) {
    const upto = template.apply(messages.slice(0, i + 1));
    if (!upto.startsWith(done)) throw new DataError(`${where}: the chat template does not render messages[0..${i}] as a prefix of the conversation`);
    if (messages[i].role === "assistant") {
      const header = template.apply(messages.slice(0, i), { addGenerationPrompt: true });
      const h = header.startsWith(done) && upto.startsWith(header) ? header : done;
      push(h.slice(done.length), false);
      push(upto.slice(h.length), true);
    } else {
      push(upto.slice(done.length), false);
    }
    done = upto;
  }
  return { ids, mask };
}

function needTemplate(options: FormatOptions, where: string): ChatTemplate {
  if (!options.chatTemplate) throw new DataError(`${where}: conversational rows need a chat template (the model folder's tokenizer_config.json has no "chat_template")`);
  return options.chatTemplate;
}

function messageList(v: unknown, where: string, name: string): ChatMessage[] {
  if (!Array.isArray(v)) throw new DataError(`${where}: field "${name}" must be a list of messages (got ${typeName(v)})`);
  v.forEach((m, i) => {
    if (!m || typeof m !== "object") throw new DataError(`${where}: ${name}[${i}] must be an object {role, content}`);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== "string") throw new DataError(`${where}: ${name}[${i}].role must be a string (got ${typeName(msg.role)})`);
    if (typeof msg.content !== "string") throw new DataError(`${where}: ${name}[${i}].content must be a string (got ${typeName(msg.content)})`);
  });
  return v as ChatMessage[];
}

function asObject(v: unknown, where: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new DataError(`${where}: a row must be a JSON object (got ${typeName(v)})`);
  return v as Record<string, unknown>;
}

function field(obj: Record<string, unknown>, name: string, where: string): string {
  const v = obj[name];
  if (typeof v !== "string") throw new DataError(`${where}: field "${name}" must be a string (got ${typeName(v)})`);
  return v;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : v === undefined ? "nothing" : typeof v;
}

function eosOf(tok: Tokenizer): number[] {
  return tok.eosTokenId === undefined ? [] : [tok.eosTokenId];
}

/**
 * Packs examples into sequences of exactly `length` tokens (TRL's "wrapped" packing: examples are
 * concatenated and cut, so a sequence may start mid-example and attend across examples).
 */
export function pack(examples: readonly SftExample[], length: number): SftExample[] {
  const total = examples.reduce((n, e) => n + e.ids.length, 0);
  const ids = new Int32Array(total), labels = new Int32Array(total);
  let at = 0;
  for (const e of examples) {
    ids.set(e.ids, at);
    labels.set(e.labels, at);
    at += e.ids.length;
  }
  const out: SftExample[] = [];
  for (let s = 0; s + length <= total; s += length) out.push({ ids: ids.slice(s, s + length), labels: labels.slice(s, s + length) });
  return out;
}
