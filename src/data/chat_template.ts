// Chat templates: render a list of messages to the prompt string a chat model was trained on, using the
// Jinja template from tokenizer_config.json (`chat_template`, a string or a list of named templates) or a
// chat_template.jinja file, rendered by @huggingface/jinja. Not a tokenizer: encode the result with
// addSpecialTokens: false. Reference: transformers utils/chat_template_utils.py render_jinja_template.
import { Template } from "@huggingface/jinja";
import { join } from "node:path";

/** One chat turn; templates may read more fields (tool_calls, name, ...), which are passed through. */
export interface ChatMessage {
  role: string;
  content: unknown;
  [field: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the header that starts the assistant's reply (e.g. "<|im_start|>assistant\n"). Default false. */
  addGenerationPrompt?: boolean;
  /** JSON-schema tool descriptions, for templates that support tool use. */
  tools?: unknown[] | null;
  /** Documents for retrieval-augmented templates. */
  documents?: unknown[] | null;
  /** Any other variables the template reads (e.g. enable_thinking). */
  variables?: Record<string, unknown>;
}

/** Special-token names that transformers passes to every template (bos_token, eos_token, ...). */
const SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

/** A compiled chat template plus the special-token strings from tokenizer_config.json. */
export class ChatTemplate {
  readonly source: string;
  readonly specialTokens: Readonly<Record<string, string>>;
  readonly #template: Template;

  constructor(source: string, specialTokens: Record<string, string> = {}) {
    this.source = source;
    this.specialTokens = { ...specialTokens };
    try {
      this.#template = new Template(source);
    } catch (e) {
      throw new Error(`[chat_template] template does not parse: ${(e as Error).message}`);
    }
  }

  /**
   * Pick the template from a parsed tokenizer_config.json. `name` selects one of several named templates
   * (default: "tool_use" when `hasTools`, else "default"). Returns null when the config has none.
   */
  static fromConfig(config: Record<string, any>, opts: { name?: string; hasTools?: boolean; jinjaFile?: string } = {}): ChatTemplate | null {
    const special: Record<string, string> = {};
    for (const k of SPECIAL_TOKEN_KEYS) {
      const v = config[k];
      const s = typeof v === "string" ? v : v?.content;
      if (typeof s === "string") special[k] = s;
    }
    let t: unknown = opts.jinjaFile ?? config.chat_template;
    if (t == null) return null;
    if (Array.isArray(t)) t = Object.fromEntries(t.map((x: { name: string; template: string }) => [x.name, x.template]));
    if (typeof t === "object") {
      const named = t as Record<string, string>;
      const key = opts.name ?? (opts.hasTools && "tool_use" in named ? "tool_use" : "default");
      if (!(key in named))
        throw new Error(`[chat_template] no template named ${JSON.stringify(key)}; have ${Object.keys(named).sort().join(", ")}`);
      t = named[key];
    } else if (opts.name !== undefined && opts.name !== "default") {
      throw new Error(`[chat_template] no template named ${JSON.stringify(opts.name)}; the config has one unnamed template`);
    }
    if (typeof t !== "string") throw new Error(`[chat_template] chat_template must be a string, got ${typeof t}`);
    return new ChatTemplate(t, special);
  }

  /** Render `messages`. Template errors (e.g. raise_exception("roles must alternate")) throw with the message. */
  apply(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    try {
      return this.#template.render({
        messages,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        tools: opts.tools ?? null,
        documents: opts.documents ?? null,
        ...this.specialTokens,
        ...opts.variables,
      });
    } catch (e) {
      throw new Error(`[chat_template] ${(e as Error).message}`);
    }
  }
}

/** `template.apply(messages, opts)` as a function. */
export function applyChatTemplate(template: ChatTemplate, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  return template.apply(messages, opts);
}

/** The chat template of a Hugging Face folder: chat_template.jinja if present, else tokenizer_config.json's. */
export async function loadChatTemplate(dir: string, opts: { name?: string; hasTools?: boolean } = {}): Promise<ChatTemplate | null> {
  const cfgFile = Bun.file(join(dir, "tokenizer_config.json"));
  const config = (await cfgFile.exists()) ? await cfgFile.json() : {};
  const jinja = Bun.file(join(dir, "chat_template.jinja"));
  const jinjaFile = (await jinja.exists()) ? await jinja.text() : undefined;
  return ChatTemplate.fromConfig(config, { ...opts, jinjaFile });
}
