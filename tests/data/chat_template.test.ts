// Chat templates rendered by @huggingface/jinja against Python jinja2 set up as transformers does
// (tests/fixtures/chat_template_ref.json, made by make_chat_template_ref.py): ChatML, Mistral v0.1
// (raise_exception), Llama 3 and Qwen3 (tools, reasoning) templates.
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatTemplate, applyChatTemplate, loadChatTemplate } from "../../src/data/chat_template.ts";

const ref = await Bun.file(join(import.meta.dir, "../fixtures/chat_template_ref.json")).json();

describe("chat_template", () => {
  for (const [name, t] of Object.entries(ref.templates as Record<string, { source: string; special_tokens: Record<string, string> }>)) {
    test(`${name} renders like jinja2 (with and without the generation prompt, errors included)`, () => {
      const template = new ChatTemplate(t.source, t.special_tokens);
      ref.conversations.forEach((conv: { messages: any[]; tools?: unknown[] }, i: number) => {
        for (const gen of [false, true]) {
          const expected = ref.renders[name][i][String(gen)];
          const render = () => applyChatTemplate(template, conv.messages, { addGenerationPrompt: gen, tools: conv.tools ?? null });
          if (typeof expected === "string") expect(render()).toBe(expected);
          else expect(render).toThrow(expected.error);
        }
      });
    });
  }

  test("fromConfig: a plain string, named templates, and special tokens from the config", () => {
    const cfg = { bos_token: { content: "<s>" }, eos_token: "</s>", chat_template: "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}" };
    expect(ChatTemplate.fromConfig(cfg)!.apply([{ role: "user", content: "hi" }])).toBe("<s>hi</s>");
    const named = { chat_template: [{ name: "default", template: "D" }, { name: "tool_use", template: "T" }] };
    expect(ChatTemplate.fromConfig(named)!.apply([])).toBe("D");
    expect(ChatTemplate.fromConfig(named, { hasTools: true })!.apply([])).toBe("T");
    expect(() => ChatTemplate.fromConfig(named, { name: "rag" })).toThrow(/no template named "rag"; have default, tool_use/);
    expect(ChatTemplate.fromConfig({})).toBeNull();
  });

  test("variables reach the template; a bad template fails at construction", () => {
    const t = new ChatTemplate("{% if enable_thinking %}think{% else %}no{% endif %}");
    expect(t.apply([], { variables: { enable_thinking: true } })).toBe("think");
    expect(t.apply([])).toBe("no");
    expect(() => new ChatTemplate("{% for x in %}")).toThrow(/\[chat_template\] template does not parse/);
  });

  test("loadChatTemplate prefers chat_template.jinja over tokenizer_config.json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-chat-"));
    try {
      await Bun.write(join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: "config", eos_token: "E" }));
      expect((await loadChatTemplate(dir))!.apply([])).toBe("config");
      await Bun.write(join(dir, "chat_template.jinja"), "file {{ eos_token }}");
      expect((await loadChatTemplate(dir))!.apply([])).toBe("file E");
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
