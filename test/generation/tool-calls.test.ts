import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  parseToolCalls,
  hasToolCall,
  assistantToolCallMessage,
  toolResultMessage,
  formatToolCall,
  pythonJsonDumps,
} from "../../src/generation/tool-calls.js";
import { fixture } from "../helpers/paths.js";

const call = (name: string, args: unknown): string => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;

test("one valid call, no text", () => {
  const r = parseToolCalls('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>');
  assert.equal(r.content, "");
  assert.equal(r.toolCalls.length, 1);
  const c = r.toolCalls[0]!;
  assert.ok(c.ok);
  assert.equal(c.name, "get_weather");
  assert.deepEqual(c.arguments, { city: "Paris", days: 3 });
});

test("several calls after free text; text between and after kept", () => {
  const text = `I'll look both up.\n${call("a", { x: 1 })}\n${call("b", { y: [1, 2] })}\nWaiting for results.`;
  const r = parseToolCalls(text);
  assert.equal(r.content, "I'll look both up.\nWaiting for results.");
  assert.deepEqual(
    r.toolCalls.map((c) => (c.ok ? [c.name, c.arguments] : c.error)),
    [["a", { x: 1 }], ["b", { y: [1, 2] }]],
  );
  // no block: content is the text unchanged
  assert.deepEqual(parseToolCalls("  plain \n"), { content: "  plain \n", toolCalls: [] });
  assert.equal(hasToolCall(text), true);
  assert.equal(hasToolCall("nothing"), false);
});

test("malformed JSON is reported with its raw text, valid neighbours still parsed", () => {
  const bad = '\n{"name": "a", "arguments": {"x": 1,}}\n';
  const r = parseToolCalls(`<tool_call>${bad}</tool_call>\n${call("ok", {})}`);
  assert.equal(r.toolCalls.length, 2);
  const e = r.toolCalls[0]!;
  assert.ok(!e.ok);
  assert.match(e.error, /invalid JSON/);
  assert.equal(e.raw, bad);
  assert.equal(e.unclosed, false);
  assert.ok(r.toolCalls[1]!.ok);
  // other shape problems
  const shapes = parseToolCalls("<tool_call>[1]</tool_call><tool_call>{\"arguments\":{}}</tool_call><tool_call>{\"name\":\"f\",\"arguments\":[1]}</tool_call><tool_call> </tool_call>");
  assert.deepEqual(
    shapes.toolCalls.map((c) => (c.ok ? "ok" : c.error)),
    ["<tool_call> JSON is not an object", '<tool_call> JSON has no string "name"', '"arguments" of f is not a JSON object', "empty <tool_call> block"],
  );
  // arguments as a JSON string and missing arguments are accepted
  const s = parseToolCalls('<tool_call>{"name":"f","arguments":"{\\"q\\": 2}"}</tool_call><tool_call>{"name":"g"}</tool_call>');
  assert.deepEqual(s.toolCalls.map((c) => (c.ok ? c.arguments : c.error)), [{ q: 2 }, {}]);
});

test("unclosed block at the end of the output is reported; unclosed before another block too", () => {
  const r = parseToolCalls('Sure.\n<tool_call>\n{"name": "f", "arguments": {"a": 1');
  assert.equal(r.content, "Sure.");
  assert.equal(r.toolCalls.length, 1);
  const e = r.toolCalls[0]!;
  assert.ok(!e.ok);
  assert.equal(e.unclosed, true);
  assert.match(e.error, /unclosed <tool_call> block \(output ended/);
  assert.equal(e.raw, '\n{"name": "f", "arguments": {"a": 1');
  const r2 = parseToolCalls(`<tool_call>{"name": "f"${call("g", { k: "v" })}`);
  assert.equal(r2.toolCalls.length, 2);
  assert.ok(!r2.toolCalls[0]!.ok && r2.toolCalls[0]!.unclosed);
  assert.ok(r2.toolCalls[1]!.ok && r2.toolCalls[1]!.name === "g");
});

test("messages for the next turn: assistant tool_calls + tool results, template text round trip", () => {
  const parsed = parseToolCalls(`Checking.\n${call("get_weather", { city: "Zürich" })}\n<tool_call>oops</tool_call>`);
  const msg = assistantToolCallMessage(parsed, { ids: ["call_0"] });
  assert.deepEqual(msg, {
    role: "assistant",
    content: "Checking.",
    tool_calls: [{ type: "function", id: "call_0", function: { name: "get_weather", arguments: { city: "Zürich" } } }],
  });
  assert.deepEqual(assistantToolCallMessage([{ name: "f", arguments: {} }], { reasoning: "r" }), {
    role: "assistant",
    content: "",
    tool_calls: [{ type: "function", function: { name: "f", arguments: {} } }],
    reasoning_content: "r",
  });
  assert.deepEqual(toolResultMessage({ temp: 21.5, ok: true }), { role: "tool", content: '{"temp": 21.5, "ok": true}' });
  assert.deepEqual(toolResultMessage("sunny", { name: "get_weather" }), { role: "tool", content: "sunny", name: "get_weather" });

  const text = formatToolCall(msg.tool_calls[0]!);
  assert.equal(text, '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>');
  // the pieces the template concatenates are the ones formatToolCall uses
  const tpl = readFileSync(fixture("models", "tiny-qwen3-vl-dense", "chat_template.jinja"), "utf8");
  assert.ok(tpl.includes(`'<tool_call>\\n{"name": "'`) && tpl.includes(`'}\\n</tool_call>'`));
  // and what formatToolCall writes parses back to the same call
  const back = parseToolCalls(text).toolCalls[0]!;
  assert.ok(back.ok);
  assert.deepEqual([back.name, back.arguments], ["get_weather", { city: "Zürich" }]);
});

test("pythonJsonDumps uses Python's separators and keeps non-ASCII", () => {
  assert.equal(pythonJsonDumps({ a: [1, 2, { b: null }], "é": "ü\n\"" }), '{"a": [1, 2, {"b": null}], "é": "ü\\n\\""}');
  assert.equal(pythonJsonDumps([]), "[]");
  assert.equal(pythonJsonDumps({}), "{}");
});
