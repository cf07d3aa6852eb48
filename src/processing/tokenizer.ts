// Byte-level BPE tokenizer of a Qwen3-VL checkpoint (tokenizer.json + tokenizer_config.json).
// Encoding and decoding are delegated to @huggingface/tokenizers, which reproduces the
// reference ids on every fixture string (added tokens atomic, NFC, digit splitting).
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { QwenError } from "../errors.js";

export interface DecodeOptions {
  /** Drop tokens marked special in tokenizer.json (e.g. <|im_end|>); <think> and </think> are not special. */
  skipSpecialTokens?: boolean;
}

/** Incremental decoder: feed ids as they are generated, get back only the new text. */
export interface StreamDecoder {
  /** Appends ids; returns the text they complete (possibly ""), never half a UTF-8 character. */
  push(ids: number | readonly number[]): string;
  /** Returns whatever is still held back (an incomplete character at the very end is emitted as U+FFFD). */
  flush(): string;
  /** All ids pushed so far. */
  readonly ids: readonly number[];
}

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new QwenError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new QwenError(`${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export class Tokenizer {
  private readonly tok: HFTokenizer;
  /** The raw tokenizer_config.json (may be empty). */
  readonly config: Record<string, unknown>;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  private readonly specialIds: Set<number>;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}) {
    try {
      this.tok = new HFTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new QwenError(`cannot build the tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    this.config = tokenizerConfig;
    const tokName = (v: unknown): string | undefined =>
      typeof v === "string" ? v : v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string" ? (v as { content: string }).content : undefined;
    this.eosToken = tokName(tokenizerConfig["eos_token"]);
    this.padToken = tokName(tokenizerConfig["pad_token"]);
    this.specialIds = new Set();
    const added = tokenizerJson["added_tokens"];
    if (Array.isArray(added)) {
      for (const a of added as { id?: unknown; special?: unknown }[]) {
        if (typeof a.id === "number" && a.special === true) this.specialIds.add(a.id);
      }
    }
  }

  /** Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a checkpoint directory. */
  static fromDir(dir: string): Tokenizer {
    const tjPath = join(dir, "tokenizer.json");
    if (!existsSync(tjPath)) throw new QwenError(`no tokenizer.json in ${dir}`);
    const tj = readJson(tjPath, "tokenizer file");
    const cfgPath = join(dir, "tokenizer_config.json");
    const cfg = existsSync(cfgPath) ? readJson(cfgPath, "tokenizer config") : {};
    return new Tokenizer(tj, cfg);
  }

  /** Token ids of `text`; no BOS/EOS is added (Qwen adds none). */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.tok.decode(ids as number[], { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Whether `id` is an added token marked special (skipped by skipSpecialTokens). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Id of a token that must exist (e.g. "<|image_pad|>"); QwenError otherwise. */
  requireId(token: string): number {
    const id = this.tokenToId(token);
    if (id === undefined) throw new QwenError(`the tokenizer has no token ${JSON.stringify(token)}`);
    return id;
  }

  /**
   * A streaming decoder. Text is produced by decoding a short window of recent ids and
   * emitting only what is new; a window whose decoding ends in U+FFFD (a multi-byte character
   * split across tokens) is held back until the character is complete.
   */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    const all: number[] = [];
    let prefixOffset = 0; // start of the context window
    let readOffset = 0; // ids up to here have been emitted
    const dec = (a: number, b: number): string => this.decode(all.slice(a, b), opts);
    const step = (final: boolean): string => {
      const prefixText = dec(prefixOffset, readOffset);
      const newText = dec(prefixOffset, all.length);
      if (newText.length > prefixText.length && (final || !newText.endsWith("\uFFFD"))) {
        // Once its characters are complete the window's text only grows by appending.
        const out = newText.slice(prefixText.length);
        prefixOffset = readOffset;
        readOffset = all.length;
        return out;
      }
      return "";
    };
    return {
      push(ids: number | readonly number[]): string {
        if (typeof ids === "number") all.push(ids);
        else for (const id of ids) all.push(id);
        return step(false);
      },
      flush(): string {
        if (readOffset >= all.length) return "";
        return step(true);
      },
      get ids(): readonly number[] {
        return all;
      },
    };
  }
}
