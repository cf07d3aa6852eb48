// `qwen3-vl chat` (alias `run`): an interactive, multi-turn conversation with streaming
// output. Images and videos are attached with /image and /video. When stdin is not a
// terminal, lines are read from it one per user turn (no prompt is printed, answers go to
// stdout one after the other, notices to stderr), so a conversation can be piped in.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { QwenError } from "../errors.js";
import { applySamplingFlags, SAMPLING_FLAGS, SAMPLING_HELP } from "./sampling-flags.js";
import { loadModelFromFlags, MODEL_FLAGS, MODEL_HELP } from "./model-flags.js";
import { assetsDir } from "../io/demo-model.js";
import type { ChatResult } from "../pipeline.js";

export const CHAT_HELP = `qwen3-vl chat (alias: run): talk to a model in the terminal

Usage:
  qwen3-vl chat [--model DIR|REPO] [--backend wasm|reference] [--threads N] [--weights F]
                [--system TEXT] [--greedy] [--temperature T] [--top-k K] [--top-p P]
                [--min-p P] [--seed S] [--max-new-tokens N] [--no-color]

Type a message and press Enter; the answer is printed as it is generated. The whole
conversation is kept, so later questions can refer to earlier answers. A Thinking model's
reasoning is shown dimmed (or inside <think> ... </think> when the output is not a
terminal) before the answer.

Commands (typed instead of a message):
  /image PATH          attach an image (PNG, JPEG, WebP, ...) to your next message
  /video PATH [FPS]    attach a video file or a folder of frames to your next message;
                       FPS = frames per second to sample (default: the model's, 2)
  /system TEXT         set the system prompt (no TEXT: remove it); the history is kept
  /reset               forget the conversation and any attached media (keeps /system)
  /help                this list
  /exit                leave (also /quit, Ctrl-D; Ctrl-C stops an answer being written)

Options:
${MODEL_HELP}
  --system TEXT             system prompt to start with
${SAMPLING_HELP}
  --no-color                no dimming of the reasoning (also when NO_COLOR is set)
  -h, --help           this text

Piped input: every line is one message or command, e.g.
  printf '/image photo.jpg\\nWhat is in this picture?\\nAnd what colour is it?\\n' | qwen3-vl chat --greedy
`;

const COMMAND_LIST = `commands: /image PATH, /video PATH [FPS], /system TEXT, /reset, /help, /exit\n`;


type Item = Record<string, unknown>;
type Message = { role: string; content: string | Item[] };

/** The conversation state of a chat session (no I/O, so it can be tested directly). */
export class ChatSession {
  system: string | null = null;
  history: Message[] = [];
  pending: Item[] = [];

  /** The messages for the next answer, with `text` as the new user turn (pending media first). */
  userTurn(text: string): Message {
    const content: string | Item[] = this.pending.length ? [...this.pending, { type: "text", text }] : text;
    return { role: "user", content };
  }

  messagesFor(user: Message): Message[] {
    return [...(this.system !== null ? [{ role: "system", content: this.system }] : []), ...this.history, user];
  }

  /** Records a finished turn (the answer without reasoning, as chat templates expect). */
  commit(user: Message, answer: ChatResult): void {
    this.history.push(user, { role: "assistant", content: answer.content });
    this.pending = [];
  }

  reset(): void {
    this.history = [];
    this.pending = [];
  }
}

function mediaPath(arg: string, what: string): string {
  const p = resolve(arg);
  if (!existsSync(p)) throw new QwenError(`${what} not found: ${p}`);
  return p;
}

