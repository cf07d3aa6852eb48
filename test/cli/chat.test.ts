// `qwen3-vl chat` with piped stdin: the streamed answers equal the library's greedy answers
// for the same multi-turn conversation (history, /image, /video, /system, /reset), and bad
// input gives one-line errors without ending the session.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ChatSession } from "../../src/cli/chat.js";
import { Qwen3VL, type ChatResult } from "../../src/pipeline.js";
import { fixture, REPO_ROOT } from "../helpers/paths.js";

const MODEL = fixture("models", "tiny-qwen3-vl-dense");
const IMAGE = join(REPO_ROOT, "assets", "sample.png");
const VIDEO = fixture("media", "vid_8f_128x96_fps2");
const BIN = join(REPO_ROOT, "bin", "qwen3-vl.js");
const MAX = 8;

function runCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    p.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    p.on("error", reject);
    p.on("close", (code) => resolvePromise({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

let vlP: Promise<Qwen3VL> | null = null;
const lib = () => (vlP ??= Qwen3VL.load(MODEL));

/** What chat prints for one answer when stdout is not a terminal. */
function printed(r: ChatResult): string {
  assert.equal(r.toolCalls.length, 0);
  return (r.reasoning !== null ? `<think>\n${r.reasoning}\n</think>\n\n` : "") + r.content + "\n";
}

/** The library's greedy answers, turn by turn, for a conversation built like chat builds it. */
async function expected(turns: { system?: string; media?: Record<string, unknown>[]; text: string; reset?: boolean }[]): Promise<string> {
  const vl = await lib();
  let history: unknown[] = [];
  let out = "";
  for (const t of turns) {
    if (t.reset) history = [];
    const user = { role: "user", content: t.media ? [...t.media, { type: "text", text: t.text }] : t.text };
    const msgs = [...(t.system ? [{ role: "system", content: t.system }] : []), ...history, user];
    const r = await vl.chat(msgs, { greedy: true, maxNewTokens: MAX });
    out += printed(r);
    history.push(user, { role: "assistant", content: r.content });
  }
  return out;
}

describe("qwen3-vl chat (piped stdin)", () => {
  it("streams the library's greedy answers over several turns with an image", async () => {
    const input = ["Hello there", `/image ${IMAGE}`, "What is in this picture?", "", "And its colours?", "/exit", "never read"].join("\n") + "\n";
    const res = await runCli(["chat", "--model", MODEL, "--greedy", "--max-new-tokens", String(MAX)], input);
    assert.equal(res.code, 0, res.stderr);
    const want = await expected([
      { text: "Hello there" },
      { media: [{ type: "image", image: IMAGE }], text: "What is in this picture?" },
      { text: "And its colours?" },
    ]);
    assert.equal(res.stdout, want);
    assert.match(res.stderr, /image attached to your next message/);
  });

  it("the alias run, /system, /reset and /video (with fps) follow the same conversation", async () => {
    const input = ["/system You are terse.", "First question", "/reset", `/video ${VIDEO} 2`, "What happens?"].join("\n"); // no final newline, no /exit: EOF ends
    const res = await runCli(["run", "--model", MODEL, "--greedy", "--max-new-tokens", String(MAX)], input);
    assert.equal(res.code, 0, res.stderr);
    const want = await expected([
      { system: "You are terse.", text: "First question" },
      { system: "You are terse.", reset: true, media: [{ type: "video", video: VIDEO, fps: 2 }], text: "What happens?" },
    ]);
    assert.equal(res.stdout, want);
    assert.match(res.stderr, /conversation cleared/);
    assert.match(res.stderr, /at 2 fps/);
  });

  it("a missing image or an unknown command is a one-line error; the session goes on and exits 1", async () => {
    const input = ["/image /no/such/picture.png", "/frobnicate", "/help", "Hi"].join("\n") + "\n";
    const res = await runCli(["chat", "--model", MODEL, "--greedy", "--max-new-tokens", "4"], input);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /error: image not found: \/no\/such\/picture\.png\n/);
    assert.match(res.stderr, /error: unknown command \/frobnicate/);
    assert.doesNotMatch(res.stderr, /\n\s+at /); // no stack trace
    const vl = await lib();
    const r = await vl.chat([{ role: "user", content: "Hi" }], { greedy: true, maxNewTokens: 4 });
    assert.equal(res.stdout, "commands: /image PATH, /video PATH [FPS], /system TEXT, /reset, /help, /exit\n" + printed(r));
  });

  it("an unreadable image fails that turn only; it is dropped and the next turn starts clean", async () => {
    const input = [`/image ${join(REPO_ROOT, "package.json")}`, "Look", "Hello there"].join("\n") + "\n";
    const res = await runCli(["chat", "--model", MODEL, "--greedy", "--max-new-tokens", String(MAX)], input);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /error: .*\(the message and its 1 attachment was dropped\)\n/);
    assert.equal(res.stdout, await expected([{ text: "Hello there" }]));
  });

  it("bad flags and --help", async () => {
    const bad = await runCli(["chat", "--model", MODEL, "--temperature", "hot"], "");
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'qwen3-vl chat: --temperature expects a number, got "hot"\n');
    const unknown = await runCli(["chat", "--bogus"], "");
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.split("\n").filter(Boolean).length, 1);
    const help = await runCli(["chat", "--help"], "");
    assert.equal(help.code, 0);
    for (const s of ["/image PATH", "/video PATH [FPS]", "/system TEXT", "/reset", "/exit", "--greedy", "--max-new-tokens", "--seed", "--model"]) {
      assert.ok(help.stdout.includes(s), s);
    }
    const usage = await runCli(["help"], "");
    assert.match(usage.stdout, /qwen3-vl chat /);
    assert.match(usage.stdout, /qwen3-vl info /);
  });
});

describe("ChatSession", () => {
  it("puts pending media before the text, keeps the system prompt first, and clears media after a turn", () => {
    const s = new ChatSession();
    s.system = "sys";
    s.pending.push({ type: "image", image: "/a.png" });
    const u = s.userTurn("hi");
    assert.deepEqual(u, { role: "user", content: [{ type: "image", image: "/a.png" }, { type: "text", text: "hi" }] });
    assert.deepEqual(s.messagesFor(u), [{ role: "system", content: "sys" }, u]);
    s.commit(u, { content: "hello", text: "hello" } as ChatResult);
    assert.deepEqual(s.pending, []);
    const u2 = s.userTurn("more");
    assert.deepEqual(s.messagesFor(u2), [{ role: "system", content: "sys" }, u, { role: "assistant", content: "hello" }, { role: "user", content: "more" }]);
    s.reset();
    assert.deepEqual(s.messagesFor(u2), [{ role: "system", content: "sys" }, u2]);
  });
});
