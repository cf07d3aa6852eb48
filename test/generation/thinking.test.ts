import { test } from "node:test";
import assert from "node:assert/strict";
import { splitThinking, ThinkingStreamSplitter, type ThinkingDelta } from "../../src/generation/thinking.js";

test("splitThinking: prompt opened <think>, output is reasoning\\n</think>\\n\\nanswer", () => {
  const out = "The user asks 2+2.\nThat is 4.\n</think>\n\nThe answer is 4.";
  assert.deepEqual(splitThinking(out, { openedInPrompt: true }), {
    reasoning: "The user asks 2+2.\nThat is 4.",
    content: "The answer is 4.",
    thinkingClosed: true,
  });
  // default (auto) detects </think> like the chat template does
  assert.deepEqual(splitThinking(out), splitThinking(out, { openedInPrompt: true }));
});

test("splitThinking: output that starts with <think> itself", () => {
  assert.deepEqual(splitThinking("<think>\nhmm\n\n</think>\n\nHi!\n"), { reasoning: "hmm", content: "Hi!\n", thinkingClosed: true });
  assert.deepEqual(splitThinking("\n<think>\n\n</think>\n\nHi"), { reasoning: "", content: "Hi", thinkingClosed: true });
});

test("splitThinking: no tags, unfinished reasoning, split at the first </think>", () => {
  assert.deepEqual(splitThinking("Just an answer."), { reasoning: "", content: "Just an answer.", thinkingClosed: false });
  assert.deepEqual(splitThinking("still thinking\n", { openedInPrompt: true }), { reasoning: "still thinking", content: "", thinkingClosed: false });
  assert.deepEqual(splitThinking("<think>\ncut off"), { reasoning: "cut off", content: "", thinkingClosed: false });
  assert.deepEqual(splitThinking("a</think>b</think>c", { openedInPrompt: true }), { reasoning: "a", content: "b</think>c", thinkingClosed: true });
  // explicitly not opened: </think> is ordinary content
  assert.deepEqual(splitThinking("a</think>b", { openedInPrompt: false }), { reasoning: "", content: "a</think>b", thinkingClosed: false });
  // an inner newline run in the answer is kept; only leading ones are dropped
  assert.equal(splitThinking("r</think>\n\nx\n\ny", { openedInPrompt: true }).content, "x\n\ny");
});

function run(deltas: string[], openedInPrompt?: boolean): { reasoning: string; content: string; deltas: ThinkingDelta[]; closed: boolean } {
  const s = new ThinkingStreamSplitter({ openedInPrompt });
  const all: ThinkingDelta[] = [];
  for (const d of deltas) all.push(s.push(d));
  all.push(s.flush());
  return {
    reasoning: all.map((d) => d.reasoning ?? "").join(""),
    content: all.map((d) => d.content ?? "").join(""),
    deltas: all,
    closed: s.thinkingClosed,
  };
}

test("streaming: </think> split across deltas never leaks into either stream", () => {
  const deltas = ["Let me think", ".\n", "</", "thi", "nk", ">\n", "\nAns", "wer."];
  const r = run(deltas, true);
  assert.equal(r.reasoning, "Let me think.");
  assert.equal(r.content, "Answer.");
  assert.equal(r.closed, true);
  for (const d of r.deltas) {
    for (const v of [d.reasoning, d.content]) if (v !== undefined) assert.ok(!/<|>/.test(v), `tag fragment leaked: ${JSON.stringify(v)}`);
  }
  // reasoning is streamed before </think> arrives (not buffered to the end)
  assert.equal(r.deltas[0]!.reasoning, "Let me think");
  // <think> split too, in output that opens it itself
  const r2 = run(["<th", "ink>", "\nabc", "</think>", "\n\nxyz"]);
  assert.deepEqual([r2.reasoning, r2.content], ["abc", "xyz"]);
});

test("streaming: a false partial tag is released as text", () => {
  const s = new ThinkingStreamSplitter({ openedInPrompt: true });
  assert.deepEqual(s.push("a </th"), { reasoning: "a " });
  assert.deepEqual(s.push("ing>"), { reasoning: "</thing>" });
  assert.deepEqual(s.flush(), {});
  // Instruct output (no think at all) passes through as content; a leading "<" is held only briefly
  const i = new ThinkingStreamSplitter();
  assert.deepEqual(i.push("<"), {});
  assert.deepEqual(i.push("b>bold"), { content: "<b>bold" });
  assert.equal(i.state, "content");
});

test("streaming equals splitThinking for every split into three deltas", () => {
  const cases: [string, boolean | undefined][] = [
    ["reason\n</think>\n\nanswer", true],
    ["\nr1\n\nr2\n\n</think>\n\n\nanswer\n", true],
    ["<think>\nabc\n</think>\n\nxyz", undefined],
    ["  <think>\n\n</think>\n\nxyz", false],
    ["unfinished\n\n", true],
    ["plain answer <b>", false],
    ["a</thinking></think>b", true],
  ];
  for (const [text, opened] of cases) {
    const want = splitThinking(text, { openedInPrompt: opened ?? false });
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        const r = run([text.slice(0, i), text.slice(i, j), text.slice(j)], opened);
        assert.deepEqual([r.reasoning, r.content, r.closed], [want.reasoning, want.content, want.thinkingClosed], `${JSON.stringify(text)} @${i},${j}`);
      }
    }
  }
});
