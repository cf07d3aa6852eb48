// The checkpoint's chat template (Jinja), rendered with @huggingface/jinja the way
// transformers' apply_chat_template does: messages, tools, add_generation_prompt,
// the tokenizer's special tokens and any extra keyword arguments as template variables.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { QwenError } from "../errors.js";

export interface RenderOptions {
  /** Append the assistant turn opener (default false, as in transformers). */
  addGenerationPrompt?: boolean;
  /** Prefix media with "Picture n: " / "Video n: " (Qwen3-VL templates). */
  addVisionId?: boolean;
  /** Tool (function) definitions, passed as `tools`. */
  tools?: unknown[];
  /** Any other template variables (e.g. enable_thinking); they override the defaults. */
  extra?: Record<string, unknown>;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new QwenError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

function templateFromJson(path: string, what: string): string | undefined {
  const text = readText(path, what);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new QwenError(`${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const t = v && typeof v === "object" ? (v as { chat_template?: unknown }).chat_template : undefined;
  if (typeof t === "string") return t;
  // Some checkpoints store a list of named templates: [{name, template}]; use "default".
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const d = named.find((x) => x.name === "default") ?? named[0];
    if (d && typeof d.template === "string") return d.template;
  }
  return undefined;
}

/** Template text of a checkpoint: chat_template.jinja, else chat_template.json, else tokenizer_config.json. */
export function loadChatTemplateSource(dir: string): string {
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) return readText(jinja, "chat template");
  const json = join(dir, "chat_template.json");
  if (existsSync(json)) {
    const t = templateFromJson(json, "chat template file");
    if (t !== undefined) return t;
  }
  const cfg = join(dir, "tokenizer_config.json");
  if (existsSync(cfg)) {
    const t = templateFromJson(cfg, "tokenizer config");
    if (t !== undefined) return t;
  }
  throw new QwenError(`no chat template in ${dir} (looked for chat_template.jinja, chat_template.json and tokenizer_config.json's chat_template)`);
}

export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param source the Jinja text
   * @param specialTokens template variables such as bos_token / eos_token / pad_token
   */
  constructor(readonly source: string, readonly specialTokens: Record<string, string | null> = {}) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new QwenError(`the chat template does not parse: ${(e as Error).message}`);
    }
  }

  /** Loads the template of a checkpoint directory (special tokens from tokenizer_config.json when present). */
  static fromDir(dir: string): ChatTemplate {
    const special: Record<string, string | null> = {};
    const cfgPath = join(dir, "tokenizer_config.json");
    if (existsSync(cfgPath)) {
      try {
        const cfg = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
        for (const k of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
          const v = cfg[k];
          if (typeof v === "string") special[k] = v;
          else if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") special[k] = (v as { content: string }).content;
          else if (v === null) special[k] = null;
        }
      } catch (e) {
        throw new QwenError(`tokenizer config ${cfgPath} is not valid JSON: ${(e as Error).message}`);
      }
    }
    return new ChatTemplate(loadChatTemplateSource(dir), special);
  }

  /** Renders a conversation to the prompt string. */
  render(messages: readonly unknown[], opts: RenderOptions = {}): string {
    if (!Array.isArray(messages)) throw new QwenError("messages must be an array of {role, content} objects");
    const vars: Record<string, unknown> = {
      ...this.specialTokens,
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    };
    if (opts.addVisionId !== undefined) vars["add_vision_id"] = opts.addVisionId;
    if (opts.tools !== undefined) vars["tools"] = opts.tools;
    if (opts.extra) Object.assign(vars, opts.extra);
    try {
      return this.template.render(vars);
    } catch (e) {
      throw new QwenError(`rendering the chat template failed: ${(e as Error).message}`);
    }
  }
}
