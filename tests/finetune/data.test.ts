// Fine-tuning data: TRL's row formats tokenized with masks on the right tokens, bad rows named by
// file, line and field (or skipped and counted), truncation, packing and DPO's prompt/length limits.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { ChatTemplate } from "../../src/data/chat_template.ts";
import { formatPreferences, formatSft, loadRows, pack, DataError } from "../../src/finetune/data.ts";
import { preferenceRows } from "../../src/finetune/batches.ts";
import { IGNORE_INDEX } from "../../src/train/losses.ts";

const tok = await loadTokenizer(join(import.meta.dir, "..", "fixtures", "hf", "qwen2"));
const EOS = tok.eosTokenId!;
const CHATML = new ChatTemplate(
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
);
const tmp = await mkdtemp(join(tmpdir(), "kiln-ftdata-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** The text of the labelled (trained) tokens. */
function trained(e: { ids: Int32Array; labels: Int32Array }): string {
  return tok.decode([...e.labels].filter((l) => l !== IGNORE_INDEX && l !== EOS));
}

describe("SFT rows", () => {
  test('{"text"}: every token trained, EOS appended', async () => {
    const { examples } = formatSft(await loadRows([{ text: "hello world" }]), { tokenizer: tok });
    const [e] = examples;
    expect(e.ids.at(-1)).toBe(EOS);
    expect([...e.labels]).toEqual([...e.ids]);
  });

  test('{"prompt","completion"}: loss on the completion (and EOS) only, unless completion_only_loss is off', async () => {
    const rows = await loadRows([{ prompt: "Question: 2+2?", completion: " Answer: 4" }]);
    const [e] = formatSft(rows, { tokenizer: tok }).examples;
    expect(trained(e)).toBe(" Answer: 4");
    expect(e.labels.at(-1)).toBe(EOS);
    expect(tok.decode([...e.ids].slice(0, e.labels.findIndex((l) => l !== IGNORE_INDEX)))).toBe("Question: 2+2?");
    const [all] = formatSft(rows, { tokenizer: tok, completionOnlyLoss: false }).examples;
    expect([...all.labels]).toEqual([...all.ids]);
  });

  test('{"messages"}: rendered with the chat template, loss on assistant turns without their headers', async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "Bye" },
      { role: "assistant", content: "Ciao." },
    ];
    const [e] = formatSft(await loadRows([{ messages }]), { tokenizer: tok, chatTemplate: CHATML }).examples;
    expect(tok.decode([...e.ids])).toBe(CHATML.apply(messages));
    expect(trained(e)).toBe("Hello!<|im_end|>\nCiao.<|im_end|>\n");
    expect(() => formatSft(await_rows([{ messages }]), { tokenizer: tok })).toThrow(/data\[0\]: conversational rows need a chat template/);
    expect(() => formatSft(await_rows([{ messages: messages.slice(0, 2) }]), { tokenizer: tok, chatTemplate: CHATML })).toThrow(/no assistant turn/);
  });

  test("conversational prompt/completion lists: the completion after the generation prompt", async () => {
    const rows = [{ prompt: [{ role: "user", content: "2+2?" }], completion: [{ role: "assistant", content: "4" }] }];
    const [e] = formatSft(await loadRows(rows), { tokenizer: tok, chatTemplate: CHATML }).examples;
    expect(trained(e)).toBe("4<|im_end|>\n");
  });

  test("max_seq_length truncates; a prompt that leaves nothing to train on is an error", async () => {
    const rows = await loadRows([{ prompt: "a b c d e f g", completion: " h i j k" }]);
    const n = tok.encode("a b c d e f g").length + 2;
    const [e] = formatSft(rows, { tokenizer: tok, maxSeqLength: n }).examples;
    expect(e.ids.length).toBe(n);
    expect(e.labels.filter((l) => l !== IGNORE_INDEX).length).toBe(2);
    expect(() => formatSft(rows, { tokenizer: tok, maxSeqLength: 3 })).toThrow(/data\[0\]: no token left to train on after truncation to max_seq_length 3/);
  });

  test("bad rows name the file, line and field — or are skipped and counted", async () => {
    const path = join(tmp, "train.jsonl");
    await writeFile(path, ['{"prompt": "a", "completion": " b"}', "", '{"prompt": "a", "completion": 3}', '{"prompt": "a", "completion": ""}', '{"txt": "x"}', "[1]"].join("\n"));
    const rows = await loadRows(path);
    expect(() => formatSft(rows, { tokenizer: tok })).toThrow(`${path}:3: field "completion" must be a string or a list of messages (got number)`);
    expect(() => formatSft(rows.slice(2), { tokenizer: tok })).toThrow(`${path}:4: field "completion" is empty`);
    expect(() => formatSft(rows.slice(3), { tokenizer: tok })).toThrow(`${path}:5: expected a field "text", "prompt"+"completion" or "messages" (got "txt")`);
    expect(() => formatSft(rows.slice(4), { tokenizer: tok })).toThrow(`${path}:6: a row must be a JSON object (got a list)`);
    const { examples, skipped } = formatSft(rows, { tokenizer: tok, skipInvalid: true });
    expect(examples).toHaveLength(1);
    expect(skipped).toBe(4);
    await writeFile(path, '{"text": "ok"}\n{"text": oops}\n');
    await expect(loadRows(path)).rejects.toThrow(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2: not valid JSON`));
    await expect(loadRows(join(tmp, "nope.jsonl"))).rejects.toThrow(DataError);
  });

  test("packing cuts the concatenated examples into full sequences, labels kept", async () => {
    const { examples } = formatSft(await loadRows([{ text: "one two three" }, { text: "four five six seven" }, { text: "eight" }]), { tokenizer: tok });
    const total = examples.reduce((n, e) => n + e.ids.length, 0);
    const packed = pack(examples, 5);
    expect(packed).toHaveLength(Math.floor(total / 5));
    expect(packed.every((e) => e.ids.length === 5)).toBe(true);
    expect([...packed[0].ids]).toEqual([...examples[0].ids, ...examples[1].ids].slice(0, 5));
  });
});

describe("preference rows", () => {
  test("strings and conversational lists; TRL's prompt (keep the end) and length limits", async () => {
    const rows = await loadRows([
      { prompt: "one two three four", chosen: " yes indeed", rejected: " no" },
      { prompt: [{ role: "user", content: "2+2?" }], chosen: [{ role: "assistant", content: "4" }], rejected: [{ role: "assistant", content: "5" }] },
    ]);
    const { examples } = formatPreferences(rows, { tokenizer: tok, chatTemplate: CHATML });
    expect(tok.decode([...examples[0].chosen])).toBe(" yes indeed<|endoftext|>");
    expect(tok.decode([...examples[1].prompt])).toBe("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
    expect(tok.decode([...examples[1].rejected], { skipSpecialTokens: true })).toBe("5<|im_end|>\n");
    const [c, r] = preferenceRows(examples[0], { maxPromptLength: 2, maxLength: 4 });
    expect([...c.ids.subarray(0, 2)]).toEqual([...examples[0].prompt.subarray(-2)]);
    expect(c.ids.length).toBe(4);
    expect(r.labels.filter((l) => l !== IGNORE_INDEX).length).toBe(Math.min(2, examples[0].rejected.length));
    expect(() => formatPreferences(rows.map((x) => ({ ...x, value: { prompt: "p", chosen: "c" } })), { tokenizer: tok })).toThrow(/data\[0\]: missing field "rejected"/);
  });
});

function await_rows(values: unknown[]) {
  return values.map((value, i) => ({ value, where: `data[${i}]` }));
}