export async function chatCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...MODEL_FLAGS,
      system: { type: "string" },
      ...SAMPLING_FLAGS,
      "no-color": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(CHAT_HELP);
    return 0;
  }
  if (positionals.length) throw new QwenError(`unexpected argument "${positionals[0]}" (type messages after the chat starts; see qwen3-vl chat --help)`);
  const o = applySamplingFlags(values, { baseDir: process.cwd() });
  if (values.greedy) o.greedy = true;

  const interactive = Boolean(process.stdin.isTTY);
  const out = process.stdout;
  const color = Boolean(out.isTTY) && !values["no-color"] && !process.env.NO_COLOR;
  const note = (s: string) => process.stderr.write(s);

  const vl = await loadModelFromFlags(values);
  if (interactive) {
    note(`ready. Type a message, or /help. (${vl.dir})\n`);
    if (values.model === undefined && !process.env.QWEN3VL_MODEL) note(`try: /image ${join(assetsDir(), "sample.png")}  then ask about it\n`);
  }

  const session = new ChatSession();
  if (values.system !== undefined) session.system = values.system;

  const rl = createInterface({ input: process.stdin, output: interactive ? out : undefined, terminal: interactive });
  let generating: AbortController | null = null;
  let closed = false;
  rl.on("SIGINT", () => {
    if (generating) generating.abort();
    else { closed = true; rl.close(); }
  });
  rl.on("close", () => { closed = true; });
  const prompt = () => { if (interactive && !closed) { rl.setPrompt("> "); rl.prompt(); } };

  let failed = 0;
  const answer = async (text: string) => {
    const user = session.userTurn(text);
    const ac = new AbortController();
    generating = ac;
    let inReasoning = false, wrote = false;
    try {
      let result: ChatResult | null = null;
      for await (const d of vl.chatStream(session.messagesFor(user), { ...o, signal: ac.signal })) {
        if (d.type === "reasoning") {
          if (!inReasoning) { out.write(color ? "\x1b[2m" : "<think>\n"); inReasoning = true; }
          out.write(d.text);
          wrote = true;
        } else if (d.type === "content") {
          if (inReasoning) { out.write(color ? "\x1b[0m\n\n" : "\n</think>\n\n"); inReasoning = false; }
          out.write(d.text);
          wrote = true;
        } else result = d.result;
      }
      if (inReasoning) out.write(color ? "\x1b[0m" : "\n</think>\n");
      out.write("\n");
      if (result) {
        session.commit(user, result);
        if (result.finishReason === "abort") note("[stopped]\n");
        else if (result.finishReason === "length") note(`[answer cut at --max-new-tokens ${o.maxNewTokens ?? 512}]\n`);
      }
    } catch (e) {
      if (inReasoning && color) out.write("\x1b[0m");
      if (wrote) out.write("\n");
      if (!(e instanceof QwenError)) throw e;
      // The turn and its attachments are dropped, so the next message starts clean.
      const dropped = session.pending.length;
      session.pending = [];
      note(`error: ${e.message}${dropped ? ` (the message and its ${dropped} attachment${dropped > 1 ? "s were" : " was"} dropped)` : ""}\n`);
      failed++;
    } finally {
      generating = null;
    }
  };

  const handle = async (line: string): Promise<boolean> => {
    const trimmed = line.trim();
    if (trimmed === "") return true;
    if (!trimmed.startsWith("/")) {
      await answer(line);
      return true;
    }
    const m = /^\/(\S+)\s*(.*)$/s.exec(trimmed)!;
    const cmd = m[1]!.toLowerCase(), rest = m[2]!.trim();
    try {
      switch (cmd) {
        case "exit": case "quit": case "q":
          return false;
        case "help": case "?":
          out.write(COMMAND_LIST);
          return true;
        case "reset":
          session.reset();
          note("[conversation cleared]\n");
          return true;
        case "system":
          session.system = rest === "" ? null : rest;
          note(rest === "" ? "[system prompt removed]\n" : "[system prompt set]\n");
          return true;
        case "image": {
          if (!rest) throw new QwenError("usage: /image PATH");
          const p = mediaPath(rest, "image");
          if (!statSync(p).isFile()) throw new QwenError(`${p} is not a file`);
          session.pending.push({ type: "image", image: p });
          note(`[image attached to your next message: ${p}]\n`);
          return true;
        }
        case "video": {
          const vm = /^(.*?)(?:\s+(\d+(?:\.\d+)?))?$/s.exec(rest)!;
          // A path that itself ends in " <number>" still works when it exists as written.
          let path = vm[1]!, fps: number | undefined = vm[2] !== undefined ? Number(vm[2]) : undefined;
          if (fps !== undefined && existsSync(resolve(rest))) { path = rest; fps = undefined; }
          if (!path) throw new QwenError("usage: /video PATH [FPS]");
          if (fps !== undefined && !(fps > 0)) throw new QwenError(`FPS must be a positive number, got ${vm[2]}`);
          const item: Item = { type: "video", video: mediaPath(path, "video") };
          if (fps !== undefined) item["fps"] = fps;
          session.pending.push(item);
          note(`[video attached to your next message: ${item["video"]}${fps !== undefined ? ` at ${fps} fps` : ""}]\n`);
          return true;
        }
        default:
          throw new QwenError(`unknown command /${cmd}; ${COMMAND_LIST.trim()}`);
      }
    } catch (e) {
      if (!(e instanceof QwenError)) throw e;
      note(`error: ${e.message}\n`);
      failed++;
      return true;
    }
  };

  prompt();
  try {
    for await (const line of rl) {
      if (!(await handle(line))) break;
      prompt();
    }
  } finally {
    rl.close();
  }
  if (interactive) out.write("\n");
  return !interactive && failed > 0 ? 1 : 0;
}
