import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fixture } from "../helpers/paths.js";
import { ChatTemplate, loadChatTemplateSource } from "../../src/processing/chat-template.js";
import { Tokenizer } from "../../src/processing/tokenizer.js";

// Byte-for-byte comparison with processing/chat_templates.json (both editions, with and without
// the generation prompt, with add_vision_id) and exact token ids.
interface Render { messages: unknown[]; [k: string]: unknown }
const data = JSON.parse(readFileSync(fixture("processing", "chat_templates.json"), "utf8")) as Record<string, { template_file: string; renders: Record<string, Render> }>;
const tok = Tokenizer.fromDir(fixture("models", "tiny-qwen3-vl-dense"));

for (const [edition, ed] of Object.entries(data)) {
  test(`${edition} template reproduces every rendering and its token ids`, () => {
    const tpl = new ChatTemplate(readFileSync(fixture(ed.template_file), "utf8"));
    let n = 0;
    for (const [name, r] of Object.entries(ed.renders)) {
      assert.equal(tpl.render(r.messages, { addGenerationPrompt: true }), r["add_generation_prompt=True"], `${name} gen=True`);
      assert.equal(tpl.render(r.messages, { addGenerationPrompt: false }), r["add_generation_prompt=False"], `${name} gen=False`);
      assert.equal(tpl.render(r.messages, { addGenerationPrompt: true, addVisionId: true }), r["add_vision_id=True,add_generation_prompt=True"], `${name} vision id`);
      assert.deepEqual(tok.encode(tpl.render(r.messages, { addGenerationPrompt: true })), r["token_ids(add_generation_prompt=True)"], `${name} ids`);
      n += 3;
    }
    assert.equal(n, 15);
  });
}

test("fromDir loads the checkpoint's chat_template.jinja (the instruct template)", () => {
  const dir = fixture("models", "tiny-qwen3-vl-dense");
  assert.equal(loadChatTemplateSource(dir), readFileSync(fixture("templates", "qwen3_vl_instruct.jinja"), "utf8"));
  const tpl = ChatTemplate.fromDir(dir);
  const r = data["instruct"]!.renders["multi_turn"]!;
  assert.equal(tpl.render(r.messages, { addGenerationPrompt: true }), r["add_generation_prompt=True"]);
});

test("tools render the spec's TOOLS_BLOCK with Python json.dumps spacing", () => {
  const tpl = ChatTemplate.fromDir(fixture("models", "tiny-qwen3-vl-dense"));
  const tool = { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } };
  const out = tpl.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true, tools: [tool] });
  const expected =
    "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" +
    '\n{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}' +
    '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  assert.equal(out, expected);
});
